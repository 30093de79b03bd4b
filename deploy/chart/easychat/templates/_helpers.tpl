{{/* Names and labels shared by every object. */}}
{{- define "easychat.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "easychat.labels" -}}
app.kubernetes.io/name: easychat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* selector labels of one component: (dict "ctx" $ "component" "gateway") */}}
{{- define "easychat.selector" -}}
app.kubernetes.io/name: easychat
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "easychat.image" -}}
{{- printf "%s/%s:%s" .ctx.Values.image.registry .name (.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion | toString) -}}
{{- end -}}

{{- define "easychat.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ctx.Values.secrets.name }}
      key: {{ index .ctx.Values.secrets.keys .key }}
{{- end -}}

{{- define "easychat.basicAuthEnv" -}}
- name: BASIC_AUTH_USER
  valueFrom:
    secretKeyRef:
      name: {{ .Values.openfaas.basicAuth.secretName }}
      key: {{ .Values.openfaas.basicAuth.userKey }}
- name: BASIC_AUTH_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.openfaas.basicAuth.secretName }}
      key: {{ .Values.openfaas.basicAuth.passwordKey }}
{{- end -}}

{{- define "easychat.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}
