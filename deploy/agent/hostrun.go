package main

// Running one of the pool's scripts on the host, the same way a runner pod does (components/core/incluster.py):
// `/wsf-enter -- /bin/sh -c <run-on-host.sh> wasm-shim-fleet-run start <id>` runs the host's own shell in
// the namespaces of the node's container runtime; that shell starts the script detached (so neither a
// containerd restart nor the end of this agent can kill it), waits for it and prints its result between
// markers that carry the run id. The agent reads the result, then acknowledges it with SIGTERM, on which the
// host shell forgets the run. A child that ends before the result is followed by one in `attach` mode on
// the same id: the script runs once and its result is not lost.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Where run-on-host.sh keeps a run's script and result on the node, and the PATH the host shell gets.
const (
	RunsDir  = "/var/lib/wasm-shim-fleet/runs"
	HostPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// runArgv0 is the $0 of the host shell: what `ps` on the node shows for it.
	runArgv0   = "wasm-shim-fleet-run"
	scriptEnv  = "WSF_RUN_SCRIPT"
	payloadEnv = "WSF_RUN_PAYLOAD"
	// markerHead starts every result marker, whatever the run id.
	markerHead = "--- wasm-shim-fleet run"
	// errorPrefix starts the one line a failing node script writes to stderr.
	errorPrefix = "wasm-shim-fleet: error: "
	// saidPrefix starts the lines in which a node script says what it did.
	saidPrefix = "wasm-shim-fleet: "
)

// Result is what a script on the host printed and how it exited.
type Result struct {
	Stdout string
	Stderr string
	Exit   int
}

// HostRunner runs a script on the host; the passes depend on this interface only.
type HostRunner interface {
	RunOnHost(ctx context.Context, script string, payload *string) (Result, error)
}

// Changed reports whether the script said it changed the node (its last non-empty stdout line).
func (r Result) Changed() bool { return lastLine(r.Stdout) == "changed" }

// Reason is why a script failed: its last non-empty stderr line, without the kit's error prefix.
func (r Result) Reason() string {
	if line := strings.TrimPrefix(lastLine(r.Stderr), errorPrefix); line != "" {
		return line
	}
	return fmt.Sprintf("exit %d", r.Exit)
}

// Said lists what the script said it did: its stdout lines that start `wasm-shim-fleet: `, without that.
func (r Result) Said() []string {
	var out []string
	for _, line := range strings.Split(r.Stdout, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, saidPrefix) {
			if s := strings.TrimSpace(strings.TrimPrefix(line, saidPrefix)); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func lastLine(text string) string {
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(lines[i]); s != "" {
			return s
		}
	}
	return ""
}

// resultMarkers are the lines the host script prints before the script's stdout, its stderr and its
// exit status (the last one is followed by the status and ` ---`).
func resultMarkers(runID string) (string, string, string) {
	head := markerHead + " " + runID + ": "
	return head + "stdout ---", head + "stderr ---", head + "exit "
}

func exitMarker(runID string) *regexp.Regexp {
	_, _, exitMark := resultMarkers(runID)
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(exitMark) + `([0-9]+) ---$`)
}

// ParseResult reads the run's result from the host shell's output; false when the output does not hold
// the whole result yet. The output is: the stdout marker, stdout, a newline, the stderr marker, stderr, a
// newline, the exit marker with the status. Text before the first stdout marker is noise; the last exit
// marker counts (a script may print text that looks like one). This is the same reading as parse_result in
// components/core/incluster.py, edge cases included, so both transports agree on every output.
func ParseResult(log, runID string) (Result, bool) {
	outMark, errMark, _ := resultMarkers(runID)
	begin := strings.Index(log, outMark+"\n")
	if begin < 0 {
		return Result{}, false
	}
	body := log[begin+len(outMark)+1:]
	found := exitMarker(runID).FindAllStringSubmatchIndex(body, -1)
	if len(found) == 0 {
		return Result{}, false
	}
	m := found[len(found)-1]
	if !strings.HasSuffix(body[:m[0]], "\n") {
		return Result{}, false
	}
	head := "\n" + body[:m[0]-1]
	sep := "\n" + errMark + "\n"
	i := strings.Index(head, sep)
	if i < 0 {
		return Result{}, false
	}
	exit, err := strconv.Atoi(body[m[2]:m[3]])
	if err != nil {
		return Result{}, false
	}
	stdout := ""
	if i > 1 {
		stdout = head[1:i]
	}
	return Result{Stdout: stdout, Stderr: head[i+len(sep):], Exit: exit}, true
}

