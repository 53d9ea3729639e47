package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiRequest is one request the test API server saw.
type apiRequest struct {
	Method, Path, Auth, ContentType string
	Query                           url.Values
	Body                            []byte
}

// tlsAPI starts an HTTPS server whose certificate is written as the service account's ca.crt, and a
// client of it built the way the agent builds its own (NewKube).
func tlsAPI(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, body []byte)) (*Kube, *[]apiRequest, Env) {
	t.Helper()
	var mu sync.Mutex
	var seen []apiRequest
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, apiRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.URL.Query(), body})
		mu.Unlock()
		handler(w, r, body)
	}))
	t.Cleanup(srv.Close)
	sa := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(sa, CAFile), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sa, TokenFile), []byte("token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	env := Env{
		NodeName: "node-a", PodName: "wsf-agent-spin-3-x7k2p", PodNamespace: "wasm-shim-fleet", PodUID: "uid-pod",
		APIHost: u.Hostname(), APIPort: u.Port(), SADir: sa,
	}
	k, err := NewKube(env)
	if err != nil {
		t.Fatal(err)
	}
	k.RetryDelays = []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	return k, &seen, env
}

const nodeJSONText = `{"kind":"Node","apiVersion":"v1","metadata":{"name":"node-a","uid":"uid-node",
 "labels":{"kubernetes.io/hostname":"node-a","wasmtime-spin-enabled":"true"},
 "annotations":{"x":"y"},
 "managedFields":[
  {"manager":"kubelet","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:kubernetes.io/hostname":{}}}}},
  {"manager":"wasm-shim-fleet-agent-spin-3","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{"f:x":{}},"f:labels":{"f:wasmtime-spin-enabled":{}}}}}]},
 "status":{"runtimeHandlers":[{"name":"","features":{}},{"name":"runc"},{"name":"spin"}]}}`

func TestGetNodeKeepsLabelsOwnersAndRuntimeHandlers(t *testing.T) {
	k, seen, _ := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		_, _ = io.WriteString(w, nodeJSONText)
	})
	n, err := k.GetNode(context.Background(), "node-a")
	if err != nil {
		t.Fatal(err)
	}
	if (*seen)[0].Method != "GET" || (*seen)[0].Path != "/api/v1/nodes/node-a" {
		t.Errorf("request %+v", (*seen)[0])
	}
	if n.UID != "uid-node" || n.Labels["wasmtime-spin-enabled"] != "true" || n.Annotations["x"] != "y" {
		t.Errorf("node %+v", n)
	}
	if !reflect.DeepEqual(n.RuntimeHandlers, []string{"", "runc", "spin"}) {
		t.Errorf("runtime handlers %q", n.RuntimeHandlers)
	}
	if got := n.LabelOwners("kubernetes.io/hostname"); !reflect.DeepEqual(got, []string{"kubelet"}) {
		t.Errorf("owners %q", got)
	}
	labels, annotations := n.Applied("wasm-shim-fleet-agent-spin-3")
	if !reflect.DeepEqual(labels, map[string]string{"wasmtime-spin-enabled": "true"}) || !reflect.DeepEqual(annotations, map[string]string{"x": "y"}) {
		t.Errorf("applied %v %v", labels, annotations)
	}
}

func TestTheTokenIsReadAgainForEveryRequest(t *testing.T) {
	k, seen, env := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		_, _ = io.WriteString(w, nodeJSONText)
	})
	if _, err := k.GetNode(context.Background(), "node-a"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(env.SADir, TokenFile), []byte("token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := k.GetNode(context.Background(), "node-a"); err != nil {
		t.Fatal(err)
	}
	if (*seen)[0].Auth != "Bearer token-1" || (*seen)[1].Auth != "Bearer token-2" {
		t.Errorf("authorization headers %q, %q", (*seen)[0].Auth, (*seen)[1].Auth)
	}
}

func TestTheServerCertificateIsCheckedAgainstTheServiceAccountCA(t *testing.T) {
	k, seen, env := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		_, _ = io.WriteString(w, nodeJSONText)
	})
	// Another CA: the same server is no longer trusted, and the token is not sent.
	_ = os.WriteFile(filepath.Join(env.SADir, CAFile), otherCA(t), 0o644)
	k2, err := NewKube(env)
	if err != nil {
		t.Fatal(err)
	}
	k2.BaseURL, k2.RetryDelays = k.BaseURL, nil
	_, err = k2.GetNode(context.Background(), "node-a")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("error %v", err)
	}
	if len(*seen) != 0 {
		t.Errorf("the untrusted server got %d requests", len(*seen))
	}
	if strings.Contains(err.Error(), "token-1") {
		t.Errorf("the error shows the token: %v", err)
	}
}

