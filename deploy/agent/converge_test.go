package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testClaim   = "wasm-shim-fleet.io/pool"
	testStatus  = "spin-3.agent.wasm-shim-fleet.io/status"
	testManager = "wasm-shim-fleet-agent-spin-3"
	exactLabel  = "wasmtime-spin-v3-1-2"
	anyLabel    = "wasmtime-spin-enabled"
	oldDesired  = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
)

func testState() *State {
	return &State{
		Version:          1,
		Pool:             "spin-3",
		Desired:          strings.Repeat("ab", 32),
		Releases:         []string{"spin@3.1.2"},
		Labels:           map[string]string{exactLabel: "spin-v3-1-2", anyLabel: "spin"},
		ClaimLabel:       testClaim,
		FleetLabelPrefix: "wasmtime-",
		StatusAnnotation: testStatus,
		FieldManager:     testManager,
		Handlers:         map[string]string{"spin": "io.containerd.spin-v3-1-2.v1", "spin-v3-1-2": "io.containerd.spin-v3-1-2.v1"},
		VerifySeconds:    1,
		CheckSeconds:     60,
		Scripts:          Scripts{Binaries: "BINARIES", Table: "TABLE", Status: "STATUS", Uninstall: "UNINSTALL"},
		Kit:              "KIT",
	}
}

type world struct {
	t    *testing.T
	j    *journal
	api  *fakeAPI
	host *fakeHost
	conv *Converger
	log  *testLog
}

func newWorld(t *testing.T) *world {
	t.Helper()
	j := &journal{}
	api := newFakeAPI(j)
	api.handlers = []string{"runc", "spin", "spin-v3", "spin-v3-1-2"}
	k, _, _ := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, body []byte) { api.ServeHTTP(w, r, body) })
	host := newFakeHost(j, api)
	host.results["STATUS"] = Result{Stdout: "wsf-status handler spin io.containerd.spin-v3-1-2.v1 ok\n" +
		"wsf-status handler spin-v3-1-2 io.containerd.spin-v3-1-2.v1 ok\n"}
	log := &testLog{t: t}
	conv := &Converger{
		NodeName: "node-a", St: testState(), API: k, Host: host, Log: log.Printf,
		Ready:          ReadyFile{Path: filepath.Join(t.TempDir(), "ready")},
		VerifyInterval: 5 * time.Millisecond, VerifyTimeout: 60 * time.Millisecond,
	}
	return &world{t: t, j: j, api: api, host: host, conv: conv, log: log}
}

// installing makes the scripts report what a first install reports.
func (w *world) installing() {
	w.host.results["BINARIES"] = Result{Stdout: "wasm-shim-fleet: installed containerd-shim-spin-v3-1-2-v1\nchanged\n"}
	w.host.results["TABLE"] = Result{Stdout: "wasm-shim-fleet: wrote the handler table (2 handlers)\nwasm-shim-fleet: containerd restarted\nchanged\n"}
}

// steady makes the scripts report that nothing had to change.
func (w *world) steady() {
	w.host.results["BINARIES"] = Result{Stdout: "unchanged\n"}
	w.host.results["TABLE"] = Result{Stdout: "unchanged\n"}
}

// converged runs a first, successful install pass and forgets what it recorded.
func (w *world) converged() {
	w.t.Helper()
	w.installing()
	if out := w.conv.Install(context.Background()); out.State != StateConverged {
		w.t.Fatalf("first pass: %+v", out)
	}
	w.steady()
	w.reset()
}

func (w *world) reset() {
	w.j.mu.Lock()
	w.j.entries = nil
	w.j.mu.Unlock()
	w.api.mu.Lock()
	w.api.applies, w.api.events, w.api.gets = nil, nil, 0
	w.api.mu.Unlock()
}

