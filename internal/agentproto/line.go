package agentproto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

// Type says what a Line carries.
type Type string

// The line types, in the order an agent writes them: hello first, always;
// then start, progress lines, and last a result (success) or an error
// (failure, exit 1), an error preceded by a steps line when the agent had
// started working.
const (
	TypeHello    Type = "hello"
	TypeStart    Type = "start"
	TypeProgress Type = "progress"
	TypeSteps    Type = "steps"
	TypeResult   Type = "result"
	TypeError    Type = "error"
)

var knownTypes = []Type{TypeHello, TypeStart, TypeProgress, TypeSteps, TypeResult, TypeError}

// MaxLineBytes bounds one line: the largest a real agent writes is a plan
// or progress line of a few KiB; anything near this is not an agent.
const MaxLineBytes = 4 << 20

// Line is one JSON line the agent writes on stdout. New fields are added
// as optional ones (omitempty): a reader ignores fields it does not know,
// so a plan line can grow without breaking the other side.
type Line struct {
	Type      Type                        `json:"type"`
	Time      time.Time                   `json:"time"`
	Component string                      `json:"component,omitempty"`
	Progress  []restore.ComponentProgress `json:"progress,omitempty"`
	// Result of a restore (on a result line).
	Result *restore.ComponentResult `json:"result,omitempty"`
	// Plan of a restore --plan-only (on a result line): the driver's
	// plan, which carries whatever a driver adds to it.
	Plan *driver.ComponentPlan `json:"plan,omitempty"`
	// Version committed by a capture (on a result line).
	Version *client.Version `json:"version,omitempty"`
	// ComponentBlob is the chunk digest under which capture --no-commit
	// stored the captured component's JSON (its chunk list, file index).
	ComponentBlob string `json:"componentBlob,omitempty"`
	// Steps says where the time went, in order (on result and steps
	// lines): the agent's own steps and the driver's phases as progress
	// reported them (to the progress interval).
	Steps []Step `json:"steps,omitempty"`
	Error string `json:"error,omitempty"`
	// Unchanged on an error line: the agent failed before it started
	// changing the target (its plan failed), so the target is as it was.
	Unchanged bool `json:"unchanged,omitempty"`
	// Agent on the hello line: the agent's version, which its client
	// checks before it trusts anything else the agent says.
	Agent *buildinfo.Info `json:"agent,omitempty"`
}

// Step is one timed step of the agent.
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// Marshal returns l as one line (with its newline); a line that cannot be
// encoded becomes an error line, so the reader still learns what failed.
func (l Line) Marshal() []byte {
	b, err := json.Marshal(l)
	if err != nil {
		b, _ = json.Marshal(Line{Type: TypeError, Time: l.Time, Component: l.Component, Error: "encode agent line: " + err.Error()})
	}
	return append(b, '\n')
}

// LineError is a line that is not an agent line.
type LineError struct {
	// Excerpt is the line's start (at most 80 bytes), to find it in a log.
	Excerpt string
	Reason  string
}

func (e *LineError) Error() string {
	return fmt.Sprintf("not an agent line (%s): %q", e.Reason, e.Excerpt)
}

func excerpt(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// Parse reads one line (without its newline). It returns a *LineError for
// a line over MaxLineBytes, one that is not a JSON object, one without a
// type and one of a type this client does not know.
func Parse(b []byte) (Line, error) {
	b = bytes.TrimRight(b, "\r\n")
	if len(b) > MaxLineBytes {
		return Line{}, &LineError{Excerpt: excerpt(b), Reason: fmt.Sprintf("%d bytes, over the limit of %d", len(b), MaxLineBytes)}
	}
	var l Line
	if err := json.Unmarshal(b, &l); err != nil {
		return Line{}, &LineError{Excerpt: excerpt(b), Reason: "not JSON: " + err.Error()}
	}
	if l.Type == "" {
		return Line{}, &LineError{Excerpt: excerpt(b), Reason: "no type"}
	}
	for _, t := range knownTypes {
		if l.Type == t {
			return l, nil
		}
	}
	want := make([]string, len(knownTypes))
	for i, t := range knownTypes {
		want[i] = string(t)
	}
	return Line{}, &LineError{Excerpt: excerpt(b), Reason: fmt.Sprintf("unknown type %q, want one of %s", l.Type, strings.Join(want, ", "))}
}

// Last returns the last line of type t among log lines (a pod's log tail),
// skipping what is not an agent line.
func Last(log []string, t Type) (Line, bool) {
	for i := len(log) - 1; i >= 0; i-- {
		if l, err := Parse([]byte(log[i])); err == nil && l.Type == t {
			return l, true
		}
	}
	return Line{}, false
}

// Reader reads agent lines from a stream (a followed pod log).
type Reader struct {
	r *bufio.Reader
}

// NewReader reads lines from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next line, a *LineError for a line that is not an
// agent line (the stream goes on after it: an over-long line is skipped
// without holding it in memory), or io.EOF at the end.
func (r *Reader) Next() (Line, error) {
	var buf []byte
	over := 0
	for {
		part, err := r.r.ReadSlice('\n')
		switch {
		case over > 0:
			over += len(part)
		case len(buf)+len(part) > MaxLineBytes+1:
			over = len(buf) + len(part)
			buf = buf[:min(len(buf), 80)]
		default:
			buf = append(buf, part...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if over > 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return Line{}, err
			}
			if err == nil {
				over-- // the newline
			}
			return Line{}, &LineError{Excerpt: excerpt(buf), Reason: fmt.Sprintf("%d bytes, over the limit of %d", over, MaxLineBytes)}
		}
		if err != nil {
			if len(bytes.TrimSpace(buf)) == 0 {
				return Line{}, err
			}
			if !errors.Is(err, io.EOF) {
				return Line{}, err
			}
		}
		if len(bytes.TrimSpace(buf)) == 0 {
			buf = buf[:0]
			continue
		}
		return Parse(buf)
	}
}
