package opensearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// built is one index made by this apply, not yet serving.
type built struct {
	header indexHeader
	name   string // the new concrete index
	docs   int64
}

// Restore implements driver.Driver: every index of the stream is loaded
// into a new index (replicas 0, refresh off, parallel bulk requests), then
// one _aliases call serves them all under their names. Until that call the
// target serves what it served before; on any error the new indexes are
// deleted.
func (d *Driver) Restore(ctx context.Context, c statepkg.Component, src driver.ChunkSource, t driver.Target, p driver.Progress) (res driver.ComponentResult, err error) {
	start := time.Now()
	res = driver.ComponentResult{Component: c.Name, Kind: c.Kind, Strategy: "alias-swap"}
	defer func() { res.Duration = time.Since(start) }()
	phase := driver.PhasePlan
	fail := func(err error) (driver.ComponentResult, error) {
		return res, fmt.Errorf("restore %s: %s: %w", c.Name, phase, err)
	}
	pl, err := d.Plan(ctx, c, t)
	if err != nil {
		return fail(err)
	}
	res.Action = pl.Action
	if pl.Action == driver.ActionSkip {
		return res, nil
	}
	cl, _, err := newClient(t.URL, t.Option)
	if err != nil {
		return fail(err)
	}
	workers, err := intOption(t, OptWorkers, cl.processors(ctx), 1, 64)
	if err != nil {
		return fail(err)
	}
	bulkBytes, err := intOption(t, OptBulkBytes, 8<<20, 64<<10, 100<<20)
	if err != nil {
		return fail(err)
	}

	phase = driver.PhaseRestore
	var made []*built
	defer func() {
		if err != nil {
			// Nothing serves them yet: the target is as it was.
			bg := context.WithoutCancel(ctx)
			for _, b := range made {
				_ = cl.do(bg, http.MethodDelete, "/"+esc(b.name), nil, nil)
			}
		}
	}()
	r, err := src.Open(ctx)
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	pr := &driver.ProgressReader{R: r, P: p, Component: c.Name, Phase: driver.PhaseRestore}
	l := &loader{cl: cl, workers: workers, bulkBytes: bulkBytes, suffix: shortDigest(c.Digest), c: c, t: t, p: p}
	err = readStream(bufio.NewReaderSize(pr, 1<<20), func(_ []byte, rec *record) error {
		return l.take(ctx, rec, &made)
	})
	pr.Flush()
	res.Bytes = pr.N
	if err == nil {
		err = l.err
	}
	if err != nil {
		if l.bulk != nil {
			_ = l.bulk.abort()
		}
		if ctx.Err() != nil {
			return fail(fmt.Errorf("%w (the target still serves its previous indexes)", ctx.Err()))
		}
		return fail(err)
	}
	for _, b := range made {
		res.Rows += b.docs
	}

	phase = driver.PhaseSwap
	prev, err := cl.swap(ctx, made)
	if err != nil {
		return fail(err)
	}
	res.Previous = joinNames(prev)
	phase = driver.PhaseCleanup
	for _, b := range made {
		cl.dropStale(context.WithoutCancel(ctx), b, prev)
	}
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDone})
	return res, nil
}

func joinNames(m map[string]string) string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func intOption(t driver.Target, key string, def, lo, hi int) (int, error) {
	s := t.Option(key, "")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("option %s=%q: want a number from %d to %d", key, s, lo, hi)
	}
	return n, nil
}

// processors sizes the bulk workers to the node: its processors, 2 to 8.
func (c *client) processors(ctx context.Context) int {
	var ans struct {
		Nodes struct {
			OS struct {
				Available int `json:"available_processors"`
			} `json:"os"`
		} `json:"nodes"`
	}
	if err := c.do(ctx, http.MethodGet, "/_cluster/stats?filter_path=nodes.os.available_processors", nil, &ans); err != nil {
		return 2
	}
	return min(max(ans.Nodes.OS.Available, 2), 8)
}

// loader turns stream records into new indexes.
type loader struct {
	cl        *client
	workers   int
	bulkBytes int
	suffix    string
	c         statepkg.Component
	t         driver.Target
	p         driver.Progress
	cur       *built
	bulk      *bulker
	err       error
}