func (w *world) wantJournal(want ...string) {
	w.t.Helper()
	if got := w.j.list(); !reflect.DeepEqual(got, want) {
		w.t.Errorf("calls\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (w *world) wantLabels(want map[string]string) {
	w.t.Helper()
	got := w.api.snapshotLabels()
	delete(got, "kubernetes.io/hostname")
	if !reflect.DeepEqual(got, want) {
		w.t.Errorf("node labels %v, want %v", got, want)
	}
}

func (w *world) wantEvents(want ...string) {
	w.t.Helper()
	var got []string
	for _, e := range w.api.events {
		got = append(got, e.typ+" "+e.reason)
	}
	if !reflect.DeepEqual(got, want) {
		w.t.Errorf("events %q, want %q", got, want)
	}
}

func (w *world) wantReady(ready bool) {
	w.t.Helper()
	if w.conv.Ready.IsReady() != ready {
		w.t.Errorf("ready = %v, want %v", !ready, ready)
	}
}

func TestAFreshNodeIsClaimedFirstAndLabelledOnlyAfterTheHandlersAreVerified(t *testing.T) {
	w := newWorld(t)
	w.installing()
	out := w.conv.Install(context.Background())
	if out.State != StateConverged || !out.Changed {
		t.Fatalf("outcome %+v", out)
	}
	w.wantJournal("GET", "APPLY force=false labels="+testClaim, "RUN BINARIES", "RUN TABLE", "GET",
		"APPLY force=false labels="+testClaim+","+anyLabel+","+exactLabel, "EVENT Normal Converged")
	if w.host.labelsAt["TABLE"][anyLabel] != "" || w.host.labelsAt["TABLE"][testClaim] != "spin-3" {
		t.Errorf("labels while the table ran: %v", w.host.labelsAt["TABLE"])
	}
	if p := w.host.payloads["BINARIES"]; p == nil || *p != "KIT" {
		t.Errorf("the binaries script did not get the kit as its payload: %v", p)
	}
	if w.host.payloads["TABLE"] != nil {
		t.Error("the table script got a payload")
	}
	w.wantLabels(map[string]string{testClaim: "spin-3", anyLabel: "true", exactLabel: "true"})
	if got := w.api.applies[0].annotations[testStatus]; !strings.Contains(got, `"state":"converging"`) {
		t.Errorf("phase A status %s", got)
	}
	s := w.api.status(t, testStatus)
	if s.State != StateConverged || s.Desired != w.conv.St.Desired || s.Pool != "spin-3" || s.Attempts != 0 ||
		!strings.HasPrefix(s.Changed, "installed containerd-shim-spin-v3-1-2-v1; wrote the handler table (2 handlers); containerd restarted") {
		t.Errorf("status %+v", s)
	}
	b, err := os.ReadFile(w.conv.Ready.Path)
	if err != nil || strings.TrimSpace(string(b)) != w.conv.St.Desired {
		t.Errorf("ready file %q, %v", b, err)
	}
	if !strings.Contains(w.api.events[0].message, "node-a") || !strings.Contains(w.api.events[0].message, "containerd restarted") {
		t.Errorf("event message %q", w.api.events[0].message)
	}
}

func TestAConvergedUnchangedNodeCostsOneReadAndNoWrite(t *testing.T) {
	w := newWorld(t)
	w.converged()
	before := w.api.status(t, testStatus)
	out := w.conv.Install(context.Background())
	if out.State != StateConverged || out.Changed {
		t.Fatalf("outcome %+v", out)
	}
	w.wantJournal("GET", "RUN BINARIES", "RUN TABLE")
	if w.api.gets != 1 || len(w.api.applies) != 0 || len(w.api.events) != 0 {
		t.Errorf("%d reads, %d writes, %d events", w.api.gets, len(w.api.applies), len(w.api.events))
	}
	if after := w.api.status(t, testStatus); after != before {
		t.Errorf("status moved from %+v to %+v", before, after)
	}
	w.wantReady(true)
}

func TestANodeClaimedByAnotherPoolIsRefusedWithoutAnyLabelWrite(t *testing.T) {
	w := newWorld(t)
	w.api.set("wasm-shim-fleet-agent-other", "Apply", testClaim, "other")
	w.api.set("wasm-shim-fleet-agent-other", "Apply", "wasmtime-slight-enabled", "true")
	out := w.conv.Install(context.Background())
	want := "node node-a is selected by pools spin-3 and other (its label " + testClaim + "=other); a node belongs to one pool: " +
		"change the nodeSelector of one of them; nothing was changed on this node"
	if out.State != StateRefused || out.Reason != want {
		t.Fatalf("outcome %+v", out)
	}
	w.wantJournal("GET", "APPLY force=false labels=", "EVENT Warning Refused")
	if a := w.api.applies[0]; len(a.labels) != 0 || len(a.annotations) != 1 {
		t.Errorf("the refusal applied %+v", a)
	}
	w.wantLabels(map[string]string{testClaim: "other", "wasmtime-slight-enabled": "true"})
	if s := w.api.status(t, testStatus); s.State != StateRefused || s.Reason != want {
		t.Errorf("status %+v", s)
	}
	w.wantReady(false)
	// The same refusal again: no write, no second Event.
	w.reset()
	w.conv.Install(context.Background())
	w.wantJournal("GET")
}

func TestANodeAlsoListedByNameInAnotherPoolIsRefused(t *testing.T) {
	w := newWorld(t)
	w.api.set("wasm-shim-fleet-node-a", "Apply", anyLabel, "true")
	out := w.conv.Install(context.Background())
	want := "node node-a carries fleet labels managed by wasm-shim-fleet-node-a (a pool that lists nodes by name, or another stack); " +
		"a node belongs to one pool: remove it there first; nothing was changed on this node"
	if out.State != StateRefused || out.Reason != want {
		t.Fatalf("outcome %+v", out)
	}
	w.wantJournal("GET", "APPLY force=false labels=", "EVENT Warning Refused")
	w.wantLabels(map[string]string{anyLabel: "true"})
}

func TestAFleetLabelThisPoolDoesNotPromiseAndDidNotSetIsRefused(t *testing.T) {
	w := newWorld(t)
	w.api.set("kubectl-label", "Update", "wasmtime-slight-v1-2-3", "true")
	out := w.conv.Install(context.Background())
	want := "node node-a has label wasmtime-slight-v1-2-3, set by kubectl-label and not by this pool's agent, which promises a handler " +
		"this pool does not provide; remove that label; nothing was changed on this node"
	if out.State != StateRefused || out.Reason != want {
		t.Fatalf("outcome %+v", out)
	}
	w.wantJournal("GET", "APPLY force=false labels=", "EVENT Warning Refused")
}

func TestAClaimTakenByAnotherPoolDuringThePassIsARefusal(t *testing.T) {
	w := newWorld(t)
	w.api.beforeApply = func(f *fakeAPI) {
		if len(f.applies) == 0 {
			f.labels[testClaim] = "other"
			f.ownerOf("wasm-shim-fleet-agent-other", "Apply").labels[testClaim] = true
		}
	}
	out := w.conv.Install(context.Background())
	if out.State != StateRefused || !strings.Contains(out.Reason, "selected by pools spin-3 and other") {
		t.Fatalf("outcome %+v", out)
	}
	for _, e := range w.j.list() {
		if strings.HasPrefix(e, "RUN") {
			t.Errorf("a script ran on a refused node: %q", w.j.list())
		}
	}
	w.wantLabels(map[string]string{testClaim: "other"})
}

func TestAStaleLabelComesOffInPhaseABeforeAnyScriptRuns(t *testing.T) {
	w := newWorld(t)
	// Converged on an earlier desired state, which promised spin 3.1.1.
	w.api.set(testManager, "Apply", testClaim, "spin-3")
	w.api.set(testManager, "Apply", anyLabel, "true")
	w.api.set(testManager, "Apply", "wasmtime-spin-v3-1-1", "true")
	w.api.setAnnotation(testManager, testStatus, Status{Pool: "spin-3", Desired: oldDesired, State: StateConverged, Since: "2026-01-01T00:00:00Z"}.Encode())
	w.installing()
	out := w.conv.Install(context.Background())
	if out.State != StateConverged {
		t.Fatalf("outcome %+v", out)
	}
	w.wantJournal("GET", "APPLY force=false labels="+testClaim+","+anyLabel, "RUN BINARIES", "RUN TABLE", "GET",
		"APPLY force=false labels="+testClaim+","+anyLabel+","+exactLabel, "EVENT Normal Converged")
	for _, script := range []string{"BINARIES", "TABLE"} {
		if _, ok := w.host.labelsAt[script]["wasmtime-spin-v3-1-1"]; ok {
			t.Errorf("the stale label was still on the node when %s ran", script)
		}
	}
	if w.host.labelsAt["TABLE"][anyLabel] != "true" {
		t.Error("a label that still holds was taken off during the pass")
	}
	w.wantLabels(map[string]string{testClaim: "spin-3", anyLabel: "true", exactLabel: "true"})
	if !strings.Contains(out.Summary, "labels removed: wasmtime-spin-v3-1-1") {
		t.Errorf("summary %q", out.Summary)
	}
}

func TestABinariesFailureKeepsOnlyTheLabelsWhoseHandlerTheStatusListsOk(t *testing.T) {
	w := newWorld(t)
	w.converged()
	w.host.results["BINARIES"] = Result{Stderr: "wasm-shim-fleet: error: download of https://example.org/spin.tar.gz failed: 404\n", Exit: 1}
	w.host.results["STATUS"] = Result{Stdout: "wsf-status handler spin io.containerd.spin-v3-1-2.v1 ok\n" +
		"wsf-status handler spin-v3-1-2 io.containerd.spin-v3-1-2.v1 no-binary\n"}
	out := w.conv.Install(context.Background())
	reason := "download of https://example.org/spin.tar.gz failed: 404"
	if out.State != StateFailed || out.Reason != reason {
		t.Fatalf("outcome %+v", out)
	}
	w.wantJournal("GET", "RUN BINARIES", "RUN STATUS", "APPLY force=false labels="+testClaim+","+anyLabel, "EVENT Warning ConvergeFailed")
	w.wantLabels(map[string]string{testClaim: "spin-3", anyLabel: "true"})
	s := w.api.status(t, testStatus)
	if s.State != StateFailed || s.Reason != reason || s.Attempts != 1 {
		t.Errorf("status %+v", s)
	}
	w.wantReady(false)
	// The same failure again: one more attempt counted, no second Event.
	w.reset()
	w.conv.Install(context.Background())
	if s := w.api.status(t, testStatus); s.Attempts != 2 {
		t.Errorf("attempts %d after the second failure", s.Attempts)
	}
	w.wantEvents()
}

func TestAStatusScriptThatFailsKeepsNoLabel(t *testing.T) {
	w := newWorld(t)
	w.converged()
	w.host.results["TABLE"] = Result{Stderr: "wasm-shim-fleet: error: containerd did not come back\n", Exit: 1}
	w.host.results["STATUS"] = Result{Stderr: "wasm-shim-fleet: error: cannot read the config\n", Exit: 1}
	out := w.conv.Install(context.Background())
	if out.State != StateFailed || out.Reason != "containerd did not come back" {
		t.Fatalf("outcome %+v", out)
	}
	w.wantLabels(map[string]string{testClaim: "spin-3"})
}

func TestAHandlerTheKubeletNeverReportsFailsTheVerifyAndOnlyConfirmedLabelsStay(t *testing.T) {
	w := newWorld(t)
	w.api.set(testManager, "Apply", testClaim, "spin-3")
	w.api.set(testManager, "Apply", anyLabel, "true")
	w.api.set(testManager, "Apply", exactLabel, "true")
	w.api.setAnnotation(testManager, testStatus, Status{Pool: "spin-3", Desired: oldDesired, State: StateConverged, Since: "2026-01-01T00:00:00Z"}.Encode())
	w.api.handlers = []string{"runc", "spin"}
	w.installing()
	w.host.results["STATUS"] = Result{Stdout: "wsf-status handler spin io.containerd.spin-v3-1-2.v1 ok\n" +
		"wsf-status handler spin-v3-1-2 io.containerd.spin-v3-1-2.v1 no-binary\n"}
	out := w.conv.Install(context.Background())
	want := "handler(s) spin-v3-1-2 not in node.status.runtimeHandlers after 1s (the kubelet reports: runc spin): containerd did not load them"
	if out.State != StateFailed || out.Reason != want {
		t.Fatalf("outcome %+v", out)
	}
	if w.api.gets < 3 {
		t.Errorf("the handlers were read %d times; the verify did not wait", w.api.gets)
	}
	w.wantLabels(map[string]string{testClaim: "spin-3", anyLabel: "true"})
	w.wantReady(false)
}

func TestAKubeletThatReportsNoHandlersAtAllCountsAsVerified(t *testing.T) {
	w := newWorld(t)
	w.api.handlers = nil
	w.installing()
	if out := w.conv.Install(context.Background()); out.State != StateConverged {
		t.Fatalf("outcome %+v", out)
	}
	w.wantLabels(map[string]string{testClaim: "spin-3", anyLabel: "true", exactLabel: "true"})
}

func TestALabelOwnedByAnotherManagerFailsThePassUnlessForceLabelsIsSet(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("forceLabels=%v", force), func(t *testing.T) {
			w := newWorld(t)
			w.conv.St.ForceLabels = force
			w.api.set("kubectl-label", "Update", anyLabel, "false")
			w.installing()
			out := w.conv.Install(context.Background())
			if !force {
				want := "label " + anyLabel + " on node node-a is owned by field manager kubectl-label; remove that label " +
					"(or stop that automation), or set kubernetes.forceLabels: true to take it over"
				if out.State != StateFailed || out.Reason != want {
					t.Fatalf("outcome %+v", out)
				}
				w.wantLabels(map[string]string{testClaim: "spin-3", anyLabel: "false"})
				return
			}
			if out.State != StateConverged {
				t.Fatalf("outcome %+v", out)
			}
			var forced []bool
			for _, a := range w.api.applies {
				forced = append(forced, a.force)
			}
			if !reflect.DeepEqual(forced, []bool{false, false, true}) {
				t.Errorf("applies with force %v, want phase A, phase B, phase B forced", forced)
			}
			w.wantLabels(map[string]string{testClaim: "spin-3", anyLabel: "true", exactLabel: "true"})
		})
	}
}

