package idle

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ServiceAccountDir is where Kubernetes mounts a pod's service account.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Kubernetes scales a function by patching the scale subresource of its
// Deployment in the functions' namespace, which faas-netes creates with the
// function's name. This is the way to zero on OpenFaaS CE with faas-netes,
// whose REST API refuses 0 replicas; the gateway scales it back up from zero.
// Its service account needs get and patch on deployments/scale there.
type Kubernetes struct {
	APIServer string // e.g. https://10.96.0.1:443
	Namespace string // functions' namespace, e.g. openfaas-fn
	TokenFile string // re-read on every call: projected tokens rotate
	Client    *http.Client
}

// InCluster configures a Kubernetes scaler from the pod's environment and
// service account.
func InCluster(namespace string) (*Kubernetes, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, fmt.Errorf("not in a Kubernetes pod: KUBERNETES_SERVICE_HOST/PORT unset")
	}
	ca, err := os.ReadFile(filepath.Join(ServiceAccountDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading the service account's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", filepath.Join(ServiceAccountDir, "ca.crt"))
	}
	return &Kubernetes{
		APIServer: "https://" + net.JoinHostPort(host, port),
		Namespace: namespace,
		TokenFile: filepath.Join(ServiceAccountDir, "token"),
		Client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		}},
	}, nil
}

// Scale implements Scaler.
func (k *Kubernetes) Scale(ctx context.Context, name string, replicas uint64) error {
	u := fmt.Sprintf("%s/apis/apps/v1/namespaces/%s/deployments/%s/scale",
		strings.TrimRight(k.APIServer, "/"), url.PathEscape(k.Namespace), url.PathEscape(name))
	body := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/merge-patch+json")
	req.Header.Set("Accept", "application/json")
	if k.TokenFile != "" {
		tok, err := os.ReadFile(k.TokenFile)
		if err != nil {
			return fmt.Errorf("reading the service account token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	client := k.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("patching deployments/%s/scale: %s: %s", name, res.Status, bytes.TrimSpace(b))
	}
	return nil
}
