package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Logger writes the agent's log lines, `wsf-agent[<pool>/<node>]: <text>`, one write per line so that
// lines from concurrent readers of a host run never interleave.
type Logger struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

// NewLogger logs to w for the given pool and node.
func NewLogger(w io.Writer, pool, node string) *Logger {
	return &Logger{w: w, prefix: fmt.Sprintf("wsf-agent[%s/%s]: ", pool, node)}
}

// Printf logs one message; a message of several lines is logged as several prefixed lines.
func (l *Logger) Printf(format string, args ...any) {
	text := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		b.WriteString(l.prefix)
		b.WriteString(line)
		b.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, b.String())
}
