package main

// The few Kubernetes API calls the agent makes, over plain HTTPS with the pod's service account: read its
// own Node, server-side apply labels and the status annotation to it, and post Events about its own Pod.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Component is the name Events carry as their source.
const Component = "wasm-shim-fleet-agent"

// maxEventMessage is the longest Event message posted (the API server rejects much longer ones, and a
// long message is unreadable in `kubectl describe` anyway).
const maxEventMessage = 1024

// NodeAPI is what the passes need from the API server.
type NodeAPI interface {
	GetNode(ctx context.Context, name string) (*Node, error)
	ApplyNode(ctx context.Context, name, fieldManager string, labels, annotations map[string]string, force bool) (*Node, error)
	Event(ctx context.Context, eventType, reason, message string) error
	// DaemonSetSelector reads the nodeSelector of a DaemonSet's pod template: found is false when the
	// DaemonSet does not exist, deleting is true once its deletion began.
	DaemonSetSelector(ctx context.Context, namespace, name string) (selector map[string]string, found, deleting bool, err error)
}

// Node is the part of a Node the agent reads.
type Node struct {
	Name            string
	UID             string
	Labels          map[string]string
	Annotations     map[string]string
	ManagedFields   []ManagedField
	RuntimeHandlers []string
}

// ManagedField is one managedFields entry, reduced to the labels and annotations it owns.
type ManagedField struct {
	Manager     string
	Operation   string
	Labels      map[string]bool
	Annotations map[string]bool
}

// LabelOwners are the managers of every entry that owns label key, sorted, without repeats.
func (n *Node) LabelOwners(key string) []string {
	set := map[string]bool{}
	for _, mf := range n.ManagedFields {
		if mf.Labels[key] {
			set[mf.Manager] = true
		}
	}
	return sortedKeys(set)
}

// Applied is what manager's server-side applies own now: the labels and annotations (with their values on
// the node) that an apply leaving them out would remove.
func (n *Node) Applied(manager string) (labels, annotations map[string]string) {
	labels, annotations = map[string]string{}, map[string]string{}
	for _, mf := range n.ManagedFields {
		if mf.Manager != manager || mf.Operation != "Apply" {
			continue
		}
		for k := range mf.Labels {
			labels[k] = n.Labels[k]
		}
		for k := range mf.Annotations {
			annotations[k] = n.Annotations[k]
		}
	}
	return labels, annotations
}

type nodeJSON struct {
	Metadata struct {
		Name          string            `json:"name"`
		UID           string            `json:"uid"`
		Labels        map[string]string `json:"labels"`
		Annotations   map[string]string `json:"annotations"`
		ManagedFields []struct {
			Manager   string                     `json:"manager"`
			Operation string                     `json:"operation"`
			FieldsV1  map[string]json.RawMessage `json:"fieldsV1"`
		} `json:"managedFields"`
	} `json:"metadata"`
	Status struct {
		RuntimeHandlers []struct {
			Name string `json:"name"`
		} `json:"runtimeHandlers"`
	} `json:"status"`
}

