// Package redis captures every key of a Redis logical database with SCAN +
// DUMP + PTTL (pipelined) into a framed stream, and restores it into a spare
// logical database with pipelined RESTORE ... REPLACE, then SWAPDB, so
// clients switch to the new data in one step.
package redis

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Format is the framed key dump this driver writes.
const Format = "redis-dump"

// MarkerKey is the reserved key holding the marker; never captured.
const MarkerKey = "unikube:state"

// PreviousKey marks data a swap moved out of the target into the spare db,
// so the next apply knows the spare holds only what unikube put there (the
// app's data from before the first apply has no marker of its own).
const PreviousKey = "unikube:previous"

// Options.
const (
	// OptSpareDB is the logical database restored into before SWAPDB
	// (default: the highest one that is not the target). After an apply it
	// holds the previous data; it must be empty or have been ours.
	OptSpareDB = "spare_db"
	// OptDB selects the database of an .rdb file to capture (default 0).
	OptDB = "db"
	// OptRedisServer is the redis-server binary used to read .rdb files.
	OptRedisServer = "redis_server"
)

const batchKeys = 512

// Driver is the Redis driver.
type Driver struct{}

// New returns the Redis driver.
func New() *Driver { return &Driver{} }

// Kind implements driver.Driver.
func (*Driver) Kind() statepkg.Kind { return statepkg.KindRedis }

// TargetOptions implements driver.OptionLister.
func (*Driver) TargetOptions() []string { return []string{OptSpareDB} }

func client(raw string) (*goredis.Client, *goredis.Options, error) {
	opts, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("want a redis://[:password@]host:port/db URL, got %s: %w", driver.Redact(raw), err)
	}
	return goredis.NewClient(opts), opts, nil
}

// Stream framing: the magic line, then records. 'K' key, 'E' end with the
// key count, so a truncated stream is detected.
const (
	recKey = 'K'
	recEnd = 'E'
)

// frameWriter keeps the first write error and skips every write after it,
// so a record's pieces need no check each; key and end report it.
type frameWriter struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	n   int64
	err error
	// types counts the keys written by Redis type (string, hash, ...).
	types map[string]int64
}

func (f *frameWriter) write(p []byte) {
	if f.err == nil {
		_, f.err = f.w.Write(p)
	}
}

func (f *frameWriter) writeString(s string) {
	if f.err == nil {
		_, f.err = f.w.WriteString(s)
	}
}

func (f *frameWriter) uvarint(v uint64) {
	n := binary.PutUvarint(f.buf[:], v)
	f.write(f.buf[:n])
}

func (f *frameWriter) key(key string, pttl int64, value string) error {
	f.write([]byte{recKey})
	f.uvarint(uint64(len(key)))
	f.writeString(key)
	f.uvarint(uint64(max(pttl, 0)))
	f.uvarint(uint64(len(value)))
	f.writeString(value)
	f.n++
	return f.err
}

func (f *frameWriter) end() error {
	f.write([]byte{recEnd})
	f.uvarint(uint64(f.n))
	if f.err != nil {
		return f.err
	}
	return f.w.Flush()
}

