package postgres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

// Data loading of a custom archive into a fresh database.
const (
	// DataLoadParallel: pg_restore restores the schema
	// (pre-data) and, with -j, indexes and constraints (post-data); the
	// data section in between is loaded by the driver over Jobs
	// connections, splitting each table's COPY rows among them. pg_restore
	// -j loads one table with one process, so a database that is mostly
	// one big table would load on one core.
	DataLoadParallel = "parallel"
	// DataLoadPgRestore: the archive is downloaded to a temp file, then
	// pg_restore -j restores everything from it.
	DataLoadPgRestore = "pg_restore"
	// DataLoadStream: one pg_restore restores the schema and the data
	// while the archive downloads, then pg_restore -j builds the indexes
	// and constraints from a copy kept on disk.
	DataLoadStream = "stream"
	// DefaultDataLoad is stream: download and restore overlap, and no
	// time goes to staging the whole archive before pg_restore may start
	// (~2 s per GiB). Its data load is one process, so a database of many
	// equally big tables may load faster with pg_restore (-j over tables);
	// parallel costs more CPU in total (~3.5 s per GiB, pg_restore's
	// script through a pipe and this process) and was not faster on a
	// busy 2-CPU machine (BenchmarkDataLoad).
	DefaultDataLoad = DataLoadStream
)

// copyBatch is the size of the runs of whole COPY rows handed to one
// connection: large enough that channel hand-offs cost nothing against the
// server's parsing, small enough that connections share a table evenly and
// memory stays bounded (about 3 batches per connection in flight).
const copyBatch = 1 << 20

// readBuffer is the buffer pg_restore's output is read through.
const readBuffer = 1 << 20

// stmtFlush bounds the statements (large-object writes, mostly) held
// before they are sent.
const stmtFlush = 4 << 20

// parallelLoad says whether the data section is loaded by the driver
// over several connections (see DataLoadParallel).
func parallelLoad(t driver.Target, strategy string) bool {
	return strategy == StrategySwap && Jobs(t) > 1 && t.Option(OptDataLoad, DefaultDataLoad) == DataLoadParallel
}

// pgRestoreParallel restores archive into the fresh database db: pg_restore
// the pre-data section, load the data section over Jobs connections, then
// pg_restore -j the post-data section.
func (d *Driver) pgRestoreParallel(ctx context.Context, env []string, e endpoint, archive, db string, t driver.Target) error {
	bin, err := tool("pg_restore", t.Options)
	if err != nil {
		return err
	}
	base := append([]string{"--exit-on-error", "--no-password"}, restoreFlags(t)...)
	run := func(section string, args ...string) error {
		args = append(append(append([]string{}, base...), args...), "--section="+section, "-d", db, archive)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		stderr := &driver.Tail{}
		cmd.Stderr, cmd.Stdout = stderr, stderr
		return driver.ToolError(ctx, "pg_restore --section="+section, cmd.Run(), stderr)
	}
	if err := run("pre-data"); err != nil {
		return err
	}
	params, err := restoreParams(t)
	if err != nil {
		return err
	}
	n := Jobs(t)
	conns := make([]*pgx.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close(context.WithoutCancel(ctx))
		}
	}()
	for range n {
		c, err := e.connectWith(ctx, db, params)
		if err != nil {
			return fmt.Errorf("load data: %w", err)
		}
		conns = append(conns, c)
	}
	script := exec.CommandContext(ctx, bin, append(append([]string{}, base...), "--section=data", "-f", "-", archive)...)
	script.Env = env
	if err := loadScript(ctx, script, conns); err != nil {
		return err
	}
	return run("post-data", "-j", strconv.Itoa(n))
}

