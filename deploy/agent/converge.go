package main

// The passes: bring this node to the pool's desired state (install) or take the pool off it (uninstall).
// The node work itself is the kit's (the scripts the program rendered); a pass decides whether the node is
// this pool's to touch, orders the label changes around the scripts, verifies through the kubelet what
// containerd loaded, and records the outcome on the Node and in Events.
//
// The order is what keeps pods safe: labels that no longer hold come off before any script can take a
// handler away, and labels go on only after containerd was restarted and the kubelet reports the handlers.
// A pod can therefore be scheduled on a label only while the handler behind it exists.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// managerPrefix starts the field manager of everything the fleet applies to nodes.
const managerPrefix = "wasm-shim-fleet-"

// Outcome states that are not annotation states.
const (
	OutcomeUninstalled = "uninstalled"
	OutcomeReleased    = "released"
)

// Outcome is how a pass ended, for the loop's log line and its timing.
type Outcome struct {
	State   string
	Reason  string
	Changed bool
	Summary string
	// Done means no further pass is needed (an uninstall that finished).
	Done bool
}

// Converger runs the passes of one agent.
type Converger struct {
	NodeName string
	St       *State
	API      NodeAPI
	Host     HostRunner
	Ready    ReadyFile
	Log      func(format string, args ...any)
	Now      func() time.Time
	// VerifyInterval is the pause between two reads of the kubelet's runtime handlers; VerifyTimeout
	// (default verifySeconds) is how long they are awaited.
	VerifyInterval time.Duration
	VerifyTimeout  time.Duration

	// convergedDesired is the desired state this process last converged the node to.
	convergedDesired string
	// lastFailure and lastRefusal are the reasons last reported by an Event, so that a retry failing the
	// same way does not post the same Warning again.
	lastFailure string
	lastRefusal string
}

// pass is the state of one pass: the node as last seen and the status the pass started from.
type pass struct {
	c    *Converger
	ctx  context.Context
	cur  *Node
	prev Status
}

// refusal is a reason not to touch the node at all.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