func TestDriftOnAConvergedNodeIsRepairedAndSaidSo(t *testing.T) {
	w := newWorld(t)
	w.installing()
	w.conv.Install(context.Background())
	w.wantEvents("Normal Converged")
	w.steady()

	// Someone removed a label: the next pass puts it back, and calls that a repair.
	w.reset()
	w.api.removeLabel(anyLabel)
	out := w.conv.Install(context.Background())
	if out.State != StateConverged || !out.Changed || !strings.Contains(out.Summary, "labels added: "+anyLabel) {
		t.Fatalf("outcome %+v", out)
	}
	w.wantEvents("Normal Repaired")
	w.wantLabels(map[string]string{testClaim: "spin-3", anyLabel: "true", exactLabel: "true"})

	// A binary went missing: the kit puts it back, and that is a repair too.
	w.reset()
	w.host.results["BINARIES"] = Result{Stdout: "wasm-shim-fleet: installed containerd-shim-spin-v3-1-2-v1\nchanged\n"}
	out = w.conv.Install(context.Background())
	if !out.Changed || out.Summary != "installed containerd-shim-spin-v3-1-2-v1" {
		t.Fatalf("outcome %+v", out)
	}
	w.wantEvents("Normal Repaired")
	if s := w.api.status(t, testStatus); s.Changed != "installed containerd-shim-spin-v3-1-2-v1" {
		t.Errorf("status %+v", s)
	}

	// Nothing to repair: no Event.
	w.reset()
	w.steady()
	w.conv.Install(context.Background())
	w.wantEvents()
}

