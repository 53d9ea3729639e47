package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

const testRunID = "0123456789abcdef"

// resultLog is what the host script prints for a run: the markers around stdout, stderr and the status.
func resultLog(out, err string, rc int, runID string) string {
	a, b, c := resultMarkers(runID)
	return fmt.Sprintf("%s\n%s\n%s\n%s\n%s%d ---\n", a, out, b, err, c, rc)
}

func TestParseResultReadsTheResultBackExactly(t *testing.T) {
	// The cases of tests/test_incluster.py::test_the_result_is_read_back_exactly, with noise before.
	for _, tc := range []Result{
		{"changed\n", "", 0},
		{"", "wasm-shim-fleet: error: x\n", 1},
		{"a\nb", "c", 3},
		{"", "", 0},
		{"\n\n", "\n", 7},
	} {
		got, ok := ParseResult("noise\n"+resultLog(tc.Stdout, tc.Stderr, tc.Exit, testRunID), testRunID)
		if !ok || got != tc {
			t.Errorf("ParseResult of %+v = %+v, %v", tc, got, ok)
		}
	}
}

func TestParseResultFindsNoResultInAPartialLogOrAnotherRunsMarkers(t *testing.T) {
	// tests/test_incluster.py::test_a_partial_log_or_another_runs_markers_are_no_result
	full := resultLog("changed\n", "", 0, testRunID)
	cut := full[:strings.LastIndex(full, "---")-20]
	for name, log := range map[string]string{
		"truncated":    cut,
		"other run id": resultLog("x", "", 0, "fedcba9876543210"),
		"empty":        "",
	} {
		if got, ok := ParseResult(log, testRunID); ok {
			t.Errorf("%s: ParseResult = %+v, want no result", name, got)
		}
	}
}

// The expected values of these cases are what parse_result in components/core/incluster.py returns for
// the same logs, so that both transports read every output the same way.
func TestParseResultEdgeCasesMatchTheProgramsReading(t *testing.T) {
	a, b, c := resultMarkers(testRunID)
	log := func(out, err string, rc int) string { return resultLog(out, err, rc, testRunID) }
	none := Result{Exit: -1}
	for _, tc := range []struct {
		name string
		log  string
		want Result
	}{
		{"a stdout that holds an exit marker: the last one counts", log("x\n"+c+"9 ---\ny", "e", 0),
			Result{"x\n" + c + "9 ---\ny", "e", 0}},
		{"a stdout that holds a stdout marker", log(a+"\nin", "", 0), Result{a + "\nin", "", 0}},
		{"a stdout that holds a stderr marker splits at the first one", log("a\n"+b+"\nb", "err", 0),
			Result{"a", "b\n" + b + "\nerr", 0}},
		{"exit marker not on a line of its own", a + "\nout\n" + b + "\nerr" + c + "0 ---\n", none},
		{"exit marker followed by more text", a + "\nout\n" + b + "\nerr\n" + c + "0 ---x\n", none},
		{"no stderr marker", a + "\nout\n" + c + "0 ---\n", none},
		{"no newline after the exit marker", strings.TrimSuffix(log("o", "e", 5), "\n"), Result{"o", "e", 5}},
		{"stdout marker not followed by a newline", a + "out\n" + b + "\nerr\n" + c + "0 ---\n", none},
		{"stderr marker right after the stdout marker", a + "\n" + b + "\nerr\n" + c + "0 ---\n", Result{"", "err", 0}},
		{"exit marker right after the stdout marker", a + "\n" + c + "0 ---\n", none},
		{"text after the exit marker", log("o", "e", 0) + "trailing\n", Result{"o", "e", 0}},
		{"another run's result before ours", resultLog("theirs", "", 1, "fedcba9876543210") + log("ours", "", 0),
			Result{"ours", "", 0}},
		{"the marker in the middle of a line of noise", "noise" + log("o", "e", 2), Result{"o", "e", 2}},
		{"exit 255", log("", "", 255), Result{"", "", 255}},
		{"two results: the last exit marker counts", log("first", "", 1) + log("second", "", 0),
			Result{"first", "\n" + c + "1 ---\n" + a + "\nsecond\n" + b + "\n", 0}},
	} {
		got, ok := ParseResult(tc.log, testRunID)
		if tc.want.Exit < 0 {
			if ok {
				t.Errorf("%s: got %+v, want no result", tc.name, got)
			}
			continue
		}
		if !ok || got != tc.want {
			t.Errorf("%s: got %+v (%v), want %+v", tc.name, got, ok, tc.want)
		}
	}
}