func decodeNode(data []byte) (*Node, error) {
	var nj nodeJSON
	if err := json.Unmarshal(data, &nj); err != nil {
		return nil, fmt.Errorf("the API sent a Node that does not decode: %v", err)
	}
	n := &Node{
		Name:        nj.Metadata.Name,
		UID:         nj.Metadata.UID,
		Labels:      nj.Metadata.Labels,
		Annotations: nj.Metadata.Annotations,
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	for _, mf := range nj.Metadata.ManagedFields {
		n.ManagedFields = append(n.ManagedFields, ManagedField{
			Manager:     mf.Manager,
			Operation:   mf.Operation,
			Labels:      ownedKeys(mf.FieldsV1, "f:labels"),
			Annotations: ownedKeys(mf.FieldsV1, "f:annotations"),
		})
	}
	for _, h := range nj.Status.RuntimeHandlers {
		n.RuntimeHandlers = append(n.RuntimeHandlers, h.Name)
	}
	return n, nil
}

// ownedKeys reads fieldsV1 -> f:metadata -> <field> -> f:<key>. A part that does not decode owns nothing
// here; the refusal rules then see no owner, which errs toward refusing rather than toward labelling.
func ownedKeys(fields map[string]json.RawMessage, field string) map[string]bool {
	out := map[string]bool{}
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(fields["f:metadata"], &meta); err != nil {
		return out
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(meta[field], &keys); err != nil {
		return out
	}
	for k := range keys {
		if strings.HasPrefix(k, "f:") {
			out[strings.TrimPrefix(k, "f:")] = true
		}
	}
	return out
}

// Kube is the API client.
type Kube struct {
	BaseURL   string
	TokenPath string
	Client    *http.Client
	// RetryDelays are the pauses before each retry of a GET that failed on the network or with a 5xx.
	RetryDelays []time.Duration
	// Who the Events are about and where they come from.
	Namespace string
	Pod       string
	PodUID    string
	NodeName  string
	Now       func() time.Time
}

// NewKube is the in-cluster client of env: the API server's certificate is checked against the service
// account's CA.
func NewKube(env Env) (*Kube, error) {
	caPath := filepath.Join(env.SADir, CAFile)
	ca, err := os.ReadFile(caPath)
	if err != nil {
		return nil, &ConfigError{fmt.Sprintf("cannot read the API server's CA: %v (the pod's service account token is mounted there)", err)}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, &ConfigError{fmt.Sprintf("%s holds no PEM certificate", caPath)}
	}
	return newKube(env, pool), nil
}

// newKube is the client of env trusting the certificates in roots.
func newKube(env Env, roots *x509.CertPool) *Kube {
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Kube{
		BaseURL:     env.APIServerURL(),
		TokenPath:   filepath.Join(env.SADir, TokenFile),
		Client:      &http.Client{Transport: transport, Timeout: 30 * time.Second},
		RetryDelays: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
		Namespace:   env.PodNamespace,
		Pod:         env.PodName,
		PodUID:      env.PodUID,
		NodeName:    env.NodeName,
		Now:         time.Now,
	}
}

// APIError is an answer of the API server other than success.
type APIError struct {
	Op      string
	Code    int
	Reason  string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == http.StatusForbidden {
		// Quoted verbatim: the refusal of an admission policy is written for people and reads well as is.
		return fmt.Sprintf("the API server refused to %s: \"%s\"", e.Op, e.Message)
	}
	reason := e.Reason
	if reason == "" {
		reason = http.StatusText(e.Code)
	}
	return fmt.Sprintf("cannot %s: the API server answered %d %s: %s", e.Op, e.Code, reason, e.Message)
}

// Conflict is one field another manager owns with another value.
type Conflict struct {
	Field   string
	Manager string
}

// Label is the label key of a conflict on a label, or "".
func (c Conflict) Label() string {
	const prefix = ".metadata.labels."
	if strings.HasPrefix(c.Field, prefix) {
		return strings.TrimPrefix(c.Field, prefix)
	}
	return ""
}

// ConflictError is a server-side apply refused because other managers own some of the fields.
type ConflictError struct {
	Conflicts []Conflict
	Managers  []string
	Message   string
}

func (e *ConflictError) Error() string {
	var parts []string
	for _, c := range e.Conflicts {
		parts = append(parts, fmt.Sprintf("%s (owned by %s)", c.Field, c.Manager))
	}
	if len(parts) == 0 {
		return "apply conflict: " + e.Message
	}
	return "apply conflict on " + strings.Join(parts, ", ")
}

type statusJSON struct {
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Details struct {
		Causes []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"causes"`
	} `json:"details"`
}

// conflictManager finds the managers an apply conflict names: `conflict with "kubectl-label" using v1`.
var conflictManager = regexp.MustCompile(`conflicts? with ("(?:[^"\\]|\\.)*")`)

func parseConflict(body []byte) *ConflictError {
	var st statusJSON
	_ = json.Unmarshal(body, &st)
	e := &ConflictError{Message: st.Message}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
	}
	managers := map[string]bool{}
	for _, c := range st.Details.Causes {
		m := ""
		if g := conflictManager.FindStringSubmatch(c.Message); g != nil {
			m, _ = strconv.Unquote(g[1])
		}
		e.Conflicts = append(e.Conflicts, Conflict{Field: c.Field, Manager: m})
		if m != "" {
			managers[m] = true
		}
	}
	for _, g := range conflictManager.FindAllStringSubmatch(e.Message, -1) {
		if m, err := strconv.Unquote(g[1]); err == nil {
			managers[m] = true
		}
	}
	e.Managers = sortedKeys(managers)
	return e
}

func (k *Kube) token() (string, error) {
	b, err := os.ReadFile(k.TokenPath)
	if err != nil {
		return "", fmt.Errorf("cannot read the service account token: %v", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("the service account token %s is empty", k.TokenPath)
	}
	return t, nil
}

// do sends one request. The token is read for every request: bound service account tokens are rotated by
// the kubelet, and a token cached at start stops working within the hour.
func (k *Kube) do(ctx context.Context, method, path string, query url.Values, contentType string, body []byte) (int, []byte, error) {
	token, err := k.token()
	if err != nil {
		return 0, nil, err
	}
	u := k.BaseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", Component)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := k.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

func apiError(op string, code int, body []byte) *APIError {
	var st statusJSON
	e := &APIError{Op: op, Code: code}
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		e.Message, e.Reason = st.Message, st.Reason
	} else {
		e.Message = strings.TrimSpace(string(body))
	}
	return e
}

// GetNode reads a Node. A network error or a 5xx is retried (an API server restarting, a load balancer
// switching); any other answer is final.
func (k *Kube) GetNode(ctx context.Context, name string) (*Node, error) {
	op := "read node " + name
	path := "/api/v1/nodes/" + url.PathEscape(name)
	var lastErr error
	for attempt := 0; ; attempt++ {
		code, body, err := k.do(ctx, http.MethodGet, path, nil, "", nil)
		switch {
		case err == nil && code == http.StatusOK:
			return decodeNode(body)
		case err == nil && code < 500:
			return nil, apiError(op, code, body)
		case err == nil:
			lastErr = apiError(op, code, body)
		default:
			lastErr = fmt.Errorf("cannot %s: %v", op, err)
		}
		if attempt >= len(k.RetryDelays) {
			return nil, lastErr
		}
		select {
		case <-ctx.Done():
			return nil, lastErr
		case <-time.After(k.RetryDelays[attempt]):
		}
	}
}

type applyMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type applyBody struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Metadata   applyMeta `json:"metadata"`
}

// ApplyBody is the server-side apply document: exactly the labels and annotations fieldManager wants on
// the node now. An empty set is left out of the document rather than sent as {}: it then owns nothing.
func ApplyBody(name string, labels, annotations map[string]string) []byte {
	b, _ := json.Marshal(applyBody{
		APIVersion: "v1",
		Kind:       "Node",
		Metadata:   applyMeta{Name: name, Labels: labels, Annotations: annotations},
	})
	return b
}

// ApplyNode server-side applies labels and annotations to a Node as fieldManager. The labels and
// annotations that manager applied before and leaves out now are removed by the API server (unless
// another manager owns them too), so every call carries the whole set. A 409 is a *ConflictError.
func (k *Kube) ApplyNode(ctx context.Context, name, fieldManager string, labels, annotations map[string]string, force bool) (*Node, error) {
	q := url.Values{}
	q.Set("fieldManager", fieldManager)
	q.Set("force", strconv.FormatBool(force))
	code, body, err := k.do(ctx, http.MethodPatch, "/api/v1/nodes/"+url.PathEscape(name), q,
		"application/apply-patch+yaml", ApplyBody(name, labels, annotations))
	op := "apply labels to node " + name
	switch {
	case err != nil:
		return nil, fmt.Errorf("cannot %s: %v", op, err)
	case code == http.StatusConflict:
		return nil, parseConflict(body)
	case code < 200 || code > 299:
		return nil, apiError(op, code, body)
	}
	return decodeNode(body)
}

type objectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	UID        string `json:"uid"`
}

type eventJSON struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	InvolvedObject objectRef `json:"involvedObject"`
	Reason         string    `json:"reason"`
	Message        string    `json:"message"`
	Type           string    `json:"type"`
	Source         struct {
		Component string `json:"component"`
		Host      string `json:"host"`
	} `json:"source"`
	ReportingComponent string `json:"reportingComponent"`
	ReportingInstance  string `json:"reportingInstance"`
	FirstTimestamp     string `json:"firstTimestamp"`
	LastTimestamp      string `json:"lastTimestamp"`
	Count              int    `json:"count"`
}

