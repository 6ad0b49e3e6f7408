// Package mysql captures a MySQL/MariaDB schema with mysqldump/mariadb-dump
// and restores it into a fresh schema, then swaps every table into place
// with one RENAME TABLE statement (atomic in MySQL and MariaDB), keeping the
// previous tables in <db>_unikube_prev. Views, triggers and routines are
// re-created right after the swap; events are moved (ALTER EVENT ... RENAME
// TO): the old ones to <db>_unikube_prev, disabled, just before the swap,
// the restored ones into the target right after it.
package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/sqlfilter"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Format is a mysqldump SQL script.
const Format = "sql"

// Options.
const (
	OptBinDir = "mysql_bin" // directory holding mariadb/mysql and mariadb-dump/mysqldump
)

const (
	newSuffix  = "_unikube_new_"
	prevSuffix = "_unikube_prev"
	// MarkerTable records what was applied inside the restored schema.
	MarkerTable = "unikube_state"
)

// Driver is the MySQL/MariaDB driver.
type Driver struct{}

// New returns the MySQL/MariaDB driver.
func New() *Driver { return &Driver{} }

// Kind implements driver.Driver.
func (*Driver) Kind() statepkg.Kind { return statepkg.KindMySQL }

// TargetOptions implements driver.OptionLister.
func (*Driver) TargetOptions() []string {
	return []string{OptBinDir, OptDrift, driver.OptKeepPrevious}
}

type endpoint struct {
	user, password, host, port, db string
}

func parseEndpoint(raw string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "mysql" && u.Scheme != "mariadb") {
		return endpoint{}, fmt.Errorf("want a mysql://user:password@host:port/db URL, got %s", driver.Redact(raw))
	}
	e := endpoint{host: u.Hostname(), port: u.Port(), db: strings.TrimPrefix(u.Path, "/")}
	if e.port == "" {
		e.port = "3306"
	}
	if u.User != nil {
		e.user = u.User.Username()
		e.password, _ = u.User.Password()
	}
	if e.db == "" {
		return e, fmt.Errorf("mysql URL %s names no database", driver.Redact(raw))
	}
	return e, nil
}

func (e endpoint) open(db string) (*sql.DB, error) {
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net = e.user, e.password, "tcp"
	cfg.Addr = net.JoinHostPort(e.host, e.port)
	cfg.DBName = db
	cfg.ParseTime = true
	cfg.Params = map[string]string{"foreign_key_checks": "0"}
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// optionFile writes the credentials to a 0600 temp file for the client
// tools' --defaults-extra-file, so the password never reaches a command line.
func (e endpoint) optionFile() (string, func(), error) {
	f, err := os.CreateTemp("", "unikube-my-*.cnf")
	if err != nil {
		return "", nil, err
	}
	q := func(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }
	fmt.Fprintf(f, "[client]\nuser=%s\npassword=%s\nhost=%s\nport=%s\nprotocol=tcp\n", q(e.user), q(e.password), q(e.host), e.port)
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", nil, err
	}
	return f.Name(), func() { os.Remove(f.Name()) }, nil
}

