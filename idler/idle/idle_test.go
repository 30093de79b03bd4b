package idle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// fakeAPI is a provider's view of its functions, for the idler's pure logic.
type fakeAPI struct {
	fns    map[string]*Function
	scaled []string
	fail   error
}

func (a *fakeAPI) Functions(context.Context) ([]Function, error) {
	if a.fail != nil {
		return nil, a.fail
	}
	var out []Function
	for _, f := range a.fns {
		out = append(out, *f)
	}
	return out, nil
}

func (a *fakeAPI) Scale(_ context.Context, name string, n uint64) error {
	a.scaled = append(a.scaled, name)
	a.fns[name].Replicas = n
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestIdlerScalesOnlyOptedInFunctionsIdlePastTheirDuration(t *testing.T) {
	zero := func(d string) map[string]string {
		return map[string]string{LabelZero: "true", LabelZeroDuration: d}
	}
	api := &fakeAPI{fns: map[string]*Function{
		"short":    {Name: "short", Replicas: 1, Labels: zero("10s")},
		"long":     {Name: "long", Replicas: 2, Labels: zero("1m")},
		"default":  {Name: "default", Replicas: 1, Labels: map[string]string{LabelZero: "true"}},
		"nolabel":  {Name: "nolabel", Replicas: 1},
		"disabled": {Name: "disabled", Replicas: 1, Labels: map[string]string{LabelZero: "false", LabelZeroDuration: "1s"}},
		"bad":      {Name: "bad", Replicas: 1, Labels: zero("soon")},
		"busy":     {Name: "busy", Replicas: 1, Labels: zero("10s")},
	}}
	d := New(Config{Lister: api, Scaler: api, DefaultDuration: 30 * time.Second, Logger: quiet()})
	t0 := time.Unix(1_000_000, 0)
	step := func(at time.Duration, want ...string) {
		t.Helper()
		api.scaled = nil
		api.fns["busy"].Invocations++ // called between every two checks
		if err := d.Check(context.Background(), t0.Add(at)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(api.scaled, want) && (len(api.scaled) != 0 || len(want) != 0) {
			t.Fatalf("at %v scaled %v, want %v", at, api.scaled, want)
		}
	}
	step(0)               // first sight: everything active now
	step(9 * time.Second) // nothing idle long enough
	step(10*time.Second, "short")
	step(29 * time.Second) // short is at zero already: not scaled again
	step(30*time.Second, "default")
	step(60*time.Second, "long")
	step(10 * time.Minute) // nolabel, disabled, bad and busy never
	if !d.Ready() {
		t.Error("not ready after checks")
	}

	// A call brings short back (the gateway scales from zero); its idle
	// time starts again from then, not from its last count change.
	api.fns["short"].Replicas = 1
	step(11 * time.Minute)
	step(11*time.Minute + 9*time.Second)
	api.fns["short"].Invocations++
	step(11*time.Minute + 15*time.Second)
	step(11*time.Minute + 24*time.Second)
	step(11*time.Minute+25*time.Second, "short")
}

func TestIdlerReportsAFailedListAndKeepsGoing(t *testing.T) {
	api := &fakeAPI{fns: map[string]*Function{}, fail: errors.New("gateway down")}
	d := New(Config{Lister: api, Scaler: api, Logger: quiet()})
	if err := d.Check(context.Background(), time.Now()); err == nil {
		t.Fatal("a failed list was not reported")
	}
	if d.Ready() {
		t.Error("ready without having listed the functions")
	}
	api.fail = nil
	if err := d.Check(context.Background(), time.Now()); err != nil || !d.Ready() {
		t.Fatalf("after recovery: %v, ready %v", err, d.Ready())
	}
}

func TestKubernetesScalerPatchesTheDeploymentsScale(t *testing.T) {
	var got struct{ method, path, ctype, auth, body string }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.method, got.path, got.ctype, got.auth, got.body = r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(b)
		if r.URL.Path == "/apis/apps/v1/namespaces/openfaas-fn/deployments/missing/scale" {
			http.Error(w, `{"kind":"Status","reason":"NotFound"}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(`{"kind":"Scale","spec":{"replicas":0}}`))
	}))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := &Kubernetes{APIServer: srv.URL, Namespace: "openfaas-fn", TokenFile: tok, Client: srv.Client()}
	if err := k.Scale(context.Background(), "transfer", 0); err != nil {
		t.Fatal(err)
	}
	want := struct{ method, path, ctype, auth, body string }{http.MethodPatch,
		"/apis/apps/v1/namespaces/openfaas-fn/deployments/transfer/scale",
		"application/merge-patch+json", "Bearer tok-1", `{"spec":{"replicas":0}}`}
	if got != want {
		t.Fatalf("request %+v, want %+v", got, want)
	}
	// The token is read again on each call: projected tokens rotate.
	if err := os.WriteFile(tok, []byte("tok-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.Scale(context.Background(), "missing", 0); err == nil {
		t.Fatal("a 404 was not reported")
	}
	if got.auth != "Bearer tok-2" {
		t.Errorf("rotated token not used: %q", got.auth)
	}
}