func (l *loader) take(ctx context.Context, rec *record, made *[]*built) error {
	switch {
	case rec.Index != nil:
		b := &built{header: *rec.Index}
		name, err := l.cl.create(ctx, b.header, l.suffix, l.meta(b.header.Name))
		if err != nil {
			return fmt.Errorf("index %s: %w", b.header.Name, err)
		}
		b.name = name
		*made = append(*made, b)
		l.cur = b
		l.bulk = newBulker(ctx, l.cl, name, l.workers, l.bulkBytes, l.p, l.c.Name)
	case rec.ID != nil:
		l.cur.docs++
		return l.bulk.add(*rec.ID, rec.Routing, rec.Source)
	case rec.EndIndex != nil:
		if err := l.bulk.close(); err != nil {
			return fmt.Errorf("index %s: %w", l.cur.header.Name, err)
		}
		l.bulk = nil
		if err := l.cl.finish(ctx, l.cur); err != nil {
			return fmt.Errorf("index %s: %w", l.cur.header.Name, err)
		}
	}
	return nil
}

func (l *loader) meta(name string) unikubeMeta {
	return unikubeMeta{Name: name, State: l.t.State, Digest: l.t.Digest, Component: l.c.Name, ComponentDigest: l.c.Digest, AppliedAt: time.Now().UTC().Format(time.RFC3339)}
}

// create makes the new index for h: its settings with replicas 0 and
// refresh off, its mappings with the marker in _meta.
func (c *client) create(ctx context.Context, h indexHeader, suffix string, m unikubeMeta) (string, error) {
	name := h.Name + "-unikube-" + suffix
	s, err := c.lookup(ctx, name)
	if err != nil {
		return "", err
	}
	if s != nil {
		// The rollback copy, what serves now (a forced re-apply), or the
		// leftover of a killed apply (dropped after this one succeeds).
		name += "-" + driver.RandSuffix()
	}
	// A package is hostile until checked: what a capture leaves out
	// (blocks above all: they would fail the apply and keep its leftover
	// from being deleted) is left out here too.
	settings := userSettings(h.Settings)
	settings["index.number_of_replicas"] = "0"
	settings["index.refresh_interval"] = "-1"
	mappings := map[string]json.RawMessage{}
	for k, v := range h.Mappings {
		mappings[k] = v
	}
	meta := map[string]any{}
	if raw, ok := h.Mappings["_meta"]; ok {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return "", fmt.Errorf("%w: _meta of %s: %w", errCorrupt, h.Name, err)
		}
	}
	meta["unikube"] = m
	mappings["_meta"], _ = json.Marshal(meta)
	body := map[string]any{"settings": settings, "mappings": mappings}
	if err := c.do(ctx, http.MethodPut, "/"+esc(name)+"?wait_for_active_shards=1", body, nil); err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	return name, nil
}

// finish puts replicas and refresh back as captured, refreshes, waits for
// the index's primaries and checks the document count.
func (c *client) finish(ctx context.Context, b *built) error {
	replicas, refresh := any("1"), any(nil)
	if v, ok := b.header.Settings["index.number_of_replicas"]; ok {
		replicas = v
	}
	if v, ok := b.header.Settings["index.refresh_interval"]; ok {
		refresh = v
	}
	if err := c.do(ctx, http.MethodPut, "/"+esc(b.name)+"/_settings", map[string]any{
		"index.number_of_replicas": replicas, "index.refresh_interval": refresh,
	}, nil); err != nil {
		return fmt.Errorf("set replicas and refresh back: %w", err)
	}
	if err := c.do(ctx, http.MethodPost, "/"+esc(b.name)+"/_refresh", nil, nil); err != nil {
		return err
	}
	var health struct {
		TimedOut bool   `json:"timed_out"`
		Status   string `json:"status"`
	}
	if err := c.do(ctx, http.MethodGet, "/_cluster/health/"+esc(b.name)+"?wait_for_status=yellow&timeout=120s", nil, &health); err != nil {
		return err
	}
	if health.TimedOut {
		return fmt.Errorf("%s is %s after 120 s, its primaries are not all active", b.name, health.Status)
	}
	var count struct {
		Count int64 `json:"count"`
	}
	if err := c.do(ctx, http.MethodGet, "/"+esc(b.name)+"/_count", nil, &count); err != nil {
		return err
	}
	if count.Count != b.docs {
		return fmt.Errorf("%s holds %d documents after loading %d", b.name, count.Count, b.docs)
	}
	return nil
}

