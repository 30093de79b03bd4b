// Package chart checks what deploy/chart/easychat renders: Helm itself
// (HELM, else ../../bin/helm, built by `make helm`) renders the chart with
// each values file, every object is decoded strictly into its Kubernetes API
// type (an unknown or misplaced field fails), and the invariants that break
// clusters without an error at apply time are checked.
package chart

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const chartDir = "easychat"

func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no helm binary at %s (run `make helm`, or set HELM): %v", bin, err)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes(), nil
}

// values is the part of values.yaml the invariants refer to.
type values struct {
	Secrets struct {
		Name string            `json:"name"`
		Keys map[string]string `json:"keys"`
	} `json:"secrets"`
	OpenFaaS struct {
		FunctionNamespace string `json:"functionNamespace"`
		BasicAuth         struct {
			SecretName  string `json:"secretName"`
			UserKey     string `json:"userKey"`
			PasswordKey string `json:"passwordKey"`
		} `json:"basicAuth"`
	} `json:"openfaas"`
	Gateway struct {
		DrainTimeoutSeconds int `json:"drainTimeoutSeconds"`
	} `json:"gateway"`
}

// loadValues merges the chart's values.yaml with an override file the way
// the invariants need (maps merged key by key, everything else replaced).
func loadValues(t *testing.T, files ...string) values {
	t.Helper()
	merged := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		merge(merged, m)
	}
	b, err := yaml.Marshal(merged)
	if err != nil {
		t.Fatal(err)
	}
	var v values
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// serviceMonitor holds the fields of monitoring.coreos.com/v1 ServiceMonitor
// the chart sets; k8s.io/api has no such type.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is one render, decoded.
type rendered struct {
	kinds           []string
	deployments     []appsv1.Deployment
	services        []corev1.Service
	hpas            []autoscalingv2.HorizontalPodAutoscaler
	pdbs            []policyv1.PodDisruptionBudget
	policies        []networkingv1.NetworkPolicy
	serviceAccounts []corev1.ServiceAccount
	roles           []rbacv1.Role
	roleBindings    []rbacv1.RoleBinding
	monitors        []serviceMonitor
}