// loadScript runs cmd, a pg_restore writing the data section as an SQL
// script on stdout, and loads the script over conns: session settings
// (SET, set_config) on every connection; the rows of each COPY block in
// batches of whole lines, to whichever connection is free (a block of one
// batch goes to one connection, a larger one to all, each running the same
// COPY); other statements (setval, large objects) in order on the first
// connection, once the COPYs before them have finished.
func loadScript(ctx context.Context, cmd *exec.Cmd, conns []*pgx.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdout, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer stdout.Close()
	// pg_restore writes in small pieces; a larger pipe lets each read take
	// many of them (fewer reads and wake-ups on a busy node). Best effort.
	driver.GrowPipe(w, readBuffer)
	cmd.Stdout = w
	stderr := &driver.Tail{}
	cmd.Stderr = stderr
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start pg_restore: %w", err)
	}
	l := &loader{ctx: ctx, cancel: cancel, conns: conns, jobs: make(chan copyJob)}
	var workers sync.WaitGroup
	for i := range conns {
		workers.Go(func() { l.work(conns[i]) })
	}
	perr := l.parse(bufio.NewReaderSize(stdout, readBuffer))
	if perr != nil {
		cancel()
		// Nobody reads its output any more.
		_ = cmd.Process.Kill()
	} else {
		perr = l.barrier()
	}
	close(l.jobs)
	workers.Wait()
	werr := cmd.Wait()
	switch {
	case l.err != nil:
		return l.err
	case perr != nil && !errors.Is(perr, errTruncated):
		return perr
	case werr != nil:
		return driver.ToolError(ctx, "pg_restore --section=data", werr, stderr)
	}
	return perr
}

var errTruncated = errors.New("the data script ended inside a COPY block")

// copyJob is one connection's part of a COPY block: it runs sql, reading
// rows from batches until the channel is closed.
type copyJob struct {
	sql, table string
	batches    <-chan []byte
}

type loader struct {
	ctx    context.Context
	cancel context.CancelFunc
	conns  []*pgx.Conn
	jobs   chan copyJob
	// running counts COPY jobs handed out and not yet finished.
	running sync.WaitGroup
	mu      sync.Mutex
	err     error // the first failure of a worker
}

func (l *loader) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.cancel()
}

func (l *loader) work(c *pgx.Conn) {
	for j := range l.jobs {
		if l.ctx.Err() == nil {
			if _, err := c.PgConn().CopyFrom(l.ctx, &batchReader{ctx: l.ctx, ch: j.batches}, j.sql); err != nil {
				l.fail(fmt.Errorf("load data: COPY %s: %w", j.table, err))
			}
		}
		l.running.Done()
	}
}

// barrier waits until every COPY handed out has finished; the connections
// are then idle and the parser may use them.
func (l *loader) barrier() error {
	l.running.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	return l.ctx.Err()
}

func (l *loader) send(j copyJob) error {
	l.running.Add(1)
	select {
	case l.jobs <- j:
		return nil
	case <-l.ctx.Done():
		l.running.Done()
		return l.ctx.Err()
	}
}