func TestAGetIsRetriedOnA5xxAndNotOnA4xx(t *testing.T) {
	var calls int
	k, seen, _ := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		calls++
		if calls <= 2 {
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"kind":"Status","message":"etcdserver: leader changed","code":500}`)
			return
		}
		_, _ = io.WriteString(w, nodeJSONText)
	})
	if _, err := k.GetNode(context.Background(), "node-a"); err != nil {
		t.Fatal(err)
	}
	if len(*seen) != 3 {
		t.Errorf("%d requests, want 3", len(*seen))
	}

	k, seen, _ = tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(503)
		_, _ = io.WriteString(w, `{"kind":"Status","message":"unavailable","code":503}`)
	})
	_, err := k.GetNode(context.Background(), "node-a")
	if err == nil || !strings.Contains(err.Error(), "unavailable") || len(*seen) != 4 {
		t.Errorf("after %d requests: %v (want 4 requests: one and three retries)", len(*seen), err)
	}

	k, seen, _ = tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"kind":"Status","message":"nodes \"node-a\" not found","reason":"NotFound","code":404}`)
	})
	_, err = k.GetNode(context.Background(), "node-a")
	if err == nil || !strings.Contains(err.Error(), `nodes "node-a" not found`) || len(*seen) != 1 {
		t.Errorf("after %d requests: %v (want 1 request)", len(*seen), err)
	}
}

func TestAnApplySendsTheWholeSetAsServerSideApply(t *testing.T) {
	k, seen, _ := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		_, _ = io.WriteString(w, nodeJSONText)
	})
	_, err := k.ApplyNode(context.Background(), "node-a", "wasm-shim-fleet-agent-spin-3",
		map[string]string{"wasm-shim-fleet.io/pool": "spin-3", "wasmtime-spin-enabled": "true"},
		map[string]string{"spin-3.agent.wasm-shim-fleet.io/status": `{"state":"converged"}`}, true)
	if err != nil {
		t.Fatal(err)
	}
	r := (*seen)[0]
	if r.Method != "PATCH" || r.Path != "/api/v1/nodes/node-a" || r.ContentType != "application/apply-patch+yaml" {
		t.Errorf("request %s %s %s", r.Method, r.Path, r.ContentType)
	}
	if r.Query.Get("fieldManager") != "wasm-shim-fleet-agent-spin-3" || r.Query.Get("force") != "true" {
		t.Errorf("query %v", r.Query)
	}
	want := `{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a","labels":{"wasm-shim-fleet.io/pool":"spin-3","wasmtime-spin-enabled":"true"},"annotations":{"spin-3.agent.wasm-shim-fleet.io/status":"{\"state\":\"converged\"}"}}}`
	if string(r.Body) != want {
		t.Errorf("body\n%s\nwant\n%s", r.Body, want)
	}
	if _, err := k.ApplyNode(context.Background(), "node-a", "m", nil, nil, false); err != nil {
		t.Fatal(err)
	}
	if got := string((*seen)[1].Body); got != `{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a"}}` {
		t.Errorf("empty set body %s", got)
	}
	if (*seen)[1].Query.Get("force") != "false" {
		t.Errorf("force %q", (*seen)[1].Query.Get("force"))
	}
}