// Capture implements driver.Driver. A live database (redis:// URL) is read
// with SCAN + DUMP + PTTL; an .rdb file is loaded by a temporary
// redis-server on a unix socket and read the same way.
func (d *Driver) Capture(ctx context.Context, src driver.Source, w io.Writer, p driver.Progress) (driver.CaptureResult, error) {
	name := src.Option("component", "redis")
	url := src.URL
	meta := map[string]string{}
	if path, ok := driver.LocalPath(url); ok {
		u, stop, err := serveRDB(ctx, path, src)
		if err != nil {
			return driver.CaptureResult{}, err
		}
		defer stop()
		url = u
		meta["source"] = "rdb"
	}
	cli, copts, err := client(url)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	defer cli.Close()
	if info, err := cli.Info(ctx, "server").Result(); err == nil {
		meta["redisVersion"] = infoField(info, "redis_version")
	}
	fw := &frameWriter{w: bufio.NewWriterSize(w, 1<<20), types: map[string]int64{}}
	fw.writeString(driver.RedisDumpMagic)
	var cursor uint64
	for {
		keys, next, err := cli.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return driver.CaptureResult{}, fmt.Errorf("redis capture: scan: %w", err)
		}
		for len(keys) > 0 {
			batch := keys[:min(len(keys), batchKeys)]
			keys = keys[len(batch):]
			if err := dumpBatch(ctx, cli, batch, fw, p, name); err != nil {
				return driver.CaptureResult{}, err
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if err := fw.end(); err != nil {
		return driver.CaptureResult{}, fmt.Errorf("redis capture: %w", err)
	}
	meta["keys"] = strconv.FormatInt(fw.n, 10)
	// Keys per type, for helm state diff.
	sum := statepkg.Summary{Keys: []statepkg.KeyCount{}}
	for typ, n := range fw.types {
		sum.Keys = append(sum.Keys, statepkg.KeyCount{DB: copts.DB, Type: typ, Count: n})
	}
	slices.SortFunc(sum.Keys, func(a, b statepkg.KeyCount) int { return strings.Compare(a.Type, b.Type) })
	if meta, err = statepkg.SetSummary(meta, sum); err != nil {
		return driver.CaptureResult{}, err
	}
	return driver.CaptureResult{Format: Format, Meta: meta}, nil
}

func dumpBatch(ctx context.Context, cli *goredis.Client, keys []string, fw *frameWriter, p driver.Progress, name string) error {
	pipe := cli.Pipeline()
	dumps := make([]*goredis.StringCmd, len(keys))
	ttls := make([]*goredis.DurationCmd, len(keys))
	types := make([]*goredis.StatusCmd, len(keys))
	for i, k := range keys {
		dumps[i] = pipe.Dump(ctx, k)
		ttls[i] = pipe.PTTL(ctx, k)
		types[i] = pipe.Type(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis capture: dump: %w", err)
	}
	var n, bytes int64
	for i, k := range keys {
		if k == MarkerKey || k == PreviousKey {
			continue
		}
		v, err := dumps[i].Result()
		if errors.Is(err, goredis.Nil) {
			continue // expired or deleted since SCAN
		}
		if err != nil {
			return fmt.Errorf("redis capture: dump %q: %w", k, err)
		}
		ttl := ttls[i].Val()
		pttl := int64(0)
		if ttl > 0 {
			pttl = max(ttl.Milliseconds(), 1)
		}
		if err := fw.key(k, pttl, v); err != nil {
			return fmt.Errorf("redis capture: %w", err)
		}
		fw.types[types[i].Val()]++
		n++
		bytes += int64(len(v))
	}
	p.Emit(driver.Event{Component: name, Phase: driver.PhaseCapture, Rows: n, Bytes: bytes})
	return nil
}

func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// serveRDB starts redis-server on a copy of an .rdb file, listening only on
// a unix socket in a temp dir, and returns its URL.
func serveRDB(ctx context.Context, path string, src driver.Source) (string, func(), error) {
	bin := src.Option(OptRedisServer, "redis-server")
	bin, err := exec.LookPath(bin)
	if err != nil {
		return "", nil, fmt.Errorf("reading an .rdb file needs redis-server (install redis-server or set option %s): %w", OptRedisServer, err)
	}
	dir, err := os.MkdirTemp("", "unikube-rdb-*")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := os.Link(path, filepath.Join(dir, "dump.rdb")); err != nil {
		if err := copyFile(path, filepath.Join(dir, "dump.rdb")); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.CommandContext(ctx, bin, "--port", "0", "--unixsocket", sock, "--dir", dir, "--dbfilename", "dump.rdb",
		"--save", "", "--appendonly", "no", "--databases", "64", "--"+sanitizeConfig, "yes")
	stderr := &driver.Tail{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("start redis-server for %s: %w", path, err)
	}
	// A server that cannot load the file (damaged, truncated) exits at
	// once; waiting on it tells that without sitting out the deadline.
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
		cleanup()
	}
	db := src.Option(OptDB, "0")
	u := "unix://" + sock + "?db=" + url.QueryEscape(db)
	cli, _, err := client(u)
	if err != nil {
		stop()
		return "", nil, err
	}
	defer cli.Close()
	for deadline := time.Now().Add(60 * time.Second); ; {
		err := cli.Ping(ctx).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", nil, fmt.Errorf("redis-server could not load %s: %v: %s", path, err, stderr.String())
		}
		select {
		case <-exited:
			stop()
			return "", nil, fmt.Errorf("redis-server could not load %s (damaged or truncated? dump it again): %s", path, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return u, stop, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Marker is the JSON value of the reserved key.
type Marker struct {
	State           string    `json:"state,omitempty"`
	Digest          string    `json:"digest,omitempty"`
	Component       string    `json:"component"`
	ComponentDigest string    `json:"componentDigest"`
	AppliedAt       time.Time `json:"appliedAt"`
}

// ReadMarker returns the marker of the database a redis:// URL names.
func ReadMarker(ctx context.Context, raw string) (*Marker, error) {
	cli, _, err := client(raw)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	return readMarker(ctx, cli)
}

func readMarker(ctx context.Context, cli *goredis.Client) (*Marker, error) {
	v, err := cli.Get(ctx, MarkerKey).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Marker
	if json.Unmarshal([]byte(v), &m) != nil {
		// A marker we cannot parse proves nothing was applied: treat it as
		// absent so the plan replaces the data instead of skipping it.
		return nil, nil //nolint:nilerr // unparsable marker = no marker, by design
	}
	return &m, nil
}

// spareDB picks the database restored into before the swap.
func spareDB(ctx context.Context, cli *goredis.Client, target int, t driver.Target) (int, error) {
	if s := t.Option(OptSpareDB, ""); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n == target {
			return 0, fmt.Errorf("option %s=%q: want a database number other than the target's %d", OptSpareDB, s, target)
		}
		return n, nil
	}
	dbs := 16
	if v, err := cli.ConfigGet(ctx, "databases").Result(); err == nil {
		if n, err := strconv.Atoi(v["databases"]); err == nil && n > 1 {
			dbs = n
		}
	}
	if target == dbs-1 {
		return dbs - 2, nil
	}
	return dbs - 1, nil
}

// Plan implements driver.Driver.
func (d *Driver) Plan(ctx context.Context, c statepkg.Component, t driver.Target) (driver.ComponentPlan, error) {
	pl := driver.ComponentPlan{Component: c.Name, Kind: c.Kind, Target: driver.Redact(t.URL), Strategy: "swapdb", Atomic: true, Bytes: c.Size}
	if c.Format != Format {
		return pl, fmt.Errorf("format %q: the redis driver restores %s", c.Format, Format)
	}
	cli, opts, err := client(t.URL)
	if err != nil {
		return pl, err
	}
	defer cli.Close()
	n, err := cli.DBSize(ctx).Result()
	if err != nil {
		return pl, fmt.Errorf("connect to %s: %w", pl.Target, err)
	}
	spare, err := spareDB(ctx, cli, opts.DB, t)
	if err != nil {
		return pl, err
	}
	if err := checkSpare(ctx, opts, spare); err != nil {
		return pl, err
	}
	m, err := readMarker(ctx, cli)
	if err != nil {
		return pl, err
	}
	switch {
	case m != nil && m.ComponentDigest == c.Digest && !t.Force:
		pl.Action, pl.Reason, pl.Bytes, pl.Current = driver.ActionSkip, "already applied", 0, m.ComponentDigest
	case n == 0:
		pl.Action = driver.ActionCreate
	default:
		pl.Action = driver.ActionReplace
		if m != nil {
			pl.Current = m.ComponentDigest
		}
	}
	if w := sanitizeSupport(ctx, cli); w != "" && pl.Action != driver.ActionSkip {
		pl.Warnings = append(pl.Warnings, w)
	}
	pl.Reason = strings.TrimSpace(pl.Reason + fmt.Sprintf(" (via spare db %d)", spare))
	return pl, nil
}

// checkSpare refuses a spare database holding data unikube did not put there.
func checkSpare(ctx context.Context, opts *goredis.Options, spare int) error {
	o := *opts
	o.DB = spare
	cli := goredis.NewClient(&o)
	defer cli.Close()
	n, err := cli.DBSize(ctx).Result()
	if err != nil {
		return fmt.Errorf("spare db %d: %w", spare, err)
	}
	if n == 0 {
		return nil
	}
	if ex, err := cli.Exists(ctx, MarkerKey, PreviousKey).Result(); err == nil && ex >= 1 {
		return nil
	}
	return fmt.Errorf("spare db %d holds %d keys unikube did not write; set option %s to an empty database", spare, n, OptSpareDB)
}

// Restore implements driver.Driver.
func (d *Driver) Restore(ctx context.Context, c statepkg.Component, src driver.ChunkSource, t driver.Target, p driver.Progress) (res driver.ComponentResult, err error) {
	start := time.Now()
	res = driver.ComponentResult{Component: c.Name, Kind: c.Kind, Strategy: "swapdb"}
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
	_, opts, err := client(t.URL)
	if err != nil {
		return fail(err)
	}
	main := goredis.NewClient(opts)
	defer main.Close()
	spareN, err := spareDB(ctx, main, opts.DB, t)
	if err != nil {
		return fail(err)
	}
	so := *opts
	so.DB = spareN
	spare := goredis.NewClient(&so)
	defer spare.Close()

	phase = driver.PhaseRestore
	// RESTORE checks a payload's checksum only; with sanitize-dump-payload
	// the server also checks its structure, so a crafted payload cannot
	// corrupt server memory. Turned on for the restore where CONFIG is
	// allowed (the plan warns where it is not), then set back.
	if prev, ok := sanitizePayloads(ctx, main); ok {
		defer func() { _ = main.ConfigSet(context.WithoutCancel(ctx), sanitizeConfig, prev).Err() }()
	}
	if err := spare.FlushDB(ctx).Err(); err != nil {
		return fail(fmt.Errorf("flush spare db %d: %w", spareN, err))
	}
	defer func() {
		if err != nil {
			// The spare held only what we were restoring.
			_ = spare.FlushDB(context.WithoutCancel(ctx)).Err()
		}
	}()
	r, err := src.Open(ctx)
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	pr := &driver.ProgressReader{R: r, P: p, Component: c.Name, Phase: driver.PhaseRestore}
	keys, err := restoreStream(ctx, spare, bufio.NewReaderSize(pr, 1<<20), p, c.Name)
	pr.Flush()
	res.Bytes, res.Rows = pr.N, keys
	if err != nil {
		return fail(err)
	}
	m := Marker{State: t.State, Digest: t.Digest, Component: c.Name, ComponentDigest: c.Digest, AppliedAt: time.Now().UTC()}
	b, _ := json.Marshal(m)
	if err := spare.Set(ctx, MarkerKey, b, 0).Err(); err != nil {
		return fail(fmt.Errorf("write marker: %w", err))
	}
	phase = driver.PhaseSwap
	if err := main.Do(ctx, "SWAPDB", opts.DB, spareN).Err(); err != nil {
		return fail(fmt.Errorf("SWAPDB %d %d (needs Redis 4 or newer, not a cluster): %w", opts.DB, spareN, err))
	}
	res.Previous = fmt.Sprintf("db %d", spareN)
	// Best effort: without it the next apply refuses the spare and names
	// the option to set, which loses nothing.
	_ = spare.Set(context.WithoutCancel(ctx), PreviousKey, time.Now().UTC().Format(time.RFC3339), 0).Err()
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDone})
	return res, nil
}

// sanitizeConfig is the Redis 6.2+ setting that makes RESTORE check the
// structure of payloads ("yes"), not only their checksum.
const sanitizeConfig = "sanitize-dump-payload"

// sanitizeSupport says whether payloads will be sanitised: "" when they
// will, else why not.
func sanitizeSupport(ctx context.Context, cli *goredis.Client) string {
	v, err := cli.ConfigGet(ctx, sanitizeConfig).Result()
	if err != nil {
		return fmt.Sprintf("cannot read %s (%v): RESTORE payloads are checked by their checksum only", sanitizeConfig, err)
	}
	if _, ok := v[sanitizeConfig]; !ok {
		return fmt.Sprintf("the server has no %s (Redis before 6.2): RESTORE payloads are checked by their checksum only", sanitizeConfig)
	}
	return ""
}

// sanitizePayloads turns sanitize-dump-payload on and returns its previous
// value and true when it changed it.
func sanitizePayloads(ctx context.Context, cli *goredis.Client) (string, bool) {
	v, err := cli.ConfigGet(ctx, sanitizeConfig).Result()
	prev, ok := v[sanitizeConfig]
	if err != nil || !ok || prev == "yes" {
		return "", false
	}
	if err := cli.ConfigSet(ctx, sanitizeConfig, "yes").Err(); err != nil {
		return "", false
	}
	return prev, true
}

// restoreStream reads the framed stream and RESTOREs keys in pipelined
// batches.
func restoreStream(ctx context.Context, cli *goredis.Client, r *bufio.Reader, p driver.Progress, name string) (int64, error) {
	magic := make([]byte, len(driver.RedisDumpMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != driver.RedisDumpMagic {
		return 0, fmt.Errorf("not a redis-dump stream")
	}
	var n int64
	pipe := cli.Pipeline()
	pending, pendingBytes := 0, 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			for _, c := range cmds {
				if c.Err() != nil {
					return fmt.Errorf("RESTORE %v: %w", c.Args()[1], c.Err())
				}
			}
			return err
		}
		p.Emit(driver.Event{Component: name, Phase: driver.PhaseRestore, Rows: int64(pending)})
		pending, pendingBytes = 0, 0
		return nil
	}
	for {
		typ, err := r.ReadByte()
		if err != nil {
			return n, fmt.Errorf("stream ended without its end record: %w", noEOF(err))
		}
		switch typ {
		case recEnd:
			want, err := binary.ReadUvarint(r)
			if err != nil {
				return n, noEOF(err)
			}
			if err := flush(); err != nil {
				return n, err
			}
			if uint64(n) != want {
				return n, fmt.Errorf("stream holds %d keys, its end record says %d", n, want)
			}
			return n, nil
		case recKey:
			key, err := readString(r)
			if err != nil {
				return n, err
			}
			pttl, err := binary.ReadUvarint(r)
			if err != nil {
				return n, noEOF(err)
			}
			val, err := readString(r)
			if err != nil {
				return n, err
			}
			pipe.RestoreReplace(ctx, key, time.Duration(pttl)*time.Millisecond, val)
			n++
			pending++
			pendingBytes += len(val)
			if pending >= 1000 || pendingBytes >= 8<<20 {
				if err := flush(); err != nil {
					return n, err
				}
			}
		default:
			return n, fmt.Errorf("bad record type %q at key %d", typ, n)
		}
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

const maxString = 512 << 20 // Redis's own bulk string limit

func readString(r *bufio.Reader) (string, error) {
	l, err := binary.ReadUvarint(r)
	if err != nil {
		return "", noEOF(err)
	}
	if l > maxString {
		return "", fmt.Errorf("record claims a %d-byte string, beyond Redis's 512 MiB limit", l)
	}
	if l <= readStep {
		b := make([]byte, l)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", noEOF(err)
		}
		return string(b), nil
	}
	// A record's length is only a claim: memory grows with the bytes that
	// actually arrive, so a damaged or hostile stream claiming 512 MiB
	// costs no more than what it holds.
	var sb strings.Builder
	sb.Grow(readStep)
	n, err := io.CopyN(&sb, r, int64(l))
	if err != nil {
		return "", fmt.Errorf("record claims a %d-byte string, the stream holds %d: %w", l, n, noEOF(err))
	}
	return sb.String(), nil
}

// readStep is the largest string read at its claimed length at once.
const readStep = 1 << 20
