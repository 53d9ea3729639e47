package main

// A small stand-in API server for the passes: one Node with labels, annotations, field ownership and
// runtime handlers; server-side apply with the semantics the passes rely on (a manager's applied set
// replaces its previous one, fields it drops go unless another manager owns them, conflicts on fields
// another manager owns with another value unless forced); and Events. It also keeps the journal of calls
// that the fake host runner writes to, so tests can check the order of API writes and host runs.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// journal is the order of what happened, across the API and the host.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

type owner struct {
	op          string
	labels      map[string]bool
	annotations map[string]bool
}

type applyCall struct {
	labels, annotations map[string]string
	force               bool
	manager             string
}

type eventCall struct{ typ, reason, message string }

type fakeAPI struct {
	mu          sync.Mutex
	j           *journal
	labels      map[string]string
	annotations map[string]string
	owners      map[string]*owner
	handlers    []string
	applies     []applyCall
	events      []eventCall
	gets        int
	// beforeApply, when set, runs before each apply is processed (under the lock).
	beforeApply func(f *fakeAPI)
	// dsJSON is the body of GET .../daemonsets/wsf-agent-spin-3 ("" answers 404).
	dsJSON string
}

func newFakeAPI(j *journal) *fakeAPI {
	return &fakeAPI{j: j, labels: map[string]string{"kubernetes.io/hostname": "node-a"}, annotations: map[string]string{},
		owners: map[string]*owner{"kubelet": {op: "Update", labels: map[string]bool{"kubernetes.io/hostname": true}, annotations: map[string]bool{}}}}
}

// set gives label key=value to manager (op Apply for the fleet's managers, Update for kubectl and others).
func (f *fakeAPI) set(manager, op, key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.labels[key] = value
	o := f.ownerOf(manager, op)
	o.labels[key] = true
}

func (f *fakeAPI) setAnnotation(manager, key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.annotations[key] = value
	f.ownerOf(manager, "Apply").annotations[key] = true
}

// removeLabel is `kubectl label node node-a key-`: the label and every claim on it go.
func (f *fakeAPI) removeLabel(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.labels, key)
	for _, o := range f.owners {
		delete(o.labels, key)
	}
}

func (f *fakeAPI) ownerOf(manager, op string) *owner {
	o := f.owners[manager]
	if o == nil {
		o = &owner{op: op, labels: map[string]bool{}, annotations: map[string]bool{}}
		f.owners[manager] = o
	}
	return o
}

func (f *fakeAPI) snapshotLabels() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.labels {
		out[k] = v
	}
	return out
}

func (f *fakeAPI) status(t *testing.T, key string) Status {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := ParseStatus(f.annotations[key])
	if !ok {
		t.Fatalf("no status annotation %s: %v", key, f.annotations)
	}
	return s
}

func (f *fakeAPI) nodeJSON() []byte {
	fields := func(m map[string]bool) map[string]any {
		out := map[string]any{}
		for k := range m {
			out["f:"+k] = map[string]any{}
		}
		return out
	}
	var mfs []any
	for _, name := range sortedKeys(f.owners) {
		o := f.owners[name]
		mfs = append(mfs, map[string]any{
			"manager": name, "operation": o.op, "apiVersion": "v1", "fieldsType": "FieldsV1",
			"fieldsV1": map[string]any{"f:metadata": map[string]any{"f:labels": fields(o.labels), "f:annotations": fields(o.annotations)}},
		})
	}
	var rh []any
	for _, h := range f.handlers {
		rh = append(rh, map[string]any{"name": h})
	}
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": "node-a", "uid": "uid-node", "labels": f.labels, "annotations": f.annotations, "managedFields": mfs},
		"status":   map[string]any{"runtimeHandlers": rh},
	})
	return b
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/nodes/node-a":
		f.gets++
		f.j.add("GET")
		_, _ = w.Write(f.nodeJSON())
	case r.Method == "PATCH" && r.URL.Path == "/api/v1/nodes/node-a":
		if f.beforeApply != nil {
			f.beforeApply(f)
		}
		f.apply(w, r, body)
	case r.Method == "GET" && r.URL.Path == "/apis/apps/v1/namespaces/wsf/daemonsets/wsf-agent-spin-3":
		f.j.add("GET daemonset")
		if f.dsJSON == "" {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"kind":"Status","code":404}`))
			return
		}
		_, _ = w.Write([]byte(f.dsJSON))
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/events"):
		var ev struct{ Type, Reason, Message string }
		_ = json.Unmarshal(body, &ev)
		f.events = append(f.events, eventCall{ev.Type, ev.Reason, ev.Message})
		f.j.add("EVENT " + ev.Type + " " + ev.Reason)
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{}`))
	default:
		w.WriteHeader(404)
		_, _ = fmt.Fprintf(w, `{"kind":"Status","message":"no %s %s here","code":404}`, r.Method, r.URL.Path)
	}
}

