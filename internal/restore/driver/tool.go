package driver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Tail keeps the last bytes written to it: a tool's stderr for an error
// message, without holding an unbounded log in memory.
type Tail struct {
	mu  sync.Mutex
	buf []byte
	Max int
}

func (t *Tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := t.Max
	if limit == 0 {
		limit = 4096
	}
	t.buf = append(t.buf, b...)
	if len(t.buf) > limit {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-limit:]...)
	}
	return len(b), nil
}

// String returns the kept bytes, trimmed.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}

// ToolError wraps the failure of an external tool with the end of its
// stderr, or the context's error when the tool was killed by cancellation.
func ToolError(ctx context.Context, name string, err error, stderr *Tail) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", name, cerr)
	}
	var ee *exec.ExitError
	msg := ""
	if stderr != nil {
		msg = stderr.String()
	}
	if errors.As(err, &ee) && msg != "" {
		lines := strings.Split(msg, "\n")
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		return fmt.Errorf("%s exited with %d: %s", name, ee.ExitCode(), strings.Join(lines, "\n"))
	}
	if msg != "" {
		return fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// RandSuffix returns 8 random hex digits for staging names.
func RandSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errReader remembers the error of the stream, as opposed to the tool's.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// Sizes of the pipe into a tool and of the writes into it.
const (
	feedPipe   = 1 << 20
	feedBuffer = 256 << 10
)

// Feed runs cmd with the component stream on stdin. If the stream fails
// (bad chunk, cancellation) the tool is killed before its stdin is closed,
// so it never sees a clean end of a truncated script and commits it.
//
// r is what the tool reads: pr itself or a filter over it; pr counts the
// component's bytes.
func Feed(ctx context.Context, cmd *exec.Cmd, name string, r io.Reader, pr *ProgressReader, size int64, stderr *Tail, res *ComponentResult) error {
	toolIn, stdin, err := os.Pipe()
	if err != nil {
		return err
	}
	// Tools read their input in small pieces (pg_restore: 4 KiB); a large
	// pipe buffer lets the stream run ahead instead of waking the writer
	// for every few reads.
	GrowPipe(stdin, feedPipe)
	cmd.Stdin = toolIn
	err = cmd.Start()
	toolIn.Close()
	if err != nil {
		stdin.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	er := &errReader{r: r}
	// writerOnly: *os.File's ReadFrom would copy in 32 KiB pieces.
	_, copyErr := io.CopyBuffer(writerOnly{stdin}, er, make([]byte, feedBuffer))
	pr.Flush()
	res.Bytes = pr.N
	if er.err != nil || (copyErr == nil && pr.N != size) {
		_ = cmd.Process.Kill()
		_ = stdin.Close()
		_ = cmd.Wait()
		if er.err != nil {
			return er.err
		}
		return fmt.Errorf("stream ended after %d of %d bytes", pr.N, size)
	}
	_ = stdin.Close()
	return ToolError(ctx, name, cmd.Wait(), stderr)
}

// writerOnly hides all but Write, so io.CopyBuffer uses its buffer.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(b []byte) (int, error) { return w.w.Write(b) }