func qi(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func stagingName(db, suffix string) string {
	return driver.BoundedName(db, suffix, 64)
}

// tool finds the first of names in option mysql_bin or PATH.
func tool(opts map[string]string, names ...string) (string, error) {
	for _, n := range names {
		if dir := opts[OptBinDir]; dir != "" {
			if p := filepath.Join(dir, n); fileExists(p) {
				return p, nil
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s found: install the MariaDB/MySQL client or set option %s", strings.Join(names, ", "), OptBinDir)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Capture implements driver.Driver.
func (d *Driver) Capture(ctx context.Context, src driver.Source, w io.Writer, p driver.Progress) (driver.CaptureResult, error) {
	name := src.Option("component", "mysql")
	if path, ok := driver.LocalPath(src.URL); ok {
		f, err := os.Open(path)
		if err != nil {
			return driver.CaptureResult{}, fmt.Errorf("mysql capture: %w", err)
		}
		defer f.Close()
		// A script is packaged only if a restore would run it (the same
		// filter), so hostile or truncated SQL is never captured.
		pr := &driver.ProgressReader{R: f, P: p, Component: name, Phase: driver.PhaseCapture}
		sum := newSummarizer()
		_, err = io.CopyBuffer(w, io.TeeReader(sqlfilter.MySQL(pr, sqlfilter.MySQLOptions{}), sum), make([]byte, 1<<20))
		pr.Flush()
		if err != nil {
			if sqlfilter.IsRefused(err) {
				return driver.CaptureResult{}, fmt.Errorf("mysql capture of %s: the SQL script is refused: %w", path, err)
			}
			return driver.CaptureResult{}, fmt.Errorf("mysql capture: %w", err)
		}
		meta, err := statepkg.SetSummary(map[string]string{"source": "file"}, sum.summary())
		if err != nil {
			return driver.CaptureResult{}, err
		}
		return driver.CaptureResult{Format: Format, Meta: meta}, nil
	}
	e, err := parseEndpoint(src.URL)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	db, err := e.open(e.db)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	var version string
	err = db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version)
	db.Close()
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("connect to %s: %w", driver.Redact(src.URL), err)
	}
	bin, err := tool(src.Options, "mariadb-dump", "mysqldump")
	if err != nil {
		return driver.CaptureResult{}, err
	}
	cnf, rm, err := e.optionFile()
	if err != nil {
		return driver.CaptureResult{}, err
	}
	defer rm()
	args := []string{"--defaults-extra-file=" + cnf, "--single-transaction", "--routines", "--triggers", "--events",
		"--hex-blob", "--no-tablespaces", "--skip-dump-date", "--ignore-table=" + e.db + "." + MarkerTable, e.db}
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr := &driver.Tail{}
	pw := &driver.CountingWriter{W: w}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return driver.CaptureResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return driver.CaptureResult{}, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	// The dump passes the restore's filter as it is written, so a source
	// whose definitions a restore would refuse fails here, not at apply.
	sum := newSummarizer()
	_, ferr := io.CopyBuffer(pw, io.TeeReader(sqlfilter.MySQL(out, sqlfilter.MySQLOptions{}), sum), make([]byte, 1<<20))
	if ferr != nil {
		_ = cmd.Process.Kill()
	}
	err = cmd.Wait()
	p.Emit(driver.Event{Component: name, Phase: driver.PhaseCapture, Bytes: pw.N})
	if ferr != nil {
		if sqlfilter.IsRefused(ferr) {
			return driver.CaptureResult{}, fmt.Errorf("mysql capture: the dump of %s would be refused at restore: %w", e.db, ferr)
		}
		return driver.CaptureResult{}, fmt.Errorf("mysql capture: %w", ferr)
	}
	if err := driver.ToolError(ctx, filepath.Base(bin), err, stderr); err != nil {
		return driver.CaptureResult{}, err
	}
	meta, err := statepkg.SetSummary(map[string]string{"serverVersion": version, "database": e.db, "dumpTool": filepath.Base(bin)}, sum.summary())
	if err != nil {
		return driver.CaptureResult{}, err
	}
	return driver.CaptureResult{Format: Format, Meta: meta}, nil
}

// Marker is the row of the unikube_state table.
type Marker struct {
	State, Digest, Component, ComponentDigest string
	AppliedAt                                 time.Time
	// Tables are the tables' checksums right after the restore, as JSON
	// ("" in a marker written before they were recorded, or with the
	// option drift=off).
	Tables string
}

// ReadMarker returns the marker inside the schema a mysql:// URL names.
func ReadMarker(ctx context.Context, raw string) (*Marker, error) {
	e, err := parseEndpoint(raw)
	if err != nil {
		return nil, err
	}
	return readMarker(ctx, e), nil
}

// maxMarkerBytes bounds the checksums a plan reads: some 40 bytes a table,
// so this is room for 200,000 tables.
const maxMarkerBytes = 8 << 20

func readMarker(ctx context.Context, e endpoint) *Marker {
	db, err := e.open(e.db)
	if err != nil {
		return nil
	}
	defer db.Close()
	var m Marker
	var tables sql.NullString
	var tooBig bool
	// Anyone who can write to the schema can write the marker: checksums
	// larger than an apply writes are left in the server unread, and the
	// marker is not trusted.
	err = db.QueryRowContext(ctx, "SELECT state, digest, component, component_digest, applied_at, IF(LENGTH(`tables`) > ?, NULL, `tables`), COALESCE(LENGTH(`tables`) > ?, FALSE) FROM "+
		qi(MarkerTable)+" ORDER BY applied_at DESC LIMIT 1", maxMarkerBytes, maxMarkerBytes).
		Scan(&m.State, &m.Digest, &m.Component, &m.ComponentDigest, &m.AppliedAt, &tables, &tooBig)
	if err == nil && tooBig {
		return nil
	}
	if err != nil {
		// A marker table written before the checksums were recorded.
		err = db.QueryRowContext(ctx, "SELECT state, digest, component, component_digest, applied_at FROM "+qi(MarkerTable)+" ORDER BY applied_at DESC LIMIT 1").
			Scan(&m.State, &m.Digest, &m.Component, &m.ComponentDigest, &m.AppliedAt)
	}
	if err != nil {
		return nil
	}
	m.Tables = tables.String
	return &m
}

func schemaExists(ctx context.Context, db *sql.DB, name string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n)
	return n > 0, err
}

// Plan implements driver.Driver.
func (d *Driver) Plan(ctx context.Context, c statepkg.Component, t driver.Target) (driver.ComponentPlan, error) {
	pl := driver.ComponentPlan{Component: c.Name, Kind: c.Kind, Target: driver.Redact(t.URL), Strategy: "rename-tables", Atomic: true, Bytes: c.Size}
	if c.Format != Format {
		return pl, fmt.Errorf("format %q: the mysql driver restores %s", c.Format, Format)
	}
	pt, err := targetDrift(t)
	if err != nil {
		return pl, err
	}
	if _, err := driver.KeepPrevious(t); err != nil {
		return pl, err
	}
	e, err := parseEndpoint(t.URL)
	if err != nil {
		return pl, err
	}
	if _, err := tool(t.Options, "mariadb", "mysql"); err != nil {
		return pl, err
	}
	db, err := e.open("")
	if err != nil {
		return pl, err
	}
	defer db.Close()
	exists, err := schemaExists(ctx, db, e.db)
	if err != nil {
		return pl, fmt.Errorf("connect to %s: %w", pl.Target, err)
	}
	pl.Action = driver.ActionCreate
	if exists {
		pl.Action = driver.ActionReplace
		if m := readMarker(ctx, e); m != nil {
			pl.Current = m.ComponentDigest
			switch {
			case m.ComponentDigest == c.Digest && t.Force:
				pl.Reason = "already applied; re-applying because force is set"
			case m.ComponentDigest == c.Digest:
				pl.Action, pl.Reason, pl.Bytes = driver.ActionSkip, "already applied", 0
				if err := planDrift(ctx, e, m, pt, &pl, c.Size); err != nil {
					return pl, err
				}
			}
		}
	}
	pl.Warnings = append(pl.Warnings, "tables swap in one RENAME TABLE; views, triggers and routines are re-created and events moved in right after it")
	return pl, nil
}

// Restore implements driver.Driver.
func (d *Driver) Restore(ctx context.Context, c statepkg.Component, src driver.ChunkSource, t driver.Target, p driver.Progress) (res driver.ComponentResult, err error) {
	start := time.Now()
	res = driver.ComponentResult{Component: c.Name, Kind: c.Kind, Strategy: "rename-tables"}
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
	e, _ := parseEndpoint(t.URL)
	db, err := e.open("")
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one session: USE and session variables stick
	bg := context.WithoutCancel(ctx)

	phase = driver.PhaseRestore
	staged := stagingName(e.db, newSuffix+driver.RandSuffix())
	charset := "utf8mb4"
	_ = db.QueryRowContext(ctx, "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", e.db).Scan(&charset)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+qi(staged)+" CHARACTER SET "+charset); err != nil {
		return fail(fmt.Errorf("create staging schema: %w", err))
	}
	defer func() { _, _ = db.ExecContext(bg, "DROP DATABASE IF EXISTS "+qi(staged)) }()

	bin, err := tool(t.Options, "mariadb", "mysql")
	if err != nil {
		return fail(err)
	}
	cnf, rm, err := e.optionFile()
	if err != nil {
		return fail(err)
	}
	defer rm()
	r, err := src.Open(ctx)
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	pr := &driver.ProgressReader{R: r, P: p, Component: c.Name, Phase: driver.PhaseRestore}
	// A package is data: the script reaches the client only through the
	// filter (no client commands, nothing naming another database of the
	// server), and the client itself reads it without client commands
	// (--binary-mode), without local files and, where it can, sandboxed.
	others, err := listNames(ctx, db, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME <> ?", staged)
	if err != nil {
		return fail(fmt.Errorf("list the server's databases: %w", err))
	}
	args, err := clientArgs(ctx, db, bin, cnf, staged)
	if err != nil {
		return fail(err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr := &driver.Tail{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	filtered := sqlfilter.MySQL(pr, sqlfilter.MySQLOptions{Databases: append(others, e.db)})
	if err := driver.Feed(ctx, cmd, filepath.Base(bin), filtered, pr, c.Size, stderr, &res); err != nil {
		if sqlfilter.IsRefused(err) {
			return fail(fmt.Errorf("the package's SQL script: %w", err))
		}
		return fail(err)
	}
	if err := writeMarker(ctx, db, staged, c, t); err != nil {
		return fail(err)
	}

	phase = driver.PhaseSwap
	prev := stagingName(e.db, prevSuffix)
	if err := swap(ctx, db, e.db, staged, prev); err != nil {
		return fail(err)
	}
	res.Previous = prev
	if keep, _ := driver.KeepPrevious(t); keep == 0 {
		// keep_previous=0: the data is in place, the copy of what it
		// replaced goes. One that cannot be dropped stays named in
		// Previous, and the next apply's swap drops it.
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+qi(prev)); err == nil {
			res.Previous = ""
		}
	}
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDone})
	return res, nil
}

func writeMarker(ctx context.Context, db *sql.DB, schema string, c statepkg.Component, t driver.Target) error {
	tbl := qi(schema) + "." + qi(MarkerTable)
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS " + tbl + " (state varchar(255), digest varchar(80), component varchar(255), component_digest varchar(80), applied_at datetime(6) NOT NULL, `tables` longtext)",
		"DELETE FROM " + tbl,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("write marker: %w", err)
		}
	}
	var tables sql.NullString
	if t.Option(OptDrift, DriftChecksum) != DriftOff {
		sums, err := readChecksums(ctx, db, schema)
		if err != nil {
			return fmt.Errorf("write marker: %w", err)
		}
		b, err := json.Marshal(sums)
		if err != nil {
			return fmt.Errorf("write marker: %w", err)
		}
		tables = sql.NullString{String: string(b), Valid: true}
	}
	_, err := db.ExecContext(ctx, "INSERT INTO "+tbl+" (state, digest, component, component_digest, applied_at, `tables`) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6), ?)",
		t.State, t.Digest, c.Name, c.Digest, tables)
	if err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	return nil
}