func TestAResultSaysWhetherTheNodeChangedAndWhy(t *testing.T) {
	r := Result{Stdout: "wasm-shim-fleet: installed spin 3.1.2\nwasm-shim-fleet: containerd restarted\nchanged\n\n", Exit: 0}
	if !r.Changed() {
		t.Error("last line changed: Changed() = false")
	}
	if got := r.Said(); !reflect.DeepEqual(got, []string{"installed spin 3.1.2", "containerd restarted"}) {
		t.Errorf("Said() = %q", got)
	}
	if (Result{Stdout: "wasm-shim-fleet: nothing to do\nunchanged\n"}).Changed() {
		t.Error("last line unchanged: Changed() = true")
	}
	if got := (Result{Stderr: "warning\nwasm-shim-fleet: error: download failed\n\n", Exit: 1}).Reason(); got != "download failed" {
		t.Errorf("Reason() = %q", got)
	}
	if got := (Result{Exit: 4}).Reason(); got != "exit 4" {
		t.Errorf("Reason() without stderr = %q", got)
	}
}

// fakeHostScript behaves like run-on-host.sh inside dir: it starts the script detached (its own session),
// waits for the status, prints the result between the markers and, on SIGTERM after that, records the
// acknowledgement and forgets the run. The file die-after-start makes it die (once) right after starting
// the script, as a host shell does when its container runtime restarts under it.
func fakeHostScript(dir string) string {
	return strings.ReplaceAll(`set -eu
mode=$1 id=$2
d=DIR/runs/$id
if [ "$mode" = start ]; then
    mkdir -p DIR/runs
    if ! mkdir "$d" 2>/dev/null; then echo "wasm-shim-fleet: run $id exists already on this node; not starting it twice" >&2; exit 2; fi
    printf '%s' "$WSF_RUN_SCRIPT" > "$d/script"
    if [ -n "${WSF_RUN_PAYLOAD+x}" ]; then printf '%s' "$WSF_RUN_PAYLOAD" > "$d/payload"; fi
    setsid sh -c 'd=$1; WSF_RUN_PAYLOAD="$d/payload" sh "$d/script" > "$d/out" 2> "$d/err"; echo $? > "$d/rc.tmp"; mv "$d/rc.tmp" "$d/rc"' x "$d" < /dev/null > /dev/null 2>&1 &
    if [ -e DIR/die-after-start ]; then rm DIR/die-after-start; kill -9 $$; fi
elif [ ! -d "$d" ]; then
    echo "wasm-shim-fleet: no run $id on this node: its result was already reported, or it never started" >&2
    exit 3
fi
while [ ! -e "$d/rc" ]; do sleep 0.01; done
trap 'echo "$id" >> DIR/acks; rm -rf "$d"; exit 0' TERM
echo "--- wasm-shim-fleet run $id: stdout ---"
cat "$d/out"; echo
echo "--- wasm-shim-fleet run $id: stderr ---"
cat "$d/err"; echo
echo "--- wasm-shim-fleet run $id: exit $(cat "$d/rc") ---"
while :; do sleep 0.01; done
`, "DIR", dir)
}