// EventBody is the core/v1 Event about this agent's Pod. The message names the node (an Event lives in
// the pod's namespace, where the node is not otherwise visible) and is cut to a readable length.
func (k *Kube) EventBody(eventType, reason, message, suffix string) []byte {
	if !strings.Contains(message, k.NodeName) {
		message = "node " + k.NodeName + ": " + message
	}
	now := k.Now().UTC().Format(time.RFC3339)
	var ev eventJSON
	ev.APIVersion, ev.Kind = "v1", "Event"
	ev.Metadata.Name = k.Pod + "." + suffix
	ev.Metadata.Namespace = k.Namespace
	ev.InvolvedObject = objectRef{APIVersion: "v1", Kind: "Pod", Name: k.Pod, Namespace: k.Namespace, UID: k.PodUID}
	ev.Reason, ev.Message, ev.Type = reason, cutUTF8(message, maxEventMessage), eventType
	ev.Source.Component, ev.Source.Host = Component, k.NodeName
	ev.ReportingComponent, ev.ReportingInstance = Component, k.NodeName
	ev.FirstTimestamp, ev.LastTimestamp, ev.Count = now, now, 1
	b, _ := json.Marshal(ev)
	return b
}

// Event posts an Event about this agent's Pod. Callers log a failure and go on: an Event is a courtesy to
// whoever looks, never a reason to leave a node unconverged.
func (k *Kube) Event(ctx context.Context, eventType, reason, message string) error {
	suffix, err := randomID()
	if err != nil {
		return err
	}
	code, body, err := k.do(ctx, http.MethodPost, "/api/v1/namespaces/"+url.PathEscape(k.Namespace)+"/events", nil,
		"application/json", k.EventBody(eventType, reason, message, suffix))
	op := "post event " + reason
	if err != nil {
		return fmt.Errorf("cannot %s: %v", op, err)
	}
	if code < 200 || code > 299 {
		return apiError(op, code, body)
	}
	return nil
}