func TestAPassThatCannotReadTheNodeLeavesReadinessAlone(t *testing.T) {
	w := newWorld(t)
	w.converged()
	w.conv.NodeName = "node-b" // the fake API knows only node-a: every read fails
	out := w.conv.Install(context.Background())
	if out.State != StateFailed || !strings.Contains(out.Reason, "no GET") {
		t.Fatalf("outcome %+v", out)
	}
	w.wantReady(true)
}

func TestUninstallTakesTheLabelsOffRunsTheScriptThenDropsClaimAndStatus(t *testing.T) {
	w := newWorld(t)
	w.converged()
	w.host.results["UNINSTALL"] = Result{Stdout: "wasm-shim-fleet: removed the handler table\nwasm-shim-fleet: containerd restarted\nchanged\n"}
	out := w.conv.Uninstall(context.Background())
	if out.State != OutcomeUninstalled || !out.Done {
		t.Fatalf("outcome %+v", out)
	}
	w.wantJournal("GET", "APPLY force=false labels="+testClaim, "RUN UNINSTALL", "APPLY force=false labels=", "EVENT Normal Uninstalled")
	if got := w.host.labelsAt["UNINSTALL"]; got[anyLabel] != "" || got[exactLabel] != "" || got[testClaim] != "spin-3" {
		t.Errorf("labels while the uninstall script ran: %v", got)
	}
	if got := w.api.applies[0].annotations[testStatus]; !strings.Contains(got, `"state":"uninstalling"`) {
		t.Errorf("status during the uninstall %s", got)
	}
	w.wantLabels(map[string]string{})
	if _, ok := w.api.annotations[testStatus]; ok {
		t.Error("the status annotation stayed")
	}
	w.wantReady(true)
}

