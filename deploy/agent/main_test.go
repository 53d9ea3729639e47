package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, envOf(nil), &out, &errOut); code != 0 || out.String() != "dev\n" {
		t.Errorf("version: exit %d, %q", code, out.String())
	}
	if code := run([]string{"uninstall-now"}, envOf(nil), &out, &errOut); code != 2 {
		t.Errorf("an unknown command: exit %d", code)
	}
}

func TestTheReadySubcommandReadsTheRunDir(t *testing.T) {
	dir := t.TempDir()
	env := envOf(map[string]string{"WSF_RUN_DIR": dir})
	var out, errOut bytes.Buffer
	if code := run([]string{"ready"}, env, &out, &errOut); code != 1 || strings.Count(errOut.String(), "\n") != 1 {
		t.Errorf("not ready: exit %d, %q", code, errOut.String())
	}
	_ = os.WriteFile(filepath.Join(dir, "ready"), []byte("x\n"), 0o644)
	errOut.Reset()
	if code := run([]string{"ready"}, env, &out, &errOut); code != 0 || errOut.Len() != 0 || out.Len() != 0 {
		t.Errorf("ready: exit %d, %q %q", code, out.String(), errOut.String())
	}
}

func TestABadConfigurationExitsTwoWithOneLineNamingIt(t *testing.T) {
	m := fullEnv()
	delete(m, "WSF_POD_NAMESPACE")
	var out, errOut bytes.Buffer
	code := run(nil, envOf(m), &out, &errOut)
	if code != 2 || strings.Count(errOut.String(), "\n") != 1 || !strings.Contains(errOut.String(), "WSF_POD_NAMESPACE") {
		t.Errorf("exit %d, %q", code, errOut.String())
	}
	m = fullEnv()
	m["WSF_STATE_DIR"] = t.TempDir()
	errOut.Reset()
	if code := run(nil, envOf(m), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), StateFile) {
		t.Errorf("without state: exit %d, %q", code, errOut.String())
	}
}

func TestBackoffDoublesUpToTheCheckInterval(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, backoff(5*time.Second, 60*time.Second, n))
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 60 * time.Second, 60 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff %v, want %v", got, want)
		}
	}
}

func TestFailedPassesBackOffAndASuccessfulOneWaitsTheCheckInterval(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	passes := 0
	converged := make(chan struct{})
	rec := &testLog{t: t}
	l := &Loop{
		Check:   time.Hour,
		Backoff: time.Millisecond,
		Log:     rec.Printf,
		Pass: func(context.Context) Outcome {
			passes++
			if passes < 4 {
				return Outcome{State: StateFailed, Reason: "download failed"}
			}
			close(converged)
			return Outcome{State: StateConverged, Changed: true, Summary: "installed x"}
		},
	}
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	select {
	case <-converged:
	case <-time.After(10 * time.Second):
		t.Fatal("failed passes were not retried promptly")
	}
	time.Sleep(20 * time.Millisecond) // a pass after a success would come now if the loop did not wait
	cancel()
	<-done
	if passes != 4 {
		t.Errorf("%d passes, want 4", passes)
	}
	if rec.lines[0] != "failed: download failed" || rec.lines[3] != "converged: installed x" {
		t.Errorf("log %q", rec.lines)
	}
}

func TestASignalLetsThePassInFlightFinishAndStartsNoOther(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	passes := 0
	var passErr error
	l := &Loop{
		Check: time.Millisecond, Backoff: time.Millisecond, Log: func(string, ...any) {},
		Pass: func(pctx context.Context) Outcome {
			passes++
			cancel() // the signal arrives while the pass runs
			time.Sleep(10 * time.Millisecond)
			passErr = pctx.Err()
			return Outcome{State: StateConverged}
		},
	}
	l.Run(ctx)
	if passes != 1 || passErr != nil {
		t.Errorf("%d passes; the pass's context: %v", passes, passErr)
	}
}

func TestAFinishedUninstallIdlesUntilTheSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	passes := 0
	l := &Loop{Check: time.Millisecond, Backoff: time.Millisecond, Log: func(string, ...any) {},
		Pass: func(context.Context) Outcome { passes++; return Outcome{State: OutcomeUninstalled, Done: true} }}
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	time.Sleep(30 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the loop ended without a signal")
	default:
	}
	cancel()
	<-done
	if passes != 1 {
		t.Errorf("%d passes after the uninstall finished", passes)
	}
}