// fakeEnter stands in for wsf-enter: it records its environment and its arguments (one file per child),
// drops `--` and runs the rest.
func fakeEnter(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "wsf-enter")
	text := strings.ReplaceAll(`#!/bin/sh
tr '\0' '\n' < /proc/$$/environ > DIR/env.$6
printf '%s\n' "$1" "$2" "$3" "$5" "$6" "$7" > DIR/args.$6
[ "$1" = -- ] && shift
exec "$@"
`, "DIR", dir)
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

type testLog struct {
	t     *testing.T
	lines []string
}

func (l *testLog) Printf(format string, args ...any) {
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *testLog) has(sub string) bool {
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			return true
		}
	}
	return false
}

func newTestHost(t *testing.T, hostScript func(dir string) string) (*Host, string, *testLog) {
	t.Helper()
	dir := t.TempDir()
	log := &testLog{t: t}
	h := NewHost(fakeEnter(t, dir), hostScript(dir), log.Printf)
	h.AckTimeout = 5 * time.Second
	h.PipeTimeout = 200 * time.Millisecond
	h.AttachPause = 0
	h.RunTimeout = 20 * time.Second
	h.NewID = func() (string, error) { return testRunID, nil }
	return h, dir, log
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestARunReturnsTheScriptsResultAndAcknowledgesIt(t *testing.T) {
	h, dir, log := newTestHost(t, fakeHostScript)
	payload := "KIT TEXT"
	res, err := h.RunOnHost(context.Background(), "echo out; cat \"$WSF_RUN_PAYLOAD\"; echo; echo err >&2; echo changed", &payload)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Stdout: "out\nKIT TEXT\nchanged\n", Stderr: "err\n", Exit: 0}
	if res != want {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	// The acknowledgement reached the host shell, which forgot the run.
	if acks := readLines(t, filepath.Join(dir, "acks")); !reflect.DeepEqual(acks, []string{testRunID}) {
		t.Errorf("acknowledgements %q", acks)
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", testRunID)); !os.IsNotExist(err) {
		t.Errorf("the run folder is still there after the acknowledgement (%v)", err)
	}
	if got := readLines(t, filepath.Join(dir, "args.start")); !reflect.DeepEqual(got,
		[]string{"--", "/bin/sh", "-c", runArgv0, "start", testRunID}) {
		t.Errorf("wsf-enter got arguments %q", got)
	}
	if !log.has("run "+testRunID+" stdout: KIT TEXT") || !log.has("run "+testRunID+" stderr: err") {
		t.Errorf("the script's lines were not logged: %q", log.lines)
	}
}

func TestTheHostSeesExactlyThePathTheScriptAndThePayload(t *testing.T) {
	t.Setenv("WSF_TEST_SECRET", "must-not-leak")
	h, dir, _ := newTestHost(t, fakeHostScript)
	payload := "P"
	if _, err := h.RunOnHost(context.Background(), "echo changed", &payload); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, filepath.Join(dir, "env.start"))
	sort.Strings(got)
	want := []string{"PATH=" + HostPath, "WSF_RUN_PAYLOAD=P", "WSF_RUN_SCRIPT=echo changed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environment of the child %q, want %q", got, want)
	}
}