func TestA409IsAConflictErrorNamingFieldsAndManagers(t *testing.T) {
	k, seen, _ := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(409)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
 "message":"Apply failed with 2 conflicts: conflicts with \"kubectl-label\" using v1:\n- .metadata.labels.wasmtime-spin-enabled\n- .metadata.labels.wasm.example.org/wasmtime-spin-v3",
 "reason":"Conflict","details":{"causes":[
  {"reason":"FieldManagerConflict","message":"conflict with \"kubectl-label\" using v1","field":".metadata.labels.wasmtime-spin-enabled"},
  {"reason":"FieldManagerConflict","message":"conflict with \"kubectl-label\" using v1","field":".metadata.labels.wasm.example.org/wasmtime-spin-v3"}]},
 "code":409}`)
	})
	_, err := k.ApplyNode(context.Background(), "node-a", "m", map[string]string{"a": "true"}, nil, false)
	ce, ok := IsConflict(err)
	if !ok {
		t.Fatalf("error %T %v, want a ConflictError", err, err)
	}
	if !reflect.DeepEqual(ce.Managers, []string{"kubectl-label"}) {
		t.Errorf("managers %q", ce.Managers)
	}
	var labels []string
	for _, c := range ce.Conflicts {
		labels = append(labels, c.Label()+"="+c.Manager)
	}
	if !reflect.DeepEqual(labels, []string{"wasmtime-spin-enabled=kubectl-label", "wasm.example.org/wasmtime-spin-v3=kubectl-label"}) {
		t.Errorf("conflicts %q", labels)
	}
	if len(*seen) != 1 {
		t.Errorf("an apply was retried (%d requests)", len(*seen))
	}

	// Without causes, the managers still come from the message (the API server's format for several).
	ce = parseConflict([]byte(`{"message":"Apply failed with 2 conflicts: conflicts with \"kubectl-label\" using v1:\n- .metadata.labels.a\nconflicts with \"other\":\n- .metadata.labels.b","code":409}`))
	if !reflect.DeepEqual(ce.Managers, []string{"kubectl-label", "other"}) {
		t.Errorf("managers from the message %q", ce.Managers)
	}
	ce = parseConflict([]byte(`{"message":"Apply failed with 1 conflict: conflict with \"kubectl-label\" using v1: .metadata.labels.a","code":409}`))
	if !reflect.DeepEqual(ce.Managers, []string{"kubectl-label"}) {
		t.Errorf("managers from a one-conflict message %q", ce.Managers)
	}
}

func TestA403QuotesTheAPIsMessage(t *testing.T) {
	msg := `nodes "node-a" is forbidden: ValidatingAdmissionPolicy 'wasm-shim-fleet-agent-labels' with binding 'wasm-shim-fleet-agent-labels' denied request: an agent may label only its own node`
	k, _, _ := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(403)
		b, _ := json.Marshal(map[string]any{"kind": "Status", "message": msg, "reason": "Forbidden", "code": 403})
		_, _ = w.Write(b)
	})
	_, err := k.ApplyNode(context.Background(), "node-a", "m", map[string]string{"a": "true"}, nil, false)
	if err == nil || !strings.Contains(err.Error(), `"`+msg+`"`) {
		t.Fatalf("error %v", err)
	}
	if _, ok := IsConflict(err); ok {
		t.Error("a 403 read as a conflict")
	}
}

func TestAnEventIsAboutThePodAndNamesTheNode(t *testing.T) {
	k, seen, _ := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{}`)
	})
	k.Now = func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600)) }
	long := "handler(s) spin not loaded " + strings.Repeat("é", 600)
	if err := k.Event(context.Background(), "Warning", "ConvergeFailed", long); err != nil {
		t.Fatal(err)
	}
	r := (*seen)[0]
	if r.Method != "POST" || r.Path != "/api/v1/namespaces/wasm-shim-fleet/events" || r.ContentType != "application/json" {
		t.Errorf("request %s %s %s", r.Method, r.Path, r.ContentType)
	}
	var ev map[string]any
	if err := json.Unmarshal(r.Body, &ev); err != nil {
		t.Fatal(err)
	}
	meta := ev["metadata"].(map[string]any)
	if !regexp.MustCompile(`^wsf-agent-spin-3-x7k2p\.[0-9a-f]{16}$`).MatchString(meta["name"].(string)) || meta["namespace"] != "wasm-shim-fleet" {
		t.Errorf("metadata %v", meta)
	}
	wantObj := map[string]any{"apiVersion": "v1", "kind": "Pod", "name": "wsf-agent-spin-3-x7k2p", "namespace": "wasm-shim-fleet", "uid": "uid-pod"}
	if !reflect.DeepEqual(ev["involvedObject"], wantObj) {
		t.Errorf("involvedObject %v", ev["involvedObject"])
	}
	if ev["type"] != "Warning" || ev["reason"] != "ConvergeFailed" || ev["count"] != float64(1) {
		t.Errorf("type/reason/count %v %v %v", ev["type"], ev["reason"], ev["count"])
	}
	if !reflect.DeepEqual(ev["source"], map[string]any{"component": Component, "host": "node-a"}) ||
		ev["reportingComponent"] != Component || ev["reportingInstance"] != "node-a" {
		t.Errorf("source %v %v %v", ev["source"], ev["reportingComponent"], ev["reportingInstance"])
	}
	if ev["firstTimestamp"] != "2026-03-04T04:06:07Z" || ev["lastTimestamp"] != "2026-03-04T04:06:07Z" {
		t.Errorf("timestamps %v %v", ev["firstTimestamp"], ev["lastTimestamp"])
	}
	m := ev["message"].(string)
	if !strings.HasPrefix(m, "node node-a: handler(s) spin") || len(m) > maxEventMessage || len(m) < maxEventMessage-1 || !utf8Valid(m) {
		t.Errorf("message (%d bytes) %q", len(m), m)
	}
}

// otherCA is the PEM of a self-signed CA that signed nothing the test server presents.
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "another cluster"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestAFailedEventIsAnError(t *testing.T) {
	k, _, _ := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(403)
		_, _ = io.WriteString(w, `{"kind":"Status","message":"events is forbidden","code":403}`)
	})
	if err := k.Event(context.Background(), "Normal", "Converged", "x"); err == nil || !strings.Contains(err.Error(), "events is forbidden") {
		t.Errorf("error %v", err)
	}
}