func listNames(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// createStatements returns the CREATE statements of the views, triggers and
// routines of schema, with references to the schema itself rewritten to
// target.
func createStatements(ctx context.Context, db *sql.DB, schema, target string) ([]string, error) {
	var out []string
	fix := func(s string) string { return strings.ReplaceAll(s, qi(schema)+".", qi(target)+".") }
	add := func(kind string, col int, names []string) error {
		for _, n := range names {
			rows, err := db.QueryContext(ctx, "SHOW CREATE "+kind+" "+qi(schema)+"."+qi(n))
			if err != nil {
				return err
			}
			cols, err := rows.Columns()
			if err != nil {
				rows.Close()
				return err
			}
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					rows.Close()
					return err
				}
				out = append(out, fix(vals[col].String))
			}
			rows.Close()
		}
		return nil
	}
	views, err := listNames(ctx, db, "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?", schema)
	if err != nil {
		return nil, err
	}
	procs, err := listNames(ctx, db, "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'PROCEDURE'", schema)
	if err != nil {
		return nil, err
	}
	funcs, err := listNames(ctx, db, "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION'", schema)
	if err != nil {
		return nil, err
	}
	trigs, err := listNames(ctx, db, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", schema)
	if err != nil {
		return nil, err
	}
	// Functions before views (views may call them), triggers last.
	if err := add("FUNCTION", 2, funcs); err != nil {
		return nil, err
	}
	if err := add("PROCEDURE", 2, procs); err != nil {
		return nil, err
	}
	if err := add("VIEW", 1, views); err != nil {
		return nil, err
	}
	if err := add("TRIGGER", 2, trigs); err != nil {
		return nil, err
	}
	return out, nil
}