func (f *fakeAPI) apply(w http.ResponseWriter, r *http.Request, body []byte) {
	var doc struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(body, &doc)
	manager := r.URL.Query().Get("fieldManager")
	force := r.URL.Query().Get("force") == "true"
	call := applyCall{labels: doc.Metadata.Labels, annotations: doc.Metadata.Annotations, force: force, manager: manager}
	if call.labels == nil {
		call.labels = map[string]string{}
	}
	if call.annotations == nil {
		call.annotations = map[string]string{}
	}
	f.applies = append(f.applies, call)
	f.j.add(fmt.Sprintf("APPLY force=%v labels=%s", force, strings.Join(sortedKeys(call.labels), ",")))

	type conflict struct{ field, manager string }
	var conflicts []conflict
	check := func(kind string, want map[string]string, have map[string]string, owned func(*owner) map[string]bool) {
		for _, k := range sortedKeys(want) {
			if v, ok := have[k]; !ok || v == want[k] {
				continue
			}
			for _, name := range sortedKeys(f.owners) {
				if name != manager && owned(f.owners[name])[k] {
					conflicts = append(conflicts, conflict{".metadata." + kind + "." + k, name})
				}
			}
		}
	}
	check("labels", call.labels, f.labels, func(o *owner) map[string]bool { return o.labels })
	check("annotations", call.annotations, f.annotations, func(o *owner) map[string]bool { return o.annotations })
	if len(conflicts) > 0 && !force {
		var causes []any
		var lines []string
		for _, c := range conflicts {
			causes = append(causes, map[string]any{"reason": "FieldManagerConflict", "message": fmt.Sprintf("conflict with %q using v1", c.manager), "field": c.field})
			lines = append(lines, fmt.Sprintf("conflict with %q using v1: %s", c.manager, c.field))
		}
		b, _ := json.Marshal(map[string]any{"kind": "Status", "status": "Failure", "reason": "Conflict", "code": 409,
			"message": fmt.Sprintf("Apply failed with %d conflicts: %s", len(conflicts), strings.Join(lines, "\n")),
			"details": map[string]any{"causes": causes}})
		w.WriteHeader(409)
		_, _ = w.Write(b)
		return
	}
	for _, c := range conflicts { // forced: the other managers lose those fields
		kind, key, _ := strings.Cut(strings.TrimPrefix(c.field, ".metadata."), ".")
		if kind == "labels" {
			delete(f.owners[c.manager].labels, key)
		} else {
			delete(f.owners[c.manager].annotations, key)
		}
	}
	prev := f.ownerOf(manager, "Apply")
	drop := func(old map[string]bool, want map[string]string, values map[string]string, owned func(*owner) map[string]bool) {
		for k := range old {
			if _, keep := want[k]; keep {
				continue
			}
			shared := false
			for name, o := range f.owners {
				shared = shared || (name != manager && owned(o)[k])
			}
			if !shared {
				delete(values, k)
			}
		}
	}
	drop(prev.labels, call.labels, f.labels, func(o *owner) map[string]bool { return o.labels })
	drop(prev.annotations, call.annotations, f.annotations, func(o *owner) map[string]bool { return o.annotations })
	next := &owner{op: "Apply", labels: map[string]bool{}, annotations: map[string]bool{}}
	for k, v := range call.labels {
		f.labels[k] = v
		next.labels[k] = true
	}
	for k, v := range call.annotations {
		f.annotations[k] = v
		next.annotations[k] = true
	}
	if len(next.labels)+len(next.annotations) == 0 {
		delete(f.owners, manager)
	} else {
		f.owners[manager] = next
	}
	_, _ = w.Write(f.nodeJSON())
}

// fakeHost runs nothing: each script (by its text) has a canned result, and each run is journaled with
// the labels the node carried at that moment.
type fakeHost struct {
	j        *journal
	api      *fakeAPI
	results  map[string]Result
	errs     map[string]error
	payloads map[string]*string
	// labelsAt are the node's labels when each script ran (the last run of each).
	labelsAt map[string]map[string]string
}

func newFakeHost(j *journal, api *fakeAPI) *fakeHost {
	return &fakeHost{j: j, api: api, results: map[string]Result{}, errs: map[string]error{}, payloads: map[string]*string{},
		labelsAt: map[string]map[string]string{}}
}

func (h *fakeHost) RunOnHost(_ context.Context, script string, payload *string) (Result, error) {
	h.j.add("RUN " + script)
	h.labelsAt[script] = h.api.snapshotLabels()
	h.payloads[script] = payload
	if err := h.errs[script]; err != nil {
		return Result{}, err
	}
	if r, ok := h.results[script]; ok {
		return r, nil
	}
	return Result{Stdout: "unchanged\n"}, nil
}