func TestEachPassIsOneLogLine(t *testing.T) {
	for o, want := range map[*Outcome]string{
		{State: StateConverged}:                                   "converged (unchanged)",
		{State: StateConverged, Changed: true, Summary: "a; b"}:   "converged: a; b",
		{State: StateFailed, Reason: "x"}:                         "failed: x",
		{State: StateRefused, Reason: "y"}:                        "refused: y",
		{State: OutcomeUninstalled, Summary: "removed the table"}: "uninstalled: removed the table",
	} {
		if got := describe(*o); got != want {
			t.Errorf("describe(%+v) = %q, want %q", *o, got, want)
		}
	}
}

func TestLogLinesNameThePoolAndTheNode(t *testing.T) {
	var b bytes.Buffer
	NewLogger(&b, "spin-3", "node-a").Printf("two\nlines\n")
	if b.String() != "wsf-agent[spin-3/node-a]: two\nwsf-agent[spin-3/node-a]: lines\n" {
		t.Errorf("log %q", b.String())
	}
}

// The whole program: configuration from the environment and the state directory, the API over TLS, host
// runs through a stand-in wsf-enter, readiness, and a SIGTERM that ends it with 0 and uninstalls nothing.
func TestTheAgentConvergesItsNodeAndStopsCleanlyOnSIGTERM(t *testing.T) {
	j := &journal{}
	api := newFakeAPI(j)
	api.handlers = []string{"runc", "spin", "spin-v3", "spin-v3-1-2"}
	_, _, kenv := tlsAPI(t, func(w http.ResponseWriter, r *http.Request, body []byte) { api.ServeHTTP(w, r, body) })

	hostDir, stateDir, runDir := t.TempDir(), t.TempDir(), t.TempDir()
	doc := stateDoc()
	doc["handlers"] = map[string]string{"spin": "io.containerd.spin-v3-1-2.v1", "spin-v3": "io.containerd.spin-v3-1-2.v1"}
	doc["scripts"] = map[string]string{
		"binaries":  `test "$(cat "$WSF_RUN_PAYLOAD")" = KIT || exit 9; echo "wasm-shim-fleet: installed spin 3.1.2"; echo changed`,
		"table":     `echo "wasm-shim-fleet: containerd restarted"; echo changed`,
		"status":    `echo unchanged`,
		"uninstall": `touch ` + hostDir + `/UNINSTALLED; echo changed`,
	}
	b, _ := json.Marshal(doc)
	_ = os.WriteFile(filepath.Join(stateDir, StateFile), b, 0o644)
	_ = os.WriteFile(filepath.Join(stateDir, KitFile), []byte("KIT"), 0o644)
	_ = os.WriteFile(filepath.Join(stateDir, HostScriptFile), []byte(fakeHostScript(hostDir)), 0o644)

	env := fullEnv()
	env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"] = kenv.APIHost, kenv.APIPort
	env["WSF_SA_DIR"], env["WSF_STATE_DIR"], env["WSF_RUN_DIR"] = kenv.SADir, stateDir, runDir
	env["WSF_ENTER"] = fakeEnter(t, hostDir)

	var out bytes.Buffer
	errOut := &lockedBuffer{}
	code := make(chan int, 1)
	go func() { code <- run(nil, envOf(env), &out, errOut) }()
	ready := filepath.Join(runDir, "ready")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 20s; log:\n%s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not stop on SIGTERM")
	}
	log := errOut.String()
	for _, want := range []string{
		"wsf-agent[spin-3/node-a]: converged: installed spin 3.1.2; containerd restarted; labels added: ",
		"wsf-agent[spin-3/node-a]: stopping on a signal",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if _, err := os.Stat(filepath.Join(hostDir, "UNINSTALLED")); err == nil {
		t.Error("the signal uninstalled the shims")
	}
	labels := api.snapshotLabels()
	if labels["wasmtime-spin-enabled"] != "true" || labels["wasmtime-spin-v3-1-2"] != "true" {
		t.Errorf("labels %v", labels)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