func (c *Converger) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Install is one install pass.
func (c *Converger) Install(ctx context.Context) Outcome {
	st := c.St
	node, err := c.API.GetNode(ctx, c.NodeName)
	if err != nil {
		// Nothing is known about the node, so nothing is concluded about it: the ready file and the status
		// stay as the last pass left them. Clearing readiness on every API hiccup would stall rollouts
		// across the whole pool for a blip that says nothing about any node.
		return Outcome{State: StateFailed, Reason: err.Error()}
	}
	p := &pass{c: c, ctx: ctx, cur: node}
	p.prev, _ = ParseStatus(node.Annotations[st.StatusAnnotation])
	if reason := c.refusalReason(node); reason != "" {
		return p.refuse(reason)
	}

	// Phase A: claim the node, and keep only the promised labels that hold now. A label this manager set
	// for an earlier desired state comes off here, before the scripts can remove the handler behind it.
	labelsA := p.claim()
	for _, k := range sortedKeys(st.Labels) {
		if node.Labels[k] == "true" {
			labelsA[k] = "true"
		}
	}
	ownedL, ownedA := node.Applied(st.FieldManager)
	// A node converged on this desired state whose labels hold keeps its status through the pass (the
	// scripts then only confirm it); anything else is marked converging while it is worked on.
	annotationsA := map[string]string{st.StatusAnnotation: node.Annotations[st.StatusAnnotation]}
	steady := p.prev.State == StateConverged && p.prev.Desired == st.Desired &&
		sameMap(ownedL, labelsA) && sameMap(ownedA, annotationsA)
	if !steady {
		annotationsA[st.StatusAnnotation] = NextStatus(p.prev, st.Pool, st.Desired, StateConverging, "", "", c.now()).Encode()
	}
	var stale []string
	for _, k := range sortedKeys(ownedL) {
		if _, keep := labelsA[k]; !keep {
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 {
		c.Log("removing label(s) %s before the scripts run", strings.Join(stale, ", "))
	}
	if err := p.applyIfNeeded(labelsA, annotationsA); err != nil {
		return p.failOrRefuse(err)
	}

	// The node work, through the kit.
	var said []string
	scriptsChanged := false
	for _, step := range []struct {
		name    string
		script  string
		payload *string
	}{{"binaries", st.Scripts.Binaries, &st.Kit}, {"table", st.Scripts.Table, nil}} {
		c.Log("running the %s script on the host", step.name)
		res, err := c.Host.RunOnHost(ctx, step.script, step.payload)
		if err != nil {
			return p.fail(fmt.Sprintf("%s script: %v", step.name, err))
		}
		if res.Exit != 0 {
			return p.fail(res.Reason())
		}
		scriptsChanged = scriptsChanged || res.Changed()
		said = append(said, res.Said()...)
	}

	// When neither script changed anything, the node as already read shows the handlers as they are:
	// reading it again would cost every steady pass a second request for the same answer.
	if reason := p.verify(scriptsChanged); reason != "" {
		return p.fail(reason)
	}

	// Phase B: every promised label, now that the handlers behind them are verified.
	labelsB := p.claim()
	for k := range st.Labels {
		labelsB[k] = "true"
	}
	added, removed := labelChanges(st, node.Labels, labelsB)
	changed := scriptsChanged || len(added) > 0 || len(removed) > 0
	summary := ""
	if changed {
		summary = changeSummary(said, scriptsChanged, added, removed)
	}
	status := NextStatus(p.prev, st.Pool, st.Desired, StateConverged, "", summary, c.now())
	if err := p.applyIfNeeded(labelsB, map[string]string{st.StatusAnnotation: status.Encode()}); err != nil {
		return p.failOrRefuse(err)
	}

	if err := c.Ready.Mark(st.Desired); err != nil {
		c.Log("cannot write the ready file %s: %v", c.Ready.Path, err)
	}
	wasConverged := p.prev.State == StateConverged && p.prev.Desired == st.Desired
	if changed || !wasConverged {
		text := summary
		if text == "" {
			text = "nothing had to change"
		}
		if wasConverged || c.convergedDesired == st.Desired {
			c.event("Normal", "Repaired", fmt.Sprintf("node %s had drifted from the desired state %s of pool %s and was repaired: %s",
				c.NodeName, short(st.Desired), st.Pool, text))
		} else {
			c.event("Normal", "Converged", fmt.Sprintf("node %s converged to the desired state %s of pool %s: %s",
				c.NodeName, short(st.Desired), st.Pool, text))
		}
	}
	c.convergedDesired = st.Desired
	c.lastFailure, c.lastRefusal = "", ""
	return Outcome{State: StateConverged, Changed: changed, Summary: summary}
}

// claim is the claim label alone.
func (p *pass) claim() map[string]string {
	return map[string]string{p.c.St.ClaimLabel: p.c.St.Pool}
}

// refusalReason is why this node is not this pool's to touch, or "".
func (c *Converger) refusalReason(node *Node) string {
	st := c.St
	if other, ok := node.Labels[st.ClaimLabel]; ok && other != st.Pool {
		return claimedReason(node.Name, st, other)
	}
	foreign := map[string]bool{}
	for _, mf := range node.ManagedFields {
		if !strings.HasPrefix(mf.Manager, managerPrefix) || mf.Manager == st.FieldManager {
			continue
		}
		for k := range mf.Labels {
			if st.IsFleetLabel(k) || k == st.ClaimLabel {
				foreign[mf.Manager] = true
			}
		}
	}
	if len(foreign) > 0 {
		return fmt.Sprintf("node %s carries fleet labels managed by %s (a pool that lists nodes by name, or another stack); "+
			"a node belongs to one pool: remove it there first; nothing was changed on this node",
			node.Name, strings.Join(sortedKeys(foreign), " and "))
	}
	var unowned []string
	setBy := map[string]bool{}
	for _, k := range sortedKeys(node.Labels) {
		if !st.IsFleetLabel(k) {
			continue
		}
		if _, promised := st.Labels[k]; promised {
			continue
		}
		owners := node.LabelOwners(k)
		ours := false
		for _, m := range owners {
			ours = ours || m == st.FieldManager
		}
		if ours {
			continue // set by this pool's agent for an earlier desired state: phase A removes it
		}
		unowned = append(unowned, k)
		for _, m := range owners {
			setBy[m] = true
		}
	}
	if len(unowned) == 0 {
		return ""
	}
	by := "an unknown manager"
	if len(setBy) > 0 {
		by = strings.Join(sortedKeys(setBy), ", ")
	}
	if len(unowned) == 1 {
		return fmt.Sprintf("node %s has label %s, set by %s and not by this pool's agent, which promises a handler "+
			"this pool does not provide; remove that label; nothing was changed on this node", node.Name, unowned[0], by)
	}
	return fmt.Sprintf("node %s has labels %s, set by %s and not by this pool's agent, which promise handlers "+
		"this pool does not provide; remove those labels; nothing was changed on this node",
		node.Name, strings.Join(unowned, ", "), by)
}

func claimedReason(node string, st *State, other string) string {
	return fmt.Sprintf("node %s is selected by pools %s and %s (its label %s=%s); a node belongs to one pool: "+
		"change the nodeSelector of one of them; nothing was changed on this node", node, st.Pool, other, st.ClaimLabel, other)
}

// refuse records a refusal: the status annotation alone is applied (which also drops whatever this manager
// held), nothing else is touched, and the pod is not Ready.
func (p *pass) refuse(reason string) Outcome {
	c, st := p.c, p.c.St
	if err := c.Ready.Clear(); err != nil {
		c.Log("cannot remove the ready file %s: %v", c.Ready.Path, err)
	}
	status := NextStatus(p.prev, st.Pool, st.Desired, StateRefused, reason, "", c.now())
	if err := p.applyPlain(map[string]string{}, map[string]string{st.StatusAnnotation: status.Encode()}); err != nil {
		c.Log("cannot record the refusal on the node: %v", err)
	}
	if reason != c.lastRefusal && !(p.prev.State == StateRefused && p.prev.Reason == reason) {
		c.event("Warning", "Refused", reason)
	}
	c.lastRefusal = reason
	return Outcome{State: StateRefused, Reason: reason}
}

// failOrRefuse ends the pass on an apply error, which may be a refusal found only by the API server.
func (p *pass) failOrRefuse(err error) Outcome {
	var r *refusal
	if errors.As(err, &r) {
		return p.refuse(r.reason)
	}
	return p.fail(err.Error())
}

// fail records a failed pass. Labels stay only where the kit confirms the handler behind them: a label
// whose handler cannot be confirmed goes, because a pod scheduled onto a handler that is missing fails,
// while a pod kept off a node that could have run it only waits for the next pass.
func (p *pass) fail(reason string) Outcome {
	c, st := p.c, p.c.St
	if err := c.Ready.Clear(); err != nil {
		c.Log("cannot remove the ready file %s: %v", c.Ready.Path, err)
	}
	ok := c.confirmedHandlers(p.ctx)
	keep := p.claim()
	for _, k := range sortedKeys(st.Labels) {
		if p.cur.Labels[k] == "true" && ok[st.Labels[k]] {
			keep[k] = "true"
		}
	}
	status := NextStatus(p.prev, st.Pool, st.Desired, StateFailed, reason, "", c.now())
	if err := p.applyIfNeeded(keep, map[string]string{st.StatusAnnotation: status.Encode()}); err != nil {
		c.Log("cannot record the failure on the node: %v", err)
	}
	if reason != c.lastFailure && !(p.prev.State == StateFailed && p.prev.Reason == reason) {
		c.event("Warning", "ConvergeFailed", fmt.Sprintf("node %s: %s", c.NodeName, reason))
	}
	c.lastFailure = reason
	return Outcome{State: StateFailed, Reason: reason}
}

// confirmedHandlers are the handlers the status script lists with their binary in place. A status that
// cannot be read confirms nothing.
func (c *Converger) confirmedHandlers(ctx context.Context) map[string]bool {
	ok := map[string]bool{}
	c.Log("running the status script on the host")
	res, err := c.Host.RunOnHost(ctx, c.St.Scripts.Status, nil)
	if err != nil {
		c.Log("the status script did not run (%v): no label is kept", err)
		return ok
	}
	if res.Exit != 0 {
		c.Log("the status script failed (%s): no label is kept", res.Reason())
		return ok
	}
	for _, line := range strings.Split(res.Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "wsf-status" && f[1] == "handler" && f[4] == "ok" {
			ok[f[2]] = true
		}
	}
	return ok
}

// verify waits until the kubelet reports every handler the labels promise, or says why not. A kubelet
// that reports no handlers at all (containerd 1.x has no such list) cannot confirm anything, and the kit
// has already checked on the node that containerd loaded the table, so that counts as verified.
func (p *pass) verify(reread bool) string {
	c, st := p.c, p.c.St
	want := st.VerifyHandlers()
	timeout := c.VerifyTimeout
	if timeout <= 0 {
		timeout = time.Duration(st.VerifySeconds) * time.Second
	}
	interval := c.VerifyInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		if reread {
			node, err := c.API.GetNode(p.ctx, c.NodeName)
			if err != nil {
				return fmt.Sprintf("cannot verify the handlers: %v", err)
			}
			p.cur = node
		}
		reread = true
		node := p.cur
		if len(node.RuntimeHandlers) == 0 {
			c.Log("the kubelet reports no runtime handlers (containerd 1.x): relying on the kit's own check")
			return ""
		}
		have := map[string]bool{}
		for _, h := range node.RuntimeHandlers {
			have[h] = true
		}
		var missing []string
		for _, h := range want {
			if !have[h] {
				missing = append(missing, h)
			}
		}
		if len(missing) == 0 {
			return ""
		}
		if !time.Now().Before(deadline) {
			return fmt.Sprintf("handler(s) %s not in node.status.runtimeHandlers after %ds (the kubelet reports: %s): containerd did not load them",
				strings.Join(missing, " "), st.VerifySeconds, strings.Join(node.RuntimeHandlers, " "))
		}
		time.Sleep(interval)
	}
}

// applyIfNeeded applies labels and annotations unless this manager's applied set on the node is exactly
// that already: a converged, unchanged node costs a read per pass and no write.
func (p *pass) applyIfNeeded(labels, annotations map[string]string) error {
	ownedL, ownedA := p.cur.Applied(p.c.St.FieldManager)
	if sameMap(ownedL, labels) && sameMap(ownedA, annotations) {
		return nil
	}
	return p.apply(labels, annotations, true)
}

// applyPlain applies without turning a conflict on the claim into a refusal (used while refusing).
func (p *pass) applyPlain(labels, annotations map[string]string) error {
	ownedL, ownedA := p.cur.Applied(p.c.St.FieldManager)
	if sameMap(ownedL, labels) && sameMap(ownedA, annotations) {
		return nil
	}
	return p.apply(labels, annotations, false)
}

// apply server-side applies the set, deciding what a conflict means: another pool's claim is a refusal;
// the pool's own status annotation is taken over (its key names this pool's agent); a label another
// manager owns is taken over only with forceLabels, since that label may be someone's deliberate choice.
func (p *pass) apply(labels, annotations map[string]string, claimRefuses bool) error {
	c, st := p.c, p.c.St
	node, err := c.API.ApplyNode(p.ctx, c.NodeName, st.FieldManager, labels, annotations, false)
	if ce, ok := IsConflict(err); ok {
		var onLabels []string
		onClaim := false
		for _, cf := range ce.Conflicts {
			switch key := cf.Label(); {
			case key == st.ClaimLabel:
				onClaim = true
			case key != "":
				onLabels = append(onLabels, key)
			}
		}
		if onClaim && claimRefuses {
			if fresh, gerr := c.API.GetNode(p.ctx, c.NodeName); gerr == nil {
				p.cur = fresh
				if other, ok := fresh.Labels[st.ClaimLabel]; ok && other != st.Pool {
					return &refusal{claimedReason(c.NodeName, st, other)}
				}
			}
			onLabels = append(onLabels, st.ClaimLabel)
		} else if onClaim {
			onLabels = append(onLabels, st.ClaimLabel)
		}
		sort.Strings(onLabels)
		if len(onLabels) > 0 && !st.ForceLabels {
			return fmt.Errorf("%s", ownedLabelsReason(c.NodeName, onLabels, ce))
		}
		if len(onLabels) > 0 {
			c.Log("taking over label(s) %s from %s (kubernetes.forceLabels is true)",
				strings.Join(onLabels, ", "), strings.Join(ce.Managers, ", "))
		} else {
			c.Log("taking over the status annotation from %s", strings.Join(ce.Managers, ", "))
		}
		node, err = c.API.ApplyNode(p.ctx, c.NodeName, st.FieldManager, labels, annotations, true)
	}
	if err != nil {
		return err
	}
	p.cur = node
	return nil
}

func ownedLabelsReason(node string, keys []string, ce *ConflictError) string {
	set := map[string]bool{}
	for _, k := range keys {
		for _, m := range ce.managersOf(k) {
			set[m] = true
		}
	}
	managers := strings.Join(sortedKeys(set), ", ")
	if managers == "" {
		managers = "another field manager"
	}
	if len(keys) == 1 {
		return fmt.Sprintf("label %s on node %s is owned by field manager %s; remove that label (or stop that automation), "+
			"or set kubernetes.forceLabels: true to take it over", keys[0], node, managers)
	}
	return fmt.Sprintf("labels %s on node %s are owned by field manager(s) %s; remove those labels (or stop that automation), "+
		"or set kubernetes.forceLabels: true to take them over", strings.Join(keys, ", "), node, managers)
}

// labelChanges lists the fleet and claim labels a pass adds and removes, from the node as it was at the
// start of the pass to the set applied at its end.
func labelChanges(st *State, before, after map[string]string) (added, removed []string) {
	for _, k := range sortedKeys(after) {
		if before[k] != after[k] {
			added = append(added, k)
		}
	}
	for _, k := range sortedKeys(before) {
		if _, ok := after[k]; !ok && (st.IsFleetLabel(k) || k == st.ClaimLabel) {
			removed = append(removed, k)
		}
	}
	return added, removed
}

// changeSummary says what a pass changed: what the scripts said they did, then the labels.
func changeSummary(said []string, scriptsChanged bool, added, removed []string) string {
	parts := append([]string(nil), said...)
	if len(parts) == 0 && scriptsChanged {
		parts = append(parts, "the node kit changed the node")
	}
	if len(added) > 0 {
		parts = append(parts, "labels added: "+strings.Join(added, ", "))
	}
	if len(removed) > 0 {
		parts = append(parts, "labels removed: "+strings.Join(removed, ", "))
	}
	return cutUTF8(strings.Join(parts, "; "), maxChanged)
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// event posts an Event and logs it; a failure to post is logged and otherwise ignored.
func (c *Converger) event(eventType, reason, message string) {
	if err := c.API.Event(context.Background(), eventType, reason, message); err != nil {
		c.Log("cannot post the %s event: %v", reason, err)
	}
}

// LeaveIfUnselected is the agent's last look, on a signal, at whether its node left the pool: the node's
// labels or the pool's nodeSelector changed, so that the DaemonSet no longer selects the node and deletes
// this pod. Then the pool comes off the node now (an uninstall pass), since no agent of the pool will ever
// run there again. Any other end of the pod (a rollout replacing it, a drain, an eviction, the node going
// away, the DaemonSet being deleted, whose uninstall the program runs itself) leaves the node as it is.
// Anything that cannot be established is answered "stays": taking shims away from a node still in the pool
// would fail its running pods, while shims left on a node that left only wait for the next look (`check`
// reports such a node as claim-left).
func (c *Converger) LeaveIfUnselected(ctx context.Context, namespace, daemonset string) Outcome {
	selector, found, deleting, err := c.API.DaemonSetSelector(ctx, namespace, daemonset)
	switch {
	case err != nil:
		c.Log("cannot read DaemonSet %s/%s (%v): the node keeps what is installed", namespace, daemonset, err)
		return Outcome{State: StateConverged}
	case !found || deleting:
		c.Log("DaemonSet %s/%s is being deleted: the program's uninstall takes the pool off the nodes", namespace, daemonset)
		return Outcome{State: StateConverged}
	}
	node, err := c.API.GetNode(ctx, c.NodeName)
	if err != nil {
		c.Log("cannot read node %s (%v): the node keeps what is installed", c.NodeName, err)
		return Outcome{State: StateConverged}
	}
	var differs []string
	for _, k := range sortedKeys(selector) {
		if have, ok := node.Labels[k]; !ok || have != selector[k] {
			differs = append(differs, fmt.Sprintf("%s=%s (the node has %q)", k, selector[k], have))
		}
	}
	if len(differs) == 0 {
		c.Log("the node is still selected by the pool: it keeps what is installed")
		return Outcome{State: StateConverged}
	}
	c.Log("node %s left pool %s (the pool selects %s): uninstalling it", c.NodeName, c.St.Pool, strings.Join(differs, ", "))
	out := c.Uninstall(ctx)
	c.Log("%s", describe(out))
	return out
}

// Uninstall is one uninstall pass: labels off first, then the kit removes what the pool installed, then
// the claim and status go.
func (c *Converger) Uninstall(ctx context.Context) Outcome {
	st := c.St
	node, err := c.API.GetNode(ctx, c.NodeName)
	if err != nil {
		return Outcome{State: StateFailed, Reason: err.Error()}
	}
	p := &pass{c: c, ctx: ctx, cur: node}
	p.prev, _ = ParseStatus(node.Annotations[st.StatusAnnotation])
	if other, ok := node.Labels[st.ClaimLabel]; ok && other != st.Pool {
		// Another pool's node: whatever this manager still holds there goes, and nothing else is touched.
		if _, err := c.API.ApplyNode(ctx, c.NodeName, st.FieldManager, nil, nil, false); err != nil {
			return Outcome{State: StateFailed, Reason: err.Error()}
		}
		if err := c.Ready.Mark(st.Desired); err != nil {
			c.Log("cannot write the ready file %s: %v", c.Ready.Path, err)
		}
		return Outcome{State: OutcomeReleased, Done: true,
			Summary: fmt.Sprintf("node %s belongs to pool %s (its label %s=%s): nothing to uninstall", c.NodeName, other, st.ClaimLabel, other)}
	}
	uninstalling := NextStatus(p.prev, st.Pool, st.Desired, StateUninstalling, "", "", c.now())
	if err := p.apply(p.claim(), map[string]string{st.StatusAnnotation: uninstalling.Encode()}, false); err != nil {
		return p.uninstallFailed(err.Error())
	}
	c.Log("running the uninstall script on the host")
	res, err := c.Host.RunOnHost(ctx, st.Scripts.Uninstall, nil)
	if err != nil {
		return p.uninstallFailed(fmt.Sprintf("uninstall script: %v", err))
	}
	if res.Exit != 0 {
		return p.uninstallFailed(res.Reason())
	}
	if _, err := c.API.ApplyNode(ctx, c.NodeName, st.FieldManager, nil, nil, false); err != nil {
		return p.uninstallFailed(err.Error())
	}
	if err := c.Ready.Mark(st.Desired); err != nil {
		c.Log("cannot write the ready file %s: %v", c.Ready.Path, err)
	}
	summary := strings.Join(res.Said(), "; ")
	if summary == "" {
		summary = "nothing was left to remove"
	}
	c.event("Normal", "Uninstalled", fmt.Sprintf("node %s: pool %s uninstalled: %s", c.NodeName, st.Pool, summary))
	return Outcome{State: OutcomeUninstalled, Done: true, Changed: res.Changed(), Summary: cutUTF8(summary, maxChanged)}
}

func (p *pass) uninstallFailed(reason string) Outcome {
	c, st := p.c, p.c.St
	if err := c.Ready.Clear(); err != nil {
		c.Log("cannot remove the ready file %s: %v", c.Ready.Path, err)
	}
	status := NextStatus(p.prev, st.Pool, st.Desired, StateFailed, reason, "", c.now())
	if err := p.applyIfNeeded(p.claim(), map[string]string{st.StatusAnnotation: status.Encode()}); err != nil {
		c.Log("cannot record the failure on the node: %v", err)
	}
	if reason != c.lastFailure && !(p.prev.State == StateFailed && p.prev.Reason == reason) {
		c.event("Warning", "UninstallFailed", fmt.Sprintf("node %s: %s", c.NodeName, reason))
	}
	c.lastFailure = reason
	return Outcome{State: StateFailed, Reason: reason}
}
