package main

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// maxLine is the longest partial line a source buffers; longer ones are
// written out in pieces.
const maxLine = 64 << 10

// console interleaves the output of every part of the stack onto one
// writer, whole lines at a time, each prefixed with its source's name.
type console struct {
	mu    sync.Mutex
	w     io.Writer
	width int // the prefixes' width, so the bars line up
}

func newConsole(w io.Writer, names ...string) *console {
	c := &console{w: w}
	for _, n := range names {
		c.width = max(c.width, len(n))
	}
	return c
}

// print writes text as it is, between other sources' lines.
func (c *console) print(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = io.WriteString(c.w, text)
}

func (c *console) line(name string, text []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = fmt.Fprintf(c.w, "%-*s | %s\n", c.width, name, text)
}

// source returns a writer whose lines the console prints as "name | line".
func (c *console) source(name string) *lineWriter {
	return &lineWriter{c: c, name: name}
}

// lineWriter splits what is written to it into lines for its console. It
// is safe for concurrent use.
type lineWriter struct {
	c    *console
	name string

	mu  sync.Mutex
	buf []byte // the start of a line not yet ended
}

// Write implements io.Writer.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	rest := l.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		l.c.line(l.name, bytes.TrimSuffix(rest[:i], []byte("\r")))
		rest = rest[i+1:]
	}
	for len(rest) >= maxLine {
		l.c.line(l.name, rest[:maxLine])
		rest = rest[maxLine:]
	}
	l.buf = append(l.buf[:0], rest...)
	return len(p), nil
}

// Flush prints a last line that has no newline.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.c.line(l.name, l.buf)
		l.buf = l.buf[:0]
	}
}
