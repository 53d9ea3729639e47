// Command wsf-agent converges its own Kubernetes node to the desired state of one wasm-shim-fleet agent
// pool: it runs the pool's node scripts on the host, labels the Node once the handlers are verified, keeps
// the pod Ready only while the node is converged, and re-checks the node periodically.
//
//	wsf-agent           run the passes of WSF_AGENT_MODE (install or uninstall) until SIGTERM
//	wsf-agent ready     the readiness probe: exit 0 when the node is converged and verified
//	wsf-agent version   print the version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status: 0 after a signal, 1 for a probe that fails, 2 for
// a bad command line or configuration.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch {
	case cmd == "version" && len(args) == 1:
		fmt.Fprintln(stdout, version)
		return 0
	case cmd == "ready" && len(args) == 1:
		return ReadyCommand(ReadyFile{Path: filepath.Join(orDefault(getenv("WSF_RUN_DIR"), DefaultRunDir), "ready")}, stderr)
	case len(args) > 0:
		fmt.Fprintln(stderr, "wsf-agent: usage: wsf-agent [ready|version]")
		return 2
	}
	agent, err := setup(getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wsf-agent: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	agent.Run(ctx)
	return 0
}

// setup reads the configuration and wires the parts together; nothing touches the node or the API yet.
func setup(getenv func(string) string, stderr io.Writer) (*Loop, error) {
	env, err := LoadEnv(getenv)
	if err != nil {
		return nil, err
	}
	// The state is read once. A new desired state arrives with a new pod, so the DaemonSet's rollout paces
	// it across the pool; following the mounted ConfigMap instead would switch every node at once.
	st, err := LoadState(env.StateDir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(env.Enter); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, &ConfigError{fmt.Sprintf("WSF_ENTER=%s is not an executable file (the agent image carries it at its root)", env.Enter)}
	}
	kube, err := NewKube(env)
	if err != nil {
		return nil, err
	}
	log := NewLogger(stderr, st.Pool, env.NodeName)
	conv := &Converger{
		NodeName: env.NodeName,
		St:       st,
		API:      kube,
		Host:     NewHost(env.Enter, st.HostScript, log.Printf),
		Ready:    ReadyFile{Path: env.ReadyPath()},
		Log:      log.Printf,
	}
	retiring := ""
	if len(st.Retiring) > 0 {
		retiring = ", retiring " + strings.Join(st.Retiring, " ")
	}
	log.Printf("wsf-agent %s, mode %s: desired state %s, releases %s%s", version, env.Mode, short(st.Desired),
		strings.Join(st.Releases, " "), retiring)
	pass := conv.Install
	var onStop func(context.Context)
	if env.Mode == ModeUninstall {
		pass = conv.Uninstall
	} else if env.DaemonSet != "" {
		onStop = func(ctx context.Context) { conv.LeaveIfUnselected(ctx, env.PodNamespace, env.DaemonSet) }
	}
	return &Loop{
		Pass:    pass,
		Check:   time.Duration(st.CheckSeconds) * time.Second,
		Backoff: 5 * time.Second,
		Log:     log.Printf,
		OnStop:  onStop,
	}, nil
}

// Loop runs passes until a signal.
type Loop struct {
	Pass func(context.Context) Outcome
	// Check is the pause after a successful pass, and the longest pause after a failed one.
	Check time.Duration
	// Backoff is the pause after the first failed pass in a row; it doubles with each further one.
	Backoff time.Duration
	Log     func(format string, args ...any)
	// OnStop, when set, runs once after a signal (not after a pass that finished the work): the agent's
	// last look at whether its node left the pool.
	OnStop func(context.Context)
}

// Run runs passes until ctx is done. A pass in flight is never cut short by the signal (it gets a context
// without cancellation): a node left between its scripts is worse than a pod that takes longer to end,
// and the pod's grace period covers a whole pass. A signal never uninstalls anything either: a rollout
// replaces the pods, and must not take the shims away from the nodes.
func (l *Loop) Run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		out := l.Pass(context.WithoutCancel(ctx))
		l.Log("%s", describe(out))
		if out.Done {
			l.Log("nothing more to do; idle until the pod is deleted")
			<-ctx.Done()
			l.Log("stopping on a signal")
			return
		}
		wait := l.Check
		if out.State == StateConverged {
			failures = 0
		} else {
			failures++
			wait = backoff(l.Backoff, l.Check, failures)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
	}
	if l.OnStop != nil {
		l.OnStop(context.WithoutCancel(ctx))
	}
	l.Log("stopping on a signal")
}

// backoff is the pause after the n-th failed pass in a row: first, 2*first, 4*first, ... at most limit.
func backoff(first, limit time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	if d > limit {
		d = limit
	}
	return d
}

// describe is the log line of a pass.
func describe(o Outcome) string {
	switch o.State {
	case StateConverged:
		if !o.Changed {
			return "converged (unchanged)"
		}
		return "converged: " + o.Summary
	case StateRefused:
		return "refused: " + o.Reason
	case OutcomeUninstalled, OutcomeReleased:
		return o.State + ": " + o.Summary
	default:
		return "failed: " + o.Reason
	}
}
