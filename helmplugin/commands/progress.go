package commands

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
)

// Progress shows per-component progress of an apply: a live bar per
// component on a terminal, plain lines (no control characters) otherwise.
type Progress interface {
	// Line takes an agent line of a component (from executor.OnProgress).
	Line(component string, l agentproto.Line)
	// Finish marks a component done (ok) or failed, with a short note.
	Finish(component string, ok bool, note string)
	// Close waits for the bars to render their last state.
	Close()
}

// newProgress returns bars on a TTY (s.errTTY) and plain lines otherwise;
// both write to stderr so -o json on stdout stays clean. totals are the
// components' sizes from the manifest (bytes).
func newProgress(s *Settings, components []string, totals map[string]int64) Progress {
	if s.errTTY {
		return newBars(s.Err, components, totals)
	}
	return &plainProgress{w: s.Err, last: map[string]string{}, totals: totals}
}

func lastProgress(component string, l agentproto.Line) (restore.ComponentProgress, bool) {
	if l.Type != agentproto.TypeProgress || len(l.Progress) == 0 {
		return restore.ComponentProgress{}, false
	}
	ps := l.Progress
	for _, p := range ps {
		if p.Component == component || len(ps) == 1 {
			return p, true
		}
	}
	return restore.ComponentProgress{}, false
}

// shownBytes is what a progress display says of a component: bytes done
// and the total (the agent's, else the plan's), the total never below
// what is done: a size planned from the manifest is an estimate.
func shownBytes(cp restore.ComponentProgress, planned int64) (done, total int64) {
	done, total = max(cp.Bytes, 0), cp.TotalBytes
	if total <= 0 {
		total = planned
	}
	if total > 0 && done > total {
		total = done
	}
	return done, total
}

type plainProgress struct {
	mu     sync.Mutex
	w      io.Writer
	last   map[string]string
	totals map[string]int64
}

func (p *plainProgress) Line(component string, l agentproto.Line) {
	cp, ok := lastProgress(component, l)
	if !ok {
		return
	}
	done, total := shownBytes(cp, p.totals[component])
	msg := fmt.Sprintf("%s: %s %s", component, dash(cp.Phase), humanize.IBytes(uint64(done)))
	if total > 0 {
		msg += " / " + humanize.IBytes(uint64(total))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last[component] == msg {
		return
	}
	p.last[component] = msg
	fmt.Fprintln(p.w, msg)
}

func (p *plainProgress) Finish(component string, ok bool, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := "done"
	if !ok {
		st = "failed"
	}
	if note != "" {
		st += " (" + note + ")"
	}
	fmt.Fprintf(p.w, "%s: %s\n", component, st)
}

func (p *plainProgress) Close() {}

type bars struct {
	p      *mpb.Progress
	mu     sync.Mutex
	bars   map[string]*mpb.Bar
	phase  map[string]string
	totals map[string]int64
}

func newBars(w io.Writer, components []string, totals map[string]int64) *bars {
	b := &bars{
		p:    mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh()),
		bars: map[string]*mpb.Bar{}, phase: map[string]string{}, totals: totals,
	}
	width := 0
	for _, c := range components {
		width = max(width, len(c))
	}
	for _, c := range components {
		total := totals[c]
		if total <= 0 {
			total = 1
		}
		b.phase[c] = "waiting"
		b.bars[c] = b.p.AddBar(total,
			mpb.PrependDecorators(
				decor.Name(c, decor.WC{W: width + 1, C: decor.DindentRight}),
				decor.Any(func(decor.Statistics) string { return b.phaseOf(c) }, decor.WC{W: 12, C: decor.DindentRight}),
			),
			mpb.AppendDecorators(
				decor.CountersKibiByte("% .1f / % .1f"),
				decor.OnComplete(decor.Percentage(decor.WC{W: 5}), " ok"),
			),
		)
	}
	return b
}

func (b *bars) phaseOf(c string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.phase[c]
}

func (b *bars) Line(component string, l agentproto.Line) {
	cp, ok := lastProgress(component, l)
	if !ok {
		return
	}
	b.mu.Lock()
	bar := b.bars[component]
	if cp.Phase != "" {
		b.phase[component] = cp.Phase
	}
	b.mu.Unlock()
	if bar == nil {
		return
	}
	b.mu.Lock()
	planned := b.totals[component]
	b.mu.Unlock()
	done, total := shownBytes(cp, planned)
	if total > 0 {
		bar.SetTotal(total, false)
	}
	if done > bar.Current() {
		bar.SetCurrent(done)
	}
}

func (b *bars) Finish(component string, ok bool, note string) {
	b.mu.Lock()
	bar := b.bars[component]
	b.phase[component] = map[bool]string{true: "done", false: "failed"}[ok]
	if note != "" && ok {
		b.phase[component] = note
	}
	b.mu.Unlock()
	if bar == nil {
		return
	}
	if ok {
		bar.SetTotal(-1, true) // complete at the current count
		if bar.Current() == 0 {
			bar.SetTotal(1, false)
			bar.SetCurrent(1)
		}
	} else {
		bar.Abort(false)
	}
}

func (b *bars) Close() {
	for _, bar := range b.bars {
		if !bar.Completed() && !bar.Aborted() {
			bar.Abort(false)
		}
	}
	b.p.Wait()
}