func TestAFailedUninstallIsRecordedAndNotReady(t *testing.T) {
	w := newWorld(t)
	w.converged()
	w.host.results["UNINSTALL"] = Result{Stderr: "wasm-shim-fleet: error: containerd did not come back; the table was restored\n", Exit: 1}
	out := w.conv.Uninstall(context.Background())
	if out.State != StateFailed || out.Done || out.Reason != "containerd did not come back; the table was restored" {
		t.Fatalf("outcome %+v", out)
	}
	w.wantLabels(map[string]string{testClaim: "spin-3"})
	if s := w.api.status(t, testStatus); s.State != StateFailed || s.Attempts != 1 {
		t.Errorf("status %+v", s)
	}
	w.wantEvents("Warning UninstallFailed")
	w.wantReady(false)
}

func TestUninstallOnAnotherPoolsNodeOnlyDropsWhatThisManagerHeld(t *testing.T) {
	w := newWorld(t)
	w.api.set("wasm-shim-fleet-agent-other", "Apply", testClaim, "other")
	w.api.set("wasm-shim-fleet-agent-other", "Apply", anyLabel, "true")
	w.api.setAnnotation(testManager, testStatus, Status{Pool: "spin-3", State: StateRefused}.Encode())
	out := w.conv.Uninstall(context.Background())
	if out.State != OutcomeReleased || !out.Done {
		t.Fatalf("outcome %+v", out)
	}
	w.wantJournal("GET", "APPLY force=false labels=")
	w.wantLabels(map[string]string{testClaim: "other", anyLabel: "true"})
	if _, ok := w.api.annotations[testStatus]; ok {
		t.Error("this manager's status annotation stayed")
	}
	w.wantReady(true)
}

