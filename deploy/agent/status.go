package main

// The status annotation: what the agent last concluded about its node, on the Node itself, where
// `kubectl get node -o yaml` and the program's checks read it. It rides along with the labels in the same
// server-side apply, so a label and the status that explains it never disagree for long.

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// The states of the status annotation.
const (
	StateConverged    = "converged"
	StateConverging   = "converging"
	StateFailed       = "failed"
	StateRefused      = "refused"
	StateUninstalling = "uninstalling"
)

// maxChanged bounds the change summary kept in the annotation.
const maxChanged = 300

// Status is the value of the status annotation.
type Status struct {
	Pool     string `json:"pool"`
	Desired  string `json:"desired"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Since    string `json:"since"`
	Attempts int    `json:"attempts"`
	Changed  string `json:"changed"`
}

// ParseStatus reads an annotation value; false when there is none or it does not decode (a status that
// cannot be read is treated as no status: the next pass writes a fresh one).
func ParseStatus(text string) (Status, bool) {
	if strings.TrimSpace(text) == "" {
		return Status{}, false
	}
	var s Status
	if err := json.Unmarshal([]byte(text), &s); err != nil || s.State == "" {
		return Status{}, false
	}
	return s, true
}

// Encode is the compact JSON of the annotation (reasons keep their < > & readable).
func (s Status) Encode() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// NextStatus is the status that follows prev when a pass of desired ends in state with reason. since
// moves only when the state, the reason or the desired state changes, so that a node that stays converged
// (or keeps failing the same way) is not rewritten by every pass. attempts counts the consecutive failed
// passes of this desired state; a pass in progress keeps the count so that the next failure adds to it.
// changed is the last change summary: kept from prev for the same desired state unless a new one is given.
func NextStatus(prev Status, pool, desired, state, reason, changed string, now time.Time) Status {
	same := prev.Desired == desired
	s := Status{Pool: pool, Desired: desired, State: state, Reason: reason}
	if same {
		s.Changed = prev.Changed
		s.Attempts = prev.Attempts
	}
	if changed != "" {
		s.Changed = cutUTF8(changed, maxChanged)
	}
	switch state {
	case StateConverged, StateRefused:
		s.Attempts = 0
	case StateFailed:
		s.Attempts++
	}
	if same && prev.State == state && prev.Reason == reason && prev.Since != "" {
		s.Since = prev.Since
	} else {
		s.Since = now.UTC().Format(time.RFC3339)
	}
	return s
}