// exec runs statements (a simple query, possibly several) on the first
// connection, or on all when they are session settings.
func (l *loader) exec(sql string, all bool) error {
	if strings.TrimSpace(sql) == "" {
		return nil
	}
	if err := l.barrier(); err != nil {
		return err
	}
	conns := l.conns[:1]
	if all {
		conns = l.conns
	}
	for _, c := range conns {
		if _, err := c.PgConn().Exec(l.ctx, sql).ReadAll(); err != nil {
			return fmt.Errorf("load data: %s: %w", firstLine(sql), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// parse reads the script and hands its parts out; it returns at the end of
// the script or the first error.
func (l *loader) parse(r *bufio.Reader) error {
	var stmts strings.Builder // statements for the first connection
	session := false          // stmts holds session settings (for all connections)
	flush := func() error {
		err := l.exec(stmts.String(), session)
		stmts.Reset()
		return err
	}
	for {
		line, err := readLine(r)
		if err == io.EOF && len(line) == 0 {
			return flush()
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read pg_restore output: %w", err)
		}
		s := string(bytes.TrimRight(line, "\r\n"))
		complete := stmts.Len() == 0 || strings.HasSuffix(strings.TrimRight(stmts.String(), " \t\r\n"), ";")
		switch {
		case complete && (s == "" || strings.HasPrefix(s, "--")):
			continue
		case complete && (strings.HasPrefix(s, `\restrict `) || strings.HasPrefix(s, `\unrestrict `)):
			// psql's guard against a tampered script; it has no effect here.
			continue
		case complete && strings.HasPrefix(s, `\`):
			return fmt.Errorf("load data: unexpected psql command in pg_restore output: %s", firstLine(s))
		case complete && strings.HasPrefix(s, "COPY ") && strings.HasSuffix(s, " FROM stdin;"):
			if err := flush(); err != nil {
				return err
			}
			if err := l.copyBlock(r, s); err != nil {
				return err
			}
			continue
		}
		isSession := complete && (strings.HasPrefix(s, "SET ") || strings.HasPrefix(s, "SELECT pg_catalog.set_config(")) && strings.HasSuffix(s, ";")
		if complete && stmts.Len() > 0 && (isSession != session || stmts.Len() >= stmtFlush) {
			if err := flush(); err != nil {
				return err
			}
		}
		if stmts.Len() == 0 {
			session = isSession
		}
		stmts.WriteString(s)
		stmts.WriteByte('\n')
		if err == io.EOF {
			return flush()
		}
	}
}

// copyBlock hands out the rows of the COPY block started by sql, up to the
// line `\.`.
func (l *loader) copyBlock(r *bufio.Reader, sql string) error {
	table := strings.TrimPrefix(sql, "COPY ")
	if i := strings.IndexAny(table, " ("); i >= 0 {
		table = table[:i]
	}
	var ch chan []byte
	batch := make([]byte, 0, copyBatch+readBuffer)
	for {
		var end bool
		var err error
		batch, end, err = appendRows(r, batch)
		if err == io.EOF {
			// pg_restore ends every block with a line `\.`.
			return fmt.Errorf("load data: COPY %s: %w", table, errTruncated)
		}
		if err != nil {
			return fmt.Errorf("read pg_restore output: %w", err)
		}
		if !end && len(batch) < copyBatch {
			continue
		}
		if ch == nil {
			if end {
				// The whole block in one batch: one connection loads it,
				// others may load the next tables meanwhile.
				one := make(chan []byte, 1)
				one <- batch
				close(one)
				return l.send(copyJob{sql: sql, table: table, batches: one})
			}
			ch = make(chan []byte, 2*len(l.conns))
			for range l.conns {
				if err := l.send(copyJob{sql: sql, table: table, batches: ch}); err != nil {
					return err
				}
			}
		}
		if len(batch) > 0 {
			select {
			case ch <- batch:
			case <-l.ctx.Done():
				return l.ctx.Err()
			}
		}
		if end {
			close(ch)
			return nil
		}
		batch = make([]byte, 0, copyBatch+readBuffer)
	}
}

var (
	endOfData = []byte("\\.\n")
	rowsEnd   = []byte("\n\\.\n")
)

// appendRows appends to batch the whole rows r holds buffered (reading
// when it holds none), up to the line `\.` that ends the block. Rows are
// taken in runs rather than line by line: a line is a row (newlines in
// values are escaped), and `\.` alone on a line only ever ends the data.
func appendRows(r *bufio.Reader, batch []byte) ([]byte, bool, error) {
	if r.Buffered() == 0 {
		if _, err := r.Peek(1); err != nil {
			return batch, false, err
		}
	}
	data, _ := r.Peek(r.Buffered())
	if bytes.HasPrefix(data, endOfData) {
		_, _ = r.Discard(len(endOfData))
		return batch, true, nil
	}
	if i := bytes.Index(data, rowsEnd); i >= 0 {
		batch = append(batch, data[:i+1]...)
		_, _ = r.Discard(i + 1 + len(endOfData))
		return batch, true, nil
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		batch = append(batch, data[:i+1]...)
		_, _ = r.Discard(i + 1)
		return batch, false, nil
	}
	// No whole line buffered: a row longer than the buffer, or the rest
	// of a line still to come.
	line, err := readLine(r)
	if err != nil {
		return batch, false, err
	}
	if bytes.Equal(line, endOfData) {
		return batch, true, nil
	}
	return append(batch, line...), false, nil
}

// readLine returns the next line including its newline (a line longer
// than the reader's buffer is assembled); at the end of the input the last
// line without a newline and io.EOF.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	long := append([]byte(nil), line...)
	for err == bufio.ErrBufferFull {
		line, err = r.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}

// batchReader is what one connection's COPY reads: the batches of a block
// as they come, io.EOF when the block is complete, the context's error
// when the load is aborted (pgconn then fails the COPY, so a block never
// commits short).
type batchReader struct {
	ctx context.Context
	ch  <-chan []byte
	cur []byte
}

func (r *batchReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		select {
		case b, ok := <-r.ch:
			if !ok {
				return 0, io.EOF
			}
			r.cur = b
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