func TestAFailedEventDoesNotFailThePass(t *testing.T) {
	w := newWorld(t)
	w.installing()
	w.conv.API = eventlessAPI{w.conv.API}
	if out := w.conv.Install(context.Background()); out.State != StateConverged {
		t.Fatalf("outcome %+v", out)
	}
	if !w.log.has("cannot post the Converged event") {
		t.Errorf("the failed Event was not logged: %q", w.log.lines)
	}
}

type eventlessAPI struct{ NodeAPI }

func (eventlessAPI) Event(context.Context, string, string, string) error {
	return fmt.Errorf("events are forbidden")
}

func dsWithSelector(selector string, deleting bool) string {
	del := ""
	if deleting {
		del = `"deletionTimestamp":"2026-12-03T10:00:00Z"`
	}
	return `{"metadata":{` + del + `},"spec":{"template":{"spec":{"nodeSelector":` + selector + `}}}}`
}

func TestANodeThatLeftThePoolIsUninstalledAsItsAgentEnds(t *testing.T) {
	w := newWorld(t)
	w.installing()
	if out := w.conv.Install(context.Background()); out.State != StateConverged {
		t.Fatalf("install: %+v", out)
	}
	w.api.dsJSON = dsWithSelector(`{"example.org/wasm":"spin"}`, false) // the node carries no such label
	w.host.results["UNINSTALL"] = Result{Stdout: "wasm-shim-fleet: removed the handler table\nchanged\n"}
	out := w.conv.LeaveIfUnselected(context.Background(), "wsf", "wsf-agent-spin-3")
	if out.State != OutcomeUninstalled {
		t.Fatalf("expected an uninstall, got %+v", out)
	}
	if got := w.api.snapshotLabels(); got[exactLabel] != "" || got[testClaim] != "" {
		t.Fatalf("labels left after leaving the pool: %v", got)
	}
	if _, ran := w.host.labelsAt["UNINSTALL"]; !ran {
		t.Fatal("the uninstall script did not run")
	}
	if at := w.host.labelsAt["UNINSTALL"]; at[exactLabel] != "" {
		t.Fatalf("the uninstall script ran while the node still had label %s: %v", exactLabel, at)
	}
}

func TestAnAgentEndingOnANodeStillSelectedOrWhoseDaemonSetGoesKeepsTheNodeAsItIs(t *testing.T) {
	for name, ds := range map[string]string{
		"still selected":       dsWithSelector(`{"kubernetes.io/hostname":"node-a"}`, false),
		"daemonset deleting":   dsWithSelector(`{"example.org/wasm":"spin"}`, true),
		"daemonset gone (404)": "",
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.installing()
			if out := w.conv.Install(context.Background()); out.State != StateConverged {
				t.Fatalf("install: %+v", out)
			}
			w.api.dsJSON = ds
			out := w.conv.LeaveIfUnselected(context.Background(), "wsf", "wsf-agent-spin-3")
			if _, ran := w.host.labelsAt["UNINSTALL"]; out.State != StateConverged || ran {
				t.Fatalf("the node was touched: %+v", out)
			}
			if got := w.api.snapshotLabels(); got[exactLabel] != "true" || got[testClaim] != "spin-3" {
				t.Fatalf("labels changed: %v", got)
			}
		})
	}
}