func TestWithoutAPayloadTheHostGetsNoPayloadVariable(t *testing.T) {
	h, dir, _ := newTestHost(t, fakeHostScript)
	res, err := h.RunOnHost(context.Background(), `[ -e "$WSF_RUN_PAYLOAD" ] && echo has-payload || echo no-payload`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "no-payload\n" {
		t.Errorf("stdout %q", res.Stdout)
	}
	for _, line := range readLines(t, filepath.Join(dir, "env.start")) {
		if strings.HasPrefix(line, payloadEnv+"=") {
			t.Errorf("the child got %s without a payload", line)
		}
	}
}

func TestAFailingScriptIsAResultWithItsReason(t *testing.T) {
	h, _, _ := newTestHost(t, fakeHostScript)
	res, err := h.RunOnHost(context.Background(), "echo partial; echo 'wasm-shim-fleet: error: no space left on /usr/local/bin' >&2; exit 1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Exit != 1 || res.Stdout != "partial\n" || res.Reason() != "no space left on /usr/local/bin" {
		t.Errorf("result %+v, reason %q", res, res.Reason())
	}
}

func TestAChildThatDiesBeforeTheResultIsFollowedByAnAttachAndTheScriptRunsOnce(t *testing.T) {
	h, dir, log := newTestHost(t, fakeHostScript)
	if err := os.WriteFile(filepath.Join(dir, "die-after-start"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ran := filepath.Join(dir, "ran")
	res, err := h.RunOnHost(context.Background(), fmt.Sprintf("echo x >> %s; sleep 0.2; echo done", ran), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Stdout: "done\n", Stderr: "", Exit: 0}) {
		t.Errorf("result %+v", res)
	}
	if got := readLines(t, ran); len(got) != 1 {
		t.Errorf("the script ran %d times", len(got))
	}
	if got := readLines(t, filepath.Join(dir, "args.attach")); got[4] != "attach" || got[5] != testRunID {
		t.Errorf("attach child got %q", got)
	}
	// The attach child carries no script.
	if got := readLines(t, filepath.Join(dir, "env.attach")); !reflect.DeepEqual(got, []string{"PATH=" + HostPath}) {
		t.Errorf("attach environment %q", got)
	}
	if !log.has("attaching") {
		t.Errorf("the early end was not logged: %q", log.lines)
	}
}

func TestAHostScriptThatFailsBeforeStartingIsAnErrorWithItsMessage(t *testing.T) {
	h, dir, _ := newTestHost(t, func(string) string {
		return `echo "wasm-shim-fleet: cannot create /var/lib/wasm-shim-fleet/runs: Read-only file system" >&2; exit 2`
	})
	_, err := h.RunOnHost(context.Background(), "echo never", nil)
	if err == nil || !strings.Contains(err.Error(), "exit 2") || !strings.Contains(err.Error(), "Read-only file system") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "args.attach")); !os.IsNotExist(err) {
		t.Error("a failure before the start was followed by an attach")
	}
}

func TestAnAttachThatFindsNoRunIsAnError(t *testing.T) {
	h, _, _ := newTestHost(t, func(string) string {
		return `if [ "$1" = start ]; then kill -9 $$; fi
echo "wasm-shim-fleet: no run $2 on this node: its result was already reported, or it never started" >&2; exit 3`
	})
	_, err := h.RunOnHost(context.Background(), "echo x", nil)
	if err == nil || !strings.Contains(err.Error(), "no run "+testRunID+" on this node") {
		t.Fatalf("error %v", err)
	}
}

func TestARunGivesUpAfterFiveChildrenWithoutAResult(t *testing.T) {
	h, dir, _ := newTestHost(t, func(dir string) string {
		return "echo \"$1\" >> " + dir + "/children; kill -9 $$"
	})
	_, err := h.RunOnHost(context.Background(), "echo x", nil)
	if err == nil || !strings.Contains(err.Error(), RunsDir+"/"+testRunID) {
		t.Fatalf("error %v", err)
	}
	if got := readLines(t, filepath.Join(dir, "children")); !reflect.DeepEqual(got, []string{"start", "attach", "attach", "attach", "attach"}) {
		t.Errorf("children %q", got)
	}
}

func TestARunWithoutAResultInTimeIsKilledAndNamesItsFolder(t *testing.T) {
	h, _, _ := newTestHost(t, func(string) string { return "while :; do sleep 0.01; done" })
	h.RunTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err := h.RunOnHost(context.Background(), "echo x", nil)
	if err == nil || !strings.Contains(err.Error(), testRunID) || !strings.Contains(err.Error(), RunsDir+"/"+testRunID) {
		t.Fatalf("error %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the run took %s to end after its time limit", d)
	}
}