// dropProgrammables drops the views, triggers and routines of schema.
func dropProgrammables(ctx context.Context, db *sql.DB, schema string) error {
	for _, q := range []struct{ kind, list string }{
		{"TRIGGER", "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?"},
		{"VIEW", "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?"},
		{"PROCEDURE", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'PROCEDURE'"},
		{"FUNCTION", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION'"},
	} {
		names, err := listNames(ctx, db, q.list, schema)
		if err != nil {
			return err
		}
		for _, n := range names {
			if _, err := db.ExecContext(ctx, "DROP "+q.kind+" IF EXISTS "+qi(schema)+"."+qi(n)); err != nil {
				return fmt.Errorf("drop %s %s: %w", strings.ToLower(q.kind), n, err)
			}
		}
	}
	return nil
}

// swap moves every base table of target to prev and of staged to target in
// one RENAME TABLE, then re-creates views, triggers and routines in target.
func swap(ctx context.Context, db *sql.DB, target, staged, prev string) error {
	// Tables with triggers cannot move between schemas, and views do not
	// move at all: take their definitions, drop them, re-create after.
	defs, err := createStatements(ctx, db, staged, target)
	if err != nil {
		return fmt.Errorf("read views/triggers/routines of the restored schema: %w", err)
	}
	if err := dropProgrammables(ctx, db, staged); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+qi(target)); err != nil {
		return err
	}
	oldTables, err := listNames(ctx, db, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", target)
	if err != nil {
		return err
	}
	newTables, err := listNames(ctx, db, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", staged)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+qi(prev)); err != nil {
		return fmt.Errorf("drop older %s: %w", prev, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+qi(prev)); err != nil {
		return fmt.Errorf("create %s: %w", prev, err)
	}
	// Events are schema objects that run on their own: move the old ones
	// aside first so none fires against the new tables, and keep them
	// disabled with the previous tables (they would otherwise keep running
	// against the copy kept for rollback).
	oldEvents, err := listNames(ctx, db, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", target)
	if err != nil {
		return fmt.Errorf("list events of %s: %w", target, err)
	}
	enabled, err := listNames(ctx, db, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND STATUS = 'ENABLED'", target)
	if err != nil {
		return fmt.Errorf("list events of %s: %w", target, err)
	}
	newEvents, err := listNames(ctx, db, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", staged)
	if err != nil {
		return fmt.Errorf("list events of the restored schema: %w", err)
	}
	bg := context.WithoutCancel(ctx)
	eventsBack := func() {
		_ = moveEvents(bg, db, oldEvents, prev, target, "")
		_ = setEvents(bg, db, enabled, target, "ENABLE")
	}
	if err := moveEvents(ctx, db, oldEvents, target, prev, "DISABLE"); err != nil {
		eventsBack()
		return err
	}
	// Keep the previous programmable objects' definitions with the
	// previous tables, so a rollback has them.
	oldDefs, err := createStatements(ctx, db, target, prev)
	if err != nil {
		eventsBack()
		return err
	}
	if err := dropProgrammables(ctx, db, target); err != nil {
		_ = recreate(bg, db, target, fixSchema(oldDefs, prev, target))
		eventsBack()
		return err
	}
	var parts []string
	for _, t := range oldTables {
		parts = append(parts, qi(target)+"."+qi(t)+" TO "+qi(prev)+"."+qi(t))
	}
	for _, t := range newTables {
		parts = append(parts, qi(staged)+"."+qi(t)+" TO "+qi(target)+"."+qi(t))
	}
	if len(parts) > 0 {
		if _, err := db.ExecContext(ctx, "RENAME TABLE "+strings.Join(parts, ", ")); err != nil {
			// Nothing moved; put the old programmable objects back.
			_ = recreate(bg, db, target, fixSchema(oldDefs, prev, target))
			eventsBack()
			return fmt.Errorf("RENAME TABLE: %w", err)
		}
	}
	if err := recreate(ctx, db, prev, oldDefs); err != nil {
		// The swap itself succeeded; the previous copy just lacks views.
		_ = err
	}
	if err := recreate(ctx, db, target, defs); err != nil {
		return fmt.Errorf("tables are swapped, but re-creating views/triggers/routines failed (previous tables are in %s): %w", prev, err)
	}
	if err := moveEvents(ctx, db, newEvents, staged, target, ""); err != nil {
		return fmt.Errorf("tables are swapped, but %w (previous tables are in %s)", err, prev)
	}
	return nil
}

// moveEvents moves events between schemas with ALTER EVENT ... RENAME TO,
// which keeps their definer, schedule and status, then applies status
// ("DISABLE", "ENABLE") to each when it is not empty. It stops at the first
// failure; events moved so far stay moved.
func moveEvents(ctx context.Context, db *sql.DB, names []string, from, to, status string) error {
	for _, n := range names {
		if _, err := db.ExecContext(ctx, "ALTER EVENT "+qi(from)+"."+qi(n)+" RENAME TO "+qi(to)+"."+qi(n)); err != nil {
			return fmt.Errorf("move event %s from %s to %s (needs the EVENT privilege on both): %w", n, from, to, err)
		}
	}
	return setEvents(ctx, db, names, to, status)
}

// setEvents runs ALTER EVENT ... <status> on events of schema.
func setEvents(ctx context.Context, db *sql.DB, names []string, schema, status string) error {
	if status == "" {
		return nil
	}
	for _, n := range names {
		if _, err := db.ExecContext(ctx, "ALTER EVENT "+qi(schema)+"."+qi(n)+" "+status); err != nil {
			return fmt.Errorf("%s event %s in %s: %w", strings.ToLower(status), n, schema, err)
		}
	}
	return nil
}

func fixSchema(defs []string, from, to string) []string {
	out := make([]string, len(defs))
	for i, d := range defs {
		out[i] = strings.ReplaceAll(d, qi(from)+".", qi(to)+".")
	}
	return out
}

// recreate runs CREATE statements with schema as the default database.
func recreate(ctx context.Context, db *sql.DB, schema string, defs []string) error {
	if len(defs) == 0 {
		return nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "USE "+qi(schema)); err != nil {
		return err
	}
	for _, d := range defs {
		if _, err := conn.ExecContext(ctx, d); err != nil {
			return fmt.Errorf("%.80s...: %w", d, err)
		}
	}
	return nil
}

// clientArgs are the arguments of the mariadb/mysql client restoring a
// script into schema staged.
func clientArgs(ctx context.Context, db *sql.DB, bin, cnf, staged string) ([]string, error) {
	args := []string{"--defaults-extra-file=" + cnf, "--batch", "--binary-mode", "--local-infile=0",
		"--default-character-set=utf8mb4", "--database=" + staged}
	if help, err := exec.CommandContext(ctx, bin, "--help").Output(); err == nil && strings.Contains(string(help), "--sandbox") {
		args = append(args, "--sandbox") // MariaDB 10.5.25+: no \! system, tee, source, pager
	}
	// The filter reads strings with backslash escapes and "..." as
	// strings; a server whose default sql_mode says otherwise would read
	// the script differently, so the session starts without those modes.
	var mode string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.sql_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("read the server's sql_mode: %w", err)
	}
	var keep []string
	changed := false
	for _, m := range strings.Split(mode, ",") {
		switch strings.ToUpper(m) {
		case "NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL":
			changed = true
		default:
			if m != "" {
				keep = append(keep, m)
			}
		}
	}
	if changed {
		args = append(args, "--init-command=SET SESSION sql_mode='"+strings.Join(keep, ",")+"'")
	}
	return args, nil
}
