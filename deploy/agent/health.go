package main

// Readiness: the pod is Ready only while its node is converged and verified. The DaemonSet's rollout waits
// on it, so a node that is not converged holds the rollout back instead of letting it sweep on across the
// pool. The state is a file in an emptyDir, checked by `wsf-agent ready` as an exec probe: no port to
// open, and a restarted container starts not Ready until its first pass succeeds.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ReadyFile is the file whose presence makes the pod Ready; it holds the desired hash it was written for.
type ReadyFile struct{ Path string }

// Mark makes the pod Ready for desired. The file appears whole or not at all (written aside, then renamed),
// so the probe never reads half of it.
func (r ReadyFile) Mark(desired string) error {
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o755); err != nil {
		return err
	}
	tmp := r.Path + ".tmp"
	if err := os.WriteFile(tmp, []byte(desired+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, r.Path)
}

// Clear makes the pod not Ready.
func (r ReadyFile) Clear() error {
	if err := os.Remove(r.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// IsReady reports whether the ready file exists.
func (r ReadyFile) IsReady() bool {
	_, err := os.Stat(r.Path)
	return err == nil
}

// ReadyCommand is `wsf-agent ready`: exit 0 (silently) when the ready file exists, else 1 with one line.
func ReadyCommand(r ReadyFile, w io.Writer) int {
	if r.IsReady() {
		return 0
	}
	fmt.Fprintf(w, "wsf-agent: not ready: the node is not converged and verified yet (no %s)\n", r.Path)
	return 1
}