func TestAHostShellThatIgnoresTheAcknowledgementIsKilledAndTheResultKept(t *testing.T) {
	h, _, log := newTestHost(t, func(string) string {
		return `trap '' TERM
echo "--- wasm-shim-fleet run $2: stdout ---"; echo ok; echo "--- wasm-shim-fleet run $2: stderr ---"; echo
echo "--- wasm-shim-fleet run $2: exit 0 ---"
while :; do sleep 0.01; done`
	})
	h.AckTimeout = 100 * time.Millisecond
	res, err := h.RunOnHost(context.Background(), "x", nil)
	if err != nil || res.Stdout != "ok" {
		t.Fatalf("result %+v, %v", res, err)
	}
	if !log.has("did not end within") {
		t.Errorf("the kill was not logged: %q", log.lines)
	}
}

func TestACancelledContextDoesNotAbandonARun(t *testing.T) {
	h, _, _ := newTestHost(t, fakeHostScript)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := h.RunOnHost(ctx, "sleep 0.1; echo changed", nil)
	if err != nil || !res.Changed() {
		t.Fatalf("result %+v, %v", res, err)
	}
}

func TestAMissingEnterIsAnError(t *testing.T) {
	h, _, _ := newTestHost(t, fakeHostScript)
	h.Enter = "/nonexistent/wsf-enter"
	if _, err := h.RunOnHost(context.Background(), "x", nil); err == nil || !strings.Contains(err.Error(), "/nonexistent/wsf-enter") {
		t.Fatalf("error %v", err)
	}
}

func TestRunIDsAreSixteenHexDigits(t *testing.T) {
	a, err := randomID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := randomID()
	if len(a) != 16 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Errorf("ids %q %q", a, b)
	}
}

// shimEnter stands in for wsf-enter over the real host script: it starts the host shell as the child of a
// process named containerd-shim-* (a copy of /bin/sh) whose environment names the node root, as a real
// container runtime would be found among the ancestors, and passes SIGTERM on to it as wsf-enter does.
func shimEnter(t *testing.T, dir, root string) string {
	t.Helper()
	shim := filepath.Join(dir, "containerd-shim-test")
	b, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	if err := os.WriteFile(shim, b, 0o755); err != nil {
		t.Fatal(err)
	}
	enter := filepath.Join(dir, "wsf-enter")
	text := `#!/bin/sh
[ "$1" = -- ] && shift
exec env WSF_NODE_ROOT=` + root + ` ` + shim + ` -c '"$@" & c=$!
trap "kill -TERM $c" TERM
while :; do wait $c; rc=$?; kill -0 $c 2>/dev/null || exit $rc; done' shim "$@"
`
	if err := os.WriteFile(enter, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return enter
}

func TestTheRealHostScriptRunsUnderTheNodeRootAndForgetsTheRunOnTheAcknowledgement(t *testing.T) {
	hostScript, err := os.ReadFile("../../components/core/kit/run-on-host.sh")
	if err != nil {
		t.Skipf("run-on-host.sh not found: %v", err)
	}
	dir, root := t.TempDir(), t.TempDir()
	log := &testLog{t: t}
	h := NewHost(shimEnter(t, dir, root), string(hostScript), log.Printf)
	h.AckTimeout, h.AttachPause = 10*time.Second, 0
	h.NewID = func() (string, error) { return testRunID, nil }
	payload := "PAYLOAD"
	res, err := h.RunOnHost(context.Background(), `cat "$WSF_RUN_PAYLOAD"; echo; echo "root=$WSF_NODE_ROOT"; echo oops >&2; exit 4`, &payload)
	if err != nil {
		t.Fatalf("%v; log %q", err, log.lines)
	}
	want := Result{Stdout: "PAYLOAD\nroot=" + root + "\n", Stderr: "oops\n", Exit: 4}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	// The run folder was under the node root the runtime named (the script saw that root), and is gone
	// once acknowledged.
	if _, err := os.Stat(filepath.Join(root, RunsDir, testRunID)); !os.IsNotExist(err) {
		t.Errorf("the run folder is still on the node (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/wasm-shim-fleet")); err != nil {
		t.Errorf("the run was not kept under the node root: %v", err)
	}
}
