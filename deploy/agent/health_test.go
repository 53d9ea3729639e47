package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTheReadyFileComesAndGoes(t *testing.T) {
	r := ReadyFile{Path: filepath.Join(t.TempDir(), "run", "ready")}
	if r.IsReady() {
		t.Fatal("ready before any pass")
	}
	if err := r.Mark("abc"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(r.Path); string(b) != "abc\n" || !r.IsReady() {
		t.Errorf("ready file %q", b)
	}
	if err := r.Clear(); err != nil || r.IsReady() {
		t.Errorf("after Clear: %v, ready %v", err, r.IsReady())
	}
	if err := r.Clear(); err != nil {
		t.Errorf("clearing twice: %v", err)
	}
}

func TestTheProbeIsSilentWhenReadyAndSaysOneLineWhenNot(t *testing.T) {
	r := ReadyFile{Path: filepath.Join(t.TempDir(), "ready")}
	var out bytes.Buffer
	if code := ReadyCommand(r, &out); code != 1 || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("not ready: exit %d, output %q", code, out.String())
	}
	_ = r.Mark("abc")
	out.Reset()
	if code := ReadyCommand(r, &out); code != 0 || out.Len() != 0 {
		t.Errorf("ready: exit %d, output %q", code, out.String())
	}
}