func decode(t *testing.T, out []byte) rendered {
	t.Helper()
	var r rendered
	for _, doc := range strings.Split(string(out), "\n---") {
		if strings.TrimSpace(strings.ReplaceAll(doc, "---", "")) == "" || onlyComments(doc) {
			continue
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("not an object: %v\n%s", err, doc)
		}
		var into any
		switch meta.APIVersion + "/" + meta.Kind {
		case "apps/v1/Deployment":
			into = grow(&r.deployments)
		case "v1/Service":
			into = grow(&r.services)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			into = grow(&r.hpas)
		case "policy/v1/PodDisruptionBudget":
			into = grow(&r.pdbs)
		case "networking.k8s.io/v1/NetworkPolicy":
			into = grow(&r.policies)
		case "v1/ServiceAccount":
			into = grow(&r.serviceAccounts)
		case "rbac.authorization.k8s.io/v1/Role":
			into = grow(&r.roles)
		case "rbac.authorization.k8s.io/v1/RoleBinding":
			into = grow(&r.roleBindings)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			into = grow(&r.monitors)
		default:
			t.Fatalf("unexpected object %s %s", meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("%s does not decode strictly: %v\n%s", meta.Kind, err, doc)
		}
		obj := into.(interface{ GetName() string })
		r.kinds = append(r.kinds, meta.Kind+"/"+obj.GetName())
	}
	sort.Strings(r.kinds)
	return r
}

// grow appends a zero T to list and returns a pointer to it, to decode into.
func grow[T any](list *[]T) any {
	*list = append(*list, *new(T))
	return &(*list)[len(*list)-1]
}

func onlyComments(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func TestChartRendersValidObjects(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   []string // objects that must be there
	}{
		{"defaults", nil, []string{
			"Deployment/r-easychat-gateway", "Deployment/r-easychat-connector", "Deployment/r-easychat-idler",
			"Service/r-easychat-gateway", "Service/r-easychat-gateway-internal",
			"HorizontalPodAutoscaler/r-easychat-gateway", "PodDisruptionBudget/r-easychat-gateway",
			"PodDisruptionBudget/r-easychat-connector", "NetworkPolicy/r-easychat-gateway",
			"Role/r-easychat-idler", "RoleBinding/r-easychat-idler", "ServiceAccount/r-easychat-idler",
		}},
		{"production", []string{filepath.Join(chartDir, "values-production.yaml")}, []string{
			"ServiceMonitor/r-easychat-gateway", "ServiceMonitor/r-easychat-connector", "ServiceMonitor/r-easychat-idler",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"template", "r", chartDir, "--namespace", "openfaas"}
			lint := []string{"lint", "--strict", chartDir}
			for _, v := range c.values {
				args = append(args, "-f", v)
				lint = append(lint, "-f", v)
			}
			if out, err := helm(t, lint...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			out, err := helm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			r := decode(t, out)
			t.Logf("%d objects: %s", len(r.kinds), strings.Join(r.kinds, " "))
			for _, w := range c.want {
				if !slices.Contains(r.kinds, w) {
					t.Errorf("render lacks %s", w)
				}
			}
			v := loadValues(t, append([]string{filepath.Join(chartDir, "values.yaml")}, c.values...)...)
			checkInvariants(t, r, v)
		})
	}
}

func checkInvariants(t *testing.T, r rendered, v values) {
	t.Helper()
	pods := map[string]*appsv1.Deployment{}
	for i := range r.deployments {
		d := &r.deployments[i]
		pods[d.Name] = d
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("deployment %s: selector %v (%v)", d.Name, d.Spec.Selector, err)
			continue
		}
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("deployment %s: selector %v does not match its pod labels %v", d.Name, d.Spec.Selector, d.Spec.Template.Labels)
		}
		for j := range r.deployments {
			if e := &r.deployments[j]; e != d && sel.Matches(labels.Set(e.Spec.Template.Labels)) {
				t.Errorf("deployment %s's selector also matches %s's pods", d.Name, e.Name)
			}
		}
		checkPodSpec(t, d, v, r)
	}
	matching := func(what string, sel *metav1.LabelSelector) []*appsv1.Deployment {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Errorf("%s: selector: %v", what, err)
			return nil
		}
		var out []*appsv1.Deployment
		for _, d := range pods {
			if s.Matches(labels.Set(d.Spec.Template.Labels)) {
				out = append(out, d)
			}
		}
		if len(out) == 0 {
			t.Errorf("%s selects no pods", what)
		}
		return out
	}
	for _, s := range r.services {
		for _, d := range matching("service "+s.Name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}) {
			for _, p := range s.Spec.Ports {
				if !containerHasPort(d, p.TargetPort) {
					t.Errorf("service %s: targetPort %s is no container port of %s", s.Name, p.TargetPort.String(), d.Name)
				}
			}
		}
	}
	replicas := func(d *appsv1.Deployment) int32 {
		for _, h := range r.hpas {
			if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
				return *h.Spec.MinReplicas
			}
		}
		if d.Spec.Replicas == nil {
			return 1
		}
		return *d.Spec.Replicas
	}
	for _, h := range r.hpas {
		d := pods[h.Spec.ScaleTargetRef.Name]
		if d == nil || h.Spec.ScaleTargetRef.APIVersion != "apps/v1" {
			t.Errorf("hpa %s targets %+v, which is not rendered", h.Name, h.Spec.ScaleTargetRef)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("deployment %s sets replicas and has an HPA: every upgrade would reset the HPA's count", d.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("hpa %s: min %v max %d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}
	for _, p := range r.pdbs {
		if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.Type != intstr.Int {
			t.Errorf("pdb %s: minAvailable %v, want a number", p.Name, p.Spec.MinAvailable)
			continue
		}
		for _, d := range matching("pdb "+p.Name, p.Spec.Selector) {
			if n := replicas(d); p.Spec.MinAvailable.IntVal >= n {
				t.Errorf("pdb %s: minAvailable %d with %d replicas of %s: no pod could ever be evicted", p.Name, p.Spec.MinAvailable.IntVal, n, d.Name)
			}
		}
	}
	for _, np := range r.policies {
		for _, d := range matching("networkpolicy "+np.Name, &np.Spec.PodSelector) {
			for _, in := range np.Spec.Ingress {
				for _, p := range in.Ports {
					if p.Port != nil && !containerHasPort(d, *p.Port) {
						t.Errorf("networkpolicy %s: port %s is no container port of %s", np.Name, p.Port.String(), d.Name)
					}
				}
			}
		}
	}
	if gw := pods["r-easychat-gateway"]; gw != nil {
		internal := false
		for _, np := range r.policies {
			s, _ := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if !s.Matches(labels.Set(gw.Spec.Template.Labels)) {
				continue
			}
			for _, in := range np.Spec.Ingress {
				for _, p := range in.Ports {
					if p.Port != nil && p.Port.String() == "internal" {
						internal = true
						if len(in.From) == 0 {
							t.Errorf("networkpolicy %s opens the gateway's internal port to everyone", np.Name)
						}
						ns := in.From[0].NamespaceSelector
						if ns == nil || ns.MatchLabels["kubernetes.io/metadata.name"] != v.OpenFaaS.FunctionNamespace {
							t.Errorf("networkpolicy %s: internal port's first peer %+v is not the functions' namespace %s", np.Name, in.From[0], v.OpenFaaS.FunctionNamespace)
						}
					}
				}
			}
		}
		if len(r.policies) > 0 && !internal {
			t.Error("no network policy rule covers the gateway's internal port")
		}
	}
	for _, m := range r.monitors {
		for _, s := range r.services {
			sel, _ := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
			if !sel.Matches(labels.Set(s.Labels)) {
				continue
			}
			for _, e := range m.Spec.Endpoints {
				if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
					t.Errorf("servicemonitor %s: service %s has no port %q", m.Name, s.Name, e.Port)
				}
			}
		}
	}
	for _, b := range r.roleBindings {
		if !slices.ContainsFunc(r.roles, func(x rbacv1.Role) bool { return x.Name == b.RoleRef.Name && x.Namespace == b.Namespace }) {
			t.Errorf("rolebinding %s refers to role %s, not rendered in %s", b.Name, b.RoleRef.Name, b.Namespace)
		}
		for _, s := range b.Subjects {
			if !slices.ContainsFunc(r.serviceAccounts, func(a corev1.ServiceAccount) bool { return a.Name == s.Name }) {
				t.Errorf("rolebinding %s: service account %s not rendered", b.Name, s.Name)
			}
		}
	}
}

func checkPodSpec(t *testing.T, d *appsv1.Deployment, v values, r rendered) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if sa := spec.ServiceAccountName; sa != "" && !slices.ContainsFunc(r.serviceAccounts, func(a corev1.ServiceAccount) bool { return a.Name == sa }) {
		t.Errorf("deployment %s: service account %s not rendered", d.Name, sa)
	}
	// Secrets are referenced, never created: each reference must be one the
	// values document, so an install guide that creates those is complete.
	known := map[string]bool{}
	for _, k := range v.Secrets.Keys {
		known[v.Secrets.Name+"/"+k] = true
	}
	known[v.OpenFaaS.BasicAuth.SecretName+"/"+v.OpenFaaS.BasicAuth.UserKey] = true
	known[v.OpenFaaS.BasicAuth.SecretName+"/"+v.OpenFaaS.BasicAuth.PasswordKey] = true
	for _, c := range spec.Containers {
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: cpu and memory requests and a memory limit are required, got %+v", d.Name, c.Name, c.Resources)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s/%s: readiness and liveness probes are required", d.Name, c.Name)
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p != nil && p.HTTPGet != nil && !containerHasPort(d, p.HTTPGet.Port) {
				t.Errorf("%s/%s: probe port %s is no container port", d.Name, c.Name, p.HTTPGet.Port.String())
			}
		}
		seen := map[string]bool{}
		for _, e := range c.Env {
			if seen[e.Name] {
				t.Errorf("%s/%s: env %s set twice", d.Name, c.Name, e.Name)
			}
			seen[e.Name] = true
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				if !known[ref] {
					t.Errorf("%s/%s: env %s reads secret key %s, which the values do not name", d.Name, c.Name, e.Name, ref)
				}
			}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				t.Errorf("%s/%s: env %s reads a ConfigMap the chart does not render", d.Name, c.Name, e.Name)
			}
			if e.Name == "GATEWAY_DRAIN_TIMEOUT" {
				drain, err := time.ParseDuration(e.Value)
				grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
				if err != nil || drain >= grace {
					t.Errorf("%s: drain %q must be shorter than the pod's grace period %v", d.Name, e.Value, grace)
				}
			}
		}
	}
}

func containerHasPort(d *appsv1.Deployment, p intstr.IntOrString) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return true
			}
		}
	}
	return false
}

// Settings that would leave a cluster unable to drain a node are refused
// by the render itself.
func TestChartRefusesABudgetThatBlocksEveryEviction(t *testing.T) {
	for _, set := range []string{
		"gateway.autoscaling.minReplicas=2,gateway.podDisruptionBudget.minAvailable=2",
		"gateway.autoscaling.enabled=false,gateway.replicas=1",
		"connector.replicas=1",
		"idler.scaler=docker",
	} {
		out, err := helm(t, "template", "r", chartDir, "--set", set)
		if err == nil {
			t.Errorf("--set %s rendered:\n%.300s", set, out)
		}
	}
}