// DaemonSetSelector reads the nodeSelector of a DaemonSet's pod template (see NodeAPI).
func (k *Kube) DaemonSetSelector(ctx context.Context, namespace, name string) (map[string]string, bool, bool, error) {
	op := "read daemonset " + namespace + "/" + name
	code, body, err := k.do(ctx, http.MethodGet, "/apis/apps/v1/namespaces/"+url.PathEscape(namespace)+
		"/daemonsets/"+url.PathEscape(name), nil, "", nil)
	if err != nil {
		return nil, false, false, fmt.Errorf("cannot %s: %v", op, err)
	}
	if code == http.StatusNotFound {
		return nil, false, false, nil
	}
	if code != http.StatusOK {
		return nil, false, false, apiError(op, code, body)
	}
	var ds struct {
		Metadata struct {
			DeletionTimestamp *string `json:"deletionTimestamp"`
		} `json:"metadata"`
		Spec struct {
			Template struct {
				Spec struct {
					NodeSelector map[string]string `json:"nodeSelector"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &ds); err != nil {
		return nil, false, false, fmt.Errorf("cannot %s: %v", op, err)
	}
	return ds.Spec.Template.Spec.NodeSelector, true, ds.Metadata.DeletionTimestamp != nil, nil
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for i := 0; i < utf8.UTFMax && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// IsConflict returns the *ConflictError in err, if any.
func IsConflict(err error) (*ConflictError, bool) {
	var ce *ConflictError
	ok := errors.As(err, &ce)
	return ce, ok
}

// managersOf lists the managers of the conflicts on label key, sorted.
func (e *ConflictError) managersOf(key string) []string {
	set := map[string]bool{}
	for _, c := range e.Conflicts {
		if c.Label() == key && c.Manager != "" {
			set[c.Manager] = true
		}
	}
	out := sortedKeys(set)
	if len(out) == 0 {
		out = append(out, e.Managers...)
	}
	sort.Strings(out)
	return out
}
