package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/sftp"
)

// client returns an SFTP client talking to an in-process SFTP server over a pipe (the server sees this
// machine's file system, like sftp-server on a node).
func client(t *testing.T) *sftp.Client {
	t.Helper()
	a, b := net.Pipe()
	server, err := sftp.NewServer(a)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Serve() }()
	c, err := sftp.NewClientPipe(b, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(); _ = server.Close() })
	return c
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestADirectoryIsCopiedUnderItsOwnNameAndTheLastElementIsCreated(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "kit", "aaa", "wsf.sh"), "kit A\n")
	write(t, filepath.Join(src, "kit", "selected"), "aaa\n")
	dest := filepath.Join(dst, "state") // missing: created
	if err := sftpCopy(client(t), filepath.Join(src, "kit"), dest); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dest, "kit", "aaa", "wsf.sh")); got != "kit A\n" {
		t.Fatalf("kit: %q", got)
	}
	// a second copy of another kit overwrites `selected` and leaves the first kit where it is
	src2 := t.TempDir()
	write(t, filepath.Join(src2, "kit", "bbb", "wsf.sh"), "kit B\n")
	write(t, filepath.Join(src2, "kit", "selected"), "bbb\n")
	if err := sftpCopy(client(t), filepath.Join(src2, "kit"), dest); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dest, "kit", "selected")); got != "bbb\n" {
		t.Fatalf("selected: %q", got)
	}
	if got := read(t, filepath.Join(dest, "kit", "aaa", "wsf.sh")); got != "kit A\n" {
		t.Fatalf("the first kit: %q", got)
	}
}

func TestADirectoryWithATrailingSlashIsCopiedIntoTheDestination(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "a.txt"), "a")
	if err := sftpCopy(client(t), src+"/", dst); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dst, "a.txt")); got != "a" {
		t.Fatalf("a.txt: %q", got)
	}
}

func TestAFileLandsInsideAnExistingDirectoryOrAtThePath(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "f"), "one")
	if err := sftpCopy(client(t), filepath.Join(src, "f"), dst); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dst, "f")); got != "one" {
		t.Fatalf("inside: %q", got)
	}
	if err := sftpCopy(client(t), filepath.Join(src, "f"), filepath.Join(dst, "g")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dst, "g")); got != "one" {
		t.Fatalf("at the path: %q", got)
	}
}

func TestAMissingParentIsAnError(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "kit", "x"), "x")
	if err := sftpCopy(client(t), filepath.Join(src, "kit"), filepath.Join(dst, "no", "such")); err == nil {
		t.Fatal("copied below a missing parent")
	}
}

func TestTextIsWrittenToAFileButNotOntoADirectory(t *testing.T) {
	dst := t.TempDir()
	c := client(t)
	if err := copyText(c, "hello", filepath.Join(dst, "t")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dst, "t")); got != "hello" {
		t.Fatalf("text: %q", got)
	}
	if err := copyText(c, "hello", dst); err == nil {
		t.Fatal("wrote text onto a directory")
	}
}