// swap serves every new index under its name in one _aliases call. A
// concrete index of the same name is first cloned (the rollback copy) and
// removed in the same call. It returns name -> previous concrete index.
func (c *client) swap(ctx context.Context, made []*built) (prev map[string]string, err error) {
	prev = map[string]string{}
	var actions []map[string]any
	var clones []string
	var blocked []string
	defer func() {
		if err != nil {
			bg := context.WithoutCancel(ctx)
			for _, n := range clones {
				_ = c.do(bg, http.MethodDelete, "/"+esc(n), nil, nil)
			}
			for _, n := range blocked {
				_ = c.do(bg, http.MethodPut, "/"+esc(n)+"/_settings", map[string]any{"index.blocks.write": nil}, nil)
			}
		}
	}()
	for _, b := range made {
		name := b.header.Name
		s, err := c.lookup(ctx, name)
		if err != nil {
			return nil, err
		}
		switch {
		case s == nil:
		case s.isIndex:
			// Writes stop for the moment of the clone (a hard-link copy).
			if err := c.do(ctx, http.MethodPut, "/"+esc(name)+"/_settings", map[string]any{"index.blocks.write": true}, nil); err != nil {
				return nil, fmt.Errorf("block writes to %s for its rollback copy: %w", name, err)
			}
			blocked = append(blocked, name)
			copyName := name + "-unikube-prev-" + driver.RandSuffix()
			if err := c.clone(ctx, name, copyName); err != nil {
				return nil, err
			}
			clones = append(clones, copyName)
			prev[name] = copyName
			actions = append(actions, map[string]any{"remove_index": map[string]any{"index": name}})
		default:
			for concrete, al := range s.concrete {
				prev[name] = concrete
				m, err := c.markerOf(ctx, concrete)
				if err != nil {
					return nil, err
				}
				for a := range al.Aliases {
					if _, moving := b.header.Aliases[a]; moving || a == name || m != nil {
						actions = append(actions, map[string]any{"remove": map[string]any{"index": concrete, "alias": a}})
					}
				}
			}
		}
		actions = append(actions, map[string]any{"add": map[string]any{"index": b.name, "alias": name}})
		for a, raw := range b.header.Aliases {
			add := map[string]any{}
			if len(raw) > 0 && string(raw) != "null" {
				if err := json.Unmarshal(raw, &add); err != nil {
					return nil, fmt.Errorf("%w: alias %s of %s: %w", errCorrupt, a, name, err)
				}
			}
			add["index"], add["alias"] = b.name, a
			actions = append(actions, map[string]any{"add": add})
		}
	}
	if err := c.do(ctx, http.MethodPost, "/_aliases", map[string]any{"actions": actions}, nil); err != nil {
		return nil, fmt.Errorf("switch aliases: %w", err)
	}
	return prev, nil
}

// clone copies index src to dst (hard links on the same node), marks the
// copy as the rollback copy of src and opens it for writes again.
func (c *client) clone(ctx context.Context, src, dst string) error {
	if err := c.do(ctx, http.MethodPost, "/"+esc(src)+"/_clone/"+esc(dst)+"?wait_for_active_shards=1", map[string]any{
		"settings": map[string]any{"index.blocks.write": nil},
	}, nil); err != nil {
		return fmt.Errorf("clone %s to %s (the rollback copy): %w", src, dst, err)
	}
	var got map[string]struct {
		Mappings map[string]json.RawMessage `json:"mappings"`
	}
	if err := c.do(ctx, http.MethodGet, "/"+esc(dst)+"/_mapping", nil, &got); err != nil {
		return err
	}
	meta := map[string]any{}
	if raw, ok := got[dst].Mappings["_meta"]; ok {
		_ = json.Unmarshal(raw, &meta)
	}
	meta["unikube"] = unikubeMeta{Name: src}
	if err := c.do(ctx, http.MethodPut, "/"+esc(dst)+"/_mapping", map[string]any{"_meta": meta}, nil); err != nil {
		return fmt.Errorf("mark %s as the rollback copy of %s: %w", dst, src, err)
	}
	return nil
}

// dropStale deletes this driver's indexes for b's name other than the new
// one and the rollback copy: copies from older applies and loads that were
// killed before they served.
func (c *client) dropStale(ctx context.Context, b *built, prev map[string]string) {
	var rows []struct {
		Index string `json:"index"`
	}
	pattern := b.header.Name + "-unikube-*"
	if err := c.do(ctx, http.MethodGet, "/_cat/indices/"+url.PathEscape(pattern)+"?format=json&h=index&expand_wildcards=open,closed", nil, &rows); err != nil {
		return
	}
	for _, r := range rows {
		if r.Index == b.name || r.Index == prev[b.header.Name] {
			continue
		}
		if m, err := c.markerOf(ctx, r.Index); err != nil || m == nil || m.Name != b.header.Name {
			continue // not ours
		}
		_ = c.do(ctx, http.MethodDelete, "/"+esc(r.Index), nil, nil)
	}
}