// Host runs scripts on the host through WSF_ENTER and run-on-host.sh.
type Host struct {
	Enter      string
	HostScript string
	Log        func(format string, args ...any)
	// RunTimeout bounds a whole run, every child included. Only this limit kills a run: the kit's own
	// waits (locks, downloads, containerd's restart) are far shorter, so a run that reaches it is stuck.
	RunTimeout time.Duration
	// AckTimeout is how long the host shell may take to forget the run after the acknowledgement.
	AckTimeout time.Duration
	// PipeTimeout is how long output is still read after a child ended (a process it started may hold
	// the pipe open).
	PipeTimeout time.Duration
	// AttachPause separates a child that ended early from the attach child that follows it.
	AttachPause time.Duration
	// MaxChildren bounds the children of one run (the first one and the attach ones).
	MaxChildren int
	// NewID makes run ids; nil means 16 random hex digits.
	NewID func() (string, error)
}

// NewHost runs scripts through enter with the given host script text.
func NewHost(enter, hostScript string, log func(string, ...any)) *Host {
	return &Host{
		Enter:       enter,
		HostScript:  hostScript,
		Log:         log,
		RunTimeout:  45 * time.Minute,
		AckTimeout:  30 * time.Second,
		PipeTimeout: 2 * time.Second,
		AttachPause: time.Second,
		MaxChildren: 5,
	}
}

