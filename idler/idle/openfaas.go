package idle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// OpenFaaS lists functions and scales them through the OpenFaaS REST API
// (the gateway, or a faas-provider directly): GET /system/functions and
// POST /system/scale-function/{name}. On OpenFaaS CE the gateway raises a
// request for 0 replicas to 1, and faas-netes and faasd refuse it, so there
// it lists only; see deploy/README.md.
type OpenFaaS struct {
	URL       string // e.g. http://gateway.openfaas:8080
	User      string // basic auth; empty: none
	Password  string
	Namespace string // functions' namespace; empty: the provider's default
	Client    *http.Client
}

func (o *OpenFaaS) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func (o *OpenFaaS) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	u := strings.TrimRight(o.URL, "/") + path
	if o.Namespace != "" {
		u += "?namespace=" + url.QueryEscape(o.Namespace)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.User != "" {
		req.SetBasicAuth(o.User, o.Password)
	}
	res, err := o.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", method, path, err)
	}
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, res.Status, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	return b, nil
}

// Functions implements Lister.
func (o *OpenFaaS) Functions(ctx context.Context) ([]Function, error) {
	b, err := o.do(ctx, http.MethodGet, "/system/functions", nil)
	if err != nil {
		return nil, err
	}
	var list []types.FunctionStatus
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("decoding /system/functions: %w", err)
	}
	out := make([]Function, 0, len(list))
	for _, s := range list {
		f := Function{Name: s.Name, Replicas: s.Replicas, Invocations: s.InvocationCount}
		if s.Labels != nil {
			f.Labels = *s.Labels
		}
		out = append(out, f)
	}
	return out, nil
}

// Scale implements Scaler.
func (o *OpenFaaS) Scale(ctx context.Context, name string, replicas uint64) error {
	body, err := json.Marshal(types.ScaleServiceRequest{ServiceName: name, Replicas: replicas})
	if err != nil {
		return err
	}
	_, err = o.do(ctx, http.MethodPost, "/system/scale-function/"+url.PathEscape(name), body)
	return err
}