// bulker sends documents of one index in bulk requests of about size
// bytes, several at once.
type bulker struct {
	cl     *client
	index  string
	size   int
	buf    bytes.Buffer
	n      int
	ch     chan []byte
	g      *errgroup.Group
	gctx   context.Context
	cancel context.CancelFunc
	p      driver.Progress
	compo  string
	closed bool
}

func newBulker(ctx context.Context, cl *client, index string, workers, size int, p driver.Progress, compo string) *bulker {
	gctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(gctx)
	b := &bulker{cl: cl, index: index, size: size, ch: make(chan []byte), g: g, gctx: gctx, cancel: cancel, p: p, compo: compo}
	for range workers {
		g.Go(func() error {
			for body := range b.ch {
				if err := b.send(gctx, body); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return b
}

type bulkAnswer struct {
	Errors bool `json:"errors"`
	Items  []map[string]struct {
		ID     string          `json:"_id"`
		Status int             `json:"status"`
		Error  json.RawMessage `json:"error"`
	} `json:"items"`
}

// errBusy marks a bulk request the node turned away for now (HTTP 429: a
// full write queue or its memory circuit breaker).
var errBusy = errors.New("the node is busy")

// send loads one bulk body, sending it again while the node says it is
// busy: every action indexes a document by _id, so a repeat is harmless.
func (b *bulker) send(ctx context.Context, body []byte) error {
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := b.sendOnce(ctx, body)
		if !errors.Is(err, errBusy) || attempt == 10 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 8*time.Second)
	}
}

func (b *bulker) sendOnce(ctx context.Context, body []byte) error {
	var ans bulkAnswer
	if err := b.cl.do(ctx, http.MethodPost, "/"+esc(b.index)+"/_bulk?filter_path=errors,items.*.error,items.*._id,items.*.status", bytes.NewReader(body), &ans); err != nil {
		if statusOf(err) == http.StatusTooManyRequests {
			return fmt.Errorf("bulk load into %s: %w: %w", b.index, errBusy, err)
		}
		return fmt.Errorf("bulk load into %s: %w", b.index, err)
	}
	if ans.Errors {
		var busy error
		for _, it := range ans.Items {
			for _, r := range it {
				switch {
				case len(r.Error) > 0 && r.Status == http.StatusTooManyRequests:
					busy = fmt.Errorf("bulk load into %s: document %q: %w: %s", b.index, r.ID, errBusy, r.Error)
				case len(r.Error) > 0:
					return fmt.Errorf("bulk load into %s: document %q: HTTP %d: %s", b.index, r.ID, r.Status, r.Error)
				}
			}
		}
		if busy != nil {
			return busy
		}
		return fmt.Errorf("bulk load into %s: the server reported errors", b.index)
	}
	b.p.Emit(driver.Event{Component: b.compo, Phase: driver.PhaseRestore, Rows: int64(len(ans.Items))})
	return nil
}

func (b *bulker) add(id, routing string, source json.RawMessage) error {
	action := map[string]any{"_id": id}
	if routing != "" {
		action["routing"] = routing
	}
	line, err := json.Marshal(map[string]any{"index": action})
	if err != nil {
		return err
	}
	b.buf.Write(line)
	b.buf.WriteByte('\n')
	b.buf.Write(source)
	b.buf.WriteByte('\n')
	b.n++
	if b.buf.Len() >= b.size {
		return b.flush()
	}
	return nil
}

func (b *bulker) flush() error {
	if b.buf.Len() == 0 {
		return nil
	}
	body := bytes.Clone(b.buf.Bytes())
	b.buf.Reset()
	select {
	case b.ch <- body:
		return nil
	case <-b.gctx.Done():
		if err := b.abort(); err != nil {
			return err
		}
		return context.Cause(b.gctx)
	}
}

// close sends what is left and waits for every request.
func (b *bulker) close() error {
	err := b.flush()
	b.stopFeeding()
	werr := b.g.Wait()
	b.cancel()
	return errors.Join(err, werr)
}

// abort stops the workers and returns their first error.
func (b *bulker) abort() error {
	b.cancel()
	b.stopFeeding()
	return b.g.Wait()
}

func (b *bulker) stopFeeding() {
	if !b.closed {
		b.closed = true
		close(b.ch)
	}
}