func randomID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("no random run id: %v", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// preStartCodes are the exit statuses with which wsf-enter or the host shell says it could not start the
// script (usage, refused to enter, the shell missing or failing before the run folder existed).
var preStartCodes = map[int]bool{1: true, 2: true, 125: true, 126: true, 127: true}

// RunOnHost runs script on the host (payload, when not nil, becomes the run's payload file) and returns its
// result. ctx is deliberately not watched: a run in flight is never abandoned, because a node left halfway
// through a containerd restart is worse than a pod that takes longer to end (the pod's grace period covers
// the longest run); only RunTimeout ends a run.
func (h *Host) RunOnHost(_ context.Context, script string, payload *string) (Result, error) {
	newID := h.NewID
	if newID == nil {
		newID = randomID
	}
	id, err := newID()
	if err != nil {
		return Result{}, err
	}
	deadline := time.Now().Add(h.RunTimeout)
	mode := "start"
	children := h.MaxChildren
	if children < 1 {
		children = 1
	}
	for n := 0; n < children; n++ {
		if n > 0 && h.AttachPause > 0 {
			time.Sleep(h.AttachPause)
		}
		c, err := h.child(id, mode, script, payload, deadline)
		if err != nil {
			return Result{}, err
		}
		if c.complete {
			h.logResult(id, c.result)
			return c.result, nil
		}
		said := strings.TrimSpace(c.output)
		if mode == "start" && preStartCodes[c.exit] && said != "" && !strings.Contains(c.output, markerHead) {
			return Result{}, fmt.Errorf("the host could not start the script (exit %d): %s", c.exit, tail(said, 2000))
		}
		if mode == "attach" && c.exit == 3 {
			msg := lastLine(said)
			if msg == "" {
				msg = "no result"
			}
			return Result{}, fmt.Errorf("run %s: %s", id, msg)
		}
		h.Log("run %s: the host command ended (exit %d) before printing the result; attaching to the run again", id, c.exit)
		mode = "attach"
	}
	return Result{}, fmt.Errorf("no result for run %s after %d host commands; it may still be running on the node (%s/%s)",
		id, children, RunsDir, id)
}

func (h *Host) logResult(id string, r Result) {
	for _, part := range []struct{ name, text string }{{"stdout", r.Stdout}, {"stderr", r.Stderr}} {
		for _, line := range strings.Split(strings.TrimRight(part.text, "\n"), "\n") {
			if strings.TrimSpace(line) != "" {
				h.Log("run %s %s: %s", id, part.name, line)
			}
		}
	}
	h.Log("run %s: exit %d", id, r.Exit)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// capture collects a child's output: its stdout (where the result comes) and everything it wrote, in
// order (what a pod's log would show), and signals every write.
type capture struct {
	mu     sync.Mutex
	stdout bytes.Buffer
	all    bytes.Buffer
	wrote  chan struct{}
}

type captureStream struct {
	c      *capture
	stdout bool
}

func (s captureStream) Write(p []byte) (int, error) {
	s.c.mu.Lock()
	if s.stdout {
		s.c.stdout.Write(p)
	}
	s.c.all.Write(p)
	s.c.mu.Unlock()
	select {
	case s.c.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *capture) texts() (string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stdout.String(), c.all.String()
}

type childEnd struct {
	complete bool
	result   Result
	exit     int
	output   string
}

func (h *Host) child(id, mode, script string, payload *string, deadline time.Time) (childEnd, error) {
	// Exactly these variables: nothing of the agent's own environment (its token path, the API address)
	// reaches the host shell or the script.
	env := []string{"PATH=" + HostPath}
	if mode == "start" {
		env = append(env, scriptEnv+"="+script)
		if payload != nil {
			env = append(env, payloadEnv+"="+*payload)
		}
	}
	c := &capture{wrote: make(chan struct{}, 1)}
	cmd := &exec.Cmd{
		Path:   h.Enter,
		Args:   []string{h.Enter, "--", "/bin/sh", "-c", h.HostScript, runArgv0, mode, id},
		Env:    env,
		Stdout: captureStream{c, true},
		Stderr: captureStream{c, false},
		// A process group of its own: a terminal's Ctrl-C aimed at the agent must not reach the host shell
		// (the pass finishes instead), and a timeout can kill the child and what it started at once.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		WaitDelay:   h.PipeTimeout,
	}
	if err := cmd.Start(); err != nil {
		return childEnd{}, fmt.Errorf("cannot start %s on the host: %v", h.Enter, err)
	}
	if mode == "start" {
		h.Log("run %s: started on the host", id)
	}
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(waited)
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case <-c.wrote:
			stdout, _ := c.texts()
			if r, ok := ParseResult(stdout, id); ok {
				h.acknowledge(cmd, waited, id)
				return childEnd{complete: true, result: r}, nil
			}
		case <-waited:
			stdout, all := c.texts()
			if r, ok := ParseResult(stdout, id); ok {
				// The host shell is gone without an acknowledgement: the run folder stays on the node
				// until a later run removes results older than a day. The result is still good.
				return childEnd{complete: true, result: r}, nil
			}
			return childEnd{exit: cmd.ProcessState.ExitCode(), output: all}, nil
		case <-timer.C:
			killGroup(cmd)
			<-waited
			return childEnd{}, fmt.Errorf("run %s produced no result within %s; it may still be running on the node in %s/%s",
				id, h.RunTimeout, RunsDir, id)
		}
	}
}

// acknowledge tells the host shell the result was read: on SIGTERM (passed on by wsf-enter) it removes
// the run folder and exits.
func (h *Host) acknowledge(cmd *exec.Cmd, waited <-chan struct{}, id string) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		h.Log("run %s: cannot acknowledge the result: %v", id, err)
	}
	timer := time.NewTimer(h.AckTimeout)
	defer timer.Stop()
	select {
	case <-waited:
	case <-timer.C:
		h.Log("run %s: the host command did not end within %s of the acknowledgement; killed (the run folder %s/%s stays until a later run removes it)",
			id, h.AckTimeout, RunsDir, id)
		killGroup(cmd)
		<-waited
	}
}

func killGroup(cmd *exec.Cmd) {
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}
