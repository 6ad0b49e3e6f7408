// Package postgres captures a PostgreSQL database with pg_dump and restores
// it with pg_restore, by default into a fresh database that is then swapped
// into place by renaming, so clients never see a half-restored database.
//
// By default (data_load=stream) one pg_restore restores the schema and the
// data as the archive downloads, and pg_restore -j then builds indexes and
// constraints from a copy of the archive kept on disk (overlap.go). With
// data_load=pg_restore the archive is staged first and pg_restore -j does
// everything; with data_load=parallel the driver loads the data itself,
// splitting each table's rows among the jobs' connections (dataload.go):
// pg_restore -j gives a table one process, and a database is often mostly
// one big table.
//
// Target options: strategy, jobs, role, keep_owner, pg_bin,
// maintenance_db, tmpdir, restore_settings, data_load (the Opt constants
// below say what each does).
package postgres

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/sqlfilter"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Formats of postgres components.
const (
	FormatCustom = "pg_dump-custom" // pg_dump -Fc archive
	FormatSQL    = "sql"            // plain SQL script for psql
)

// Options of a postgres target or source.
const (
	OptStrategy      = "strategy"       // swap (default) or in-place
	OptJobs          = "jobs"           // pg_restore -j; default: CPU count
	OptRole          = "role"           // objects end up owned by this role (pg_restore --role, CREATE DATABASE OWNER)
	OptKeepOwner     = "keep_owner"     // "true": do not pass --no-owner
	OptBinDir        = "pg_bin"         // directory holding pg_dump/pg_restore/psql
	OptMaintenanceDB = "maintenance_db" // database to connect to for CREATE/RENAME (default postgres)
	OptTempDir       = "tmpdir"         // where the archive is staged for pg_restore -j
	// OptSettings are server settings for the sessions restoring into a
	// fresh database (the swap strategy's staging database, or a database
	// that did not exist): "name=value name=value", "none" for none.
	OptSettings = "restore_settings"
	// OptDataLoad is how an archive restored into a fresh database
	// (strategy swap) with jobs > 1 is loaded: stream (the default: one
	// pg_restore restores schema and data as the archive downloads, then
	// pg_restore -j the indexes and constraints), pg_restore (the archive
	// is staged, then pg_restore -j restores it, one process per table) or
	// parallel (the driver splits each table's rows among jobs
	// connections).
	OptDataLoad = "data_load"
)

// DefaultRestoreSettings speed up a restore into a fresh database. Both are
// safe there: the database is swapped into place only after the restore
// succeeded, so a commit lost in a crash only loses a staging database
// that is dropped anyway, and index builds get memory to sort in.
const DefaultRestoreSettings = "synchronous_commit=off maintenance_work_mem=256MB"

// Progress phases of the postgres driver besides the common ones.
const (
	// PhaseCreateDatabase: the database restored into is created.
	PhaseCreateDatabase = "create-database"
	// PhasePostData: indexes and constraints are built (data_load=stream).
	PhasePostData = "post-data"
)

// Strategies.
const (
	StrategySwap    = "swap"
	StrategyInPlace = "in-place"
)

// Suffixes of the databases the swap strategy makes.
const (
	newSuffix  = "_unikube_new_"
	prevSuffix = "_unikube_prev"
	// MarkerTable records what was applied inside the restored database.
	MarkerTable = "unikube_state"
)

// Driver is the PostgreSQL driver.
type Driver struct{}

// New returns the PostgreSQL driver.
func New() *Driver { return &Driver{} }

// Kind implements driver.Driver.
func (*Driver) Kind() statepkg.Kind { return statepkg.KindPostgres }

// TargetOptions implements driver.OptionLister.
func (*Driver) TargetOptions() []string {
	return []string{OptStrategy, OptJobs, OptRole, OptKeepOwner, OptBinDir, OptMaintenanceDB, OptTempDir, OptSettings, OptDataLoad, OptDrift, driver.OptKeepPrevious}
}

// PodOptions implements driver.PodNeeds: in an agent pod the archive is
// staged in its scratch directory (the image's own TMPDIR may be read-only
// or small).
func (*Driver) PodOptions(scratch string) map[string]string {
	return map[string]string{OptTempDir: scratch}
}

// endpoint is a parsed postgres:// URL.
type endpoint struct {
	u  *url.URL
	db string
}

func parseEndpoint(raw string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return endpoint{}, fmt.Errorf("want a postgres://user:password@host:port/db URL, got %s", driver.Redact(raw))
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		return endpoint{}, fmt.Errorf("postgres URL %s names no database", driver.Redact(raw))
	}
	return endpoint{u: u, db: db}, nil
}

// env is the libpq environment for pg_dump/pg_restore/psql: the password
// travels in PGPASSWORD, never on a command line.
func (e endpoint) env() []string {
	env := os.Environ()
	host, port := e.u.Hostname(), e.u.Port()
	if host != "" {
		env = append(env, "PGHOST="+host)
	}
	if port != "" {
		env = append(env, "PGPORT="+port)
	}
	if e.u.User != nil {
		env = append(env, "PGUSER="+e.u.User.Username())
		if pw, ok := e.u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw)
		}
	}
	q := e.u.Query()
	for k, v := range map[string]string{"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "application_name": "PGAPPNAME"} {
		if s := q.Get(k); s != "" {
			env = append(env, v+"="+s)
		}
	}
	return env
}

func (e endpoint) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return e.connectWith(ctx, db, nil)
}

// connectWith connects with server settings for the session (sent at
// startup, like PGOPTIONS).
func (e endpoint) connectWith(ctx context.Context, db string, params map[string]string) (*pgx.Conn, error) {
	u := *e.u
	u.Path = "/" + db
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres URL: %w", err)
	}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s/%s: %w", u.Host, db, err)
	}
	return c, nil
}

// maintenance connects to a database other than the target, from which the
// target can be created, renamed and dropped.
func (e endpoint) maintenance(ctx context.Context, opts map[string]string) (*pgx.Conn, error) {
	dbs := []string{"postgres", "template1"}
	if m := opts[OptMaintenanceDB]; m != "" {
		dbs = []string{m}
	}
	var errs []error
	for _, db := range dbs {
		if db == e.db {
			continue
		}
		c, err := e.connect(ctx, db)
		if err == nil {
			return c, nil
		}
		if !databaseRefused(err) {
			// A wrong password, a closed port or an unknown host fails
			// alike on every database: say it once, without the hint.
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("connect to a maintenance database (set option %s): %w", OptMaintenanceDB, errors.Join(errs...))
}

// databaseRefused says whether a connection failed because of the
// database asked for (it does not exist, or the user may not connect to
// it), so another maintenance database may do.
func databaseRefused(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "3D000", // invalid_catalog_name: no such database
		"42501", // insufficient_privilege: CONNECT revoked
		"28000": // invalid_authorization_specification: pg_hba has no entry for this database
		return true
	}
	return false
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// stagingName bounds names to PostgreSQL's 63-byte identifiers.
func stagingName(db, suffix string) string {
	return driver.BoundedName(db, suffix, 63)
}

var versionRE = regexp.MustCompile(`(\d+)(?:\.(\d+))?`)

// major returns the major version in a version string ("15.8 (Debian...)" -> 15).
func major(v string) int {
	m := versionRE.FindStringSubmatch(v)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// tool finds a PostgreSQL client program: in option pg_bin, else the newest
// /usr/lib/postgresql/*/bin, else PATH.
func tool(name string, opts map[string]string) (string, error) {
	if dir := opts[OptBinDir]; dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s not found in %s (option %s): %w", name, dir, OptBinDir, err)
		}
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	for _, d := range dirs {
		if p := filepath.Join(d, name); fileExists(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found: install the PostgreSQL client (e.g. apt-get install postgresql-client) or set option %s", name, OptBinDir)
	}
	return p, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func toolVersion(ctx context.Context, path string) (string, error) {
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	s := strings.TrimSpace(string(out))
	if i := strings.Index(s, ") "); i >= 0 {
		s = s[i+2:]
	}
	return s, nil
}

func serverVersion(ctx context.Context, c *pgx.Conn) (string, error) {
	var v string
	err := c.QueryRow(ctx, "SHOW server_version").Scan(&v)
	return v, err
}

func dbExists(ctx context.Context, c *pgx.Conn, db string) (bool, error) {
	var n int
	err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db).Scan(&n)
	return n > 0, err
}

// Marker is the row of the unikube_state table.
type Marker struct {
	State           string    `json:"state"`
	Digest          string    `json:"digest"`
	Component       string    `json:"component"`
	ComponentDigest string    `json:"component_digest"`
	AppliedAt       time.Time `json:"applied_at"`
	// Tables are the tables' statistics right after the restore (nil in
	// a marker written before they were recorded).
	Tables TableStats `json:"tables"`
}

// maxMarkerBytes bounds the marker a plan reads: its tables' statistics
// take some 40 bytes a table, so this is room for 200,000 tables.
const maxMarkerBytes = 8 << 20

// ReadMarker returns the marker of database db, or nil when it has none.
func readMarker(ctx context.Context, e endpoint, db string) *Marker {
	c, err := e.connect(ctx, db)
	if err != nil {
		return nil
	}
	defer c.Close(context.WithoutCancel(ctx))
	// As JSON: a marker table written by an older version lacks columns.
	// Anyone who can write to the database can write the marker: one larger
	// than an apply writes is left in the server unread (NULL), and so not
	// trusted.
	var raw []byte
	err = c.QueryRow(ctx, `SELECT CASE WHEN octet_length(to_jsonb(m)::text) <= $1 THEN to_jsonb(m) END
		FROM public.`+MarkerTable+` m ORDER BY applied_at DESC LIMIT 1`, maxMarkerBytes).Scan(&raw)
	if err != nil || raw == nil {
		return nil
	}
	var m Marker
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return &m
}

// ReadMarker returns the marker inside the database a postgres:// URL names.
func ReadMarker(ctx context.Context, rawURL string) (*Marker, error) {
	e, err := parseEndpoint(rawURL)
	if err != nil {
		return nil, err
	}
	return readMarker(ctx, e, e.db), nil
}

func writeMarker(ctx context.Context, e endpoint, db string, c statepkg.Component, t driver.Target) error {
	conn, err := e.connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var tables []byte
	if t.Option(OptDrift, DriftTables) != DriftOff {
		ts, err := settledTableStats(ctx, conn)
		if err != nil {
			return fmt.Errorf("write marker: %w", err)
		}
		if tables, err = json.Marshal(ts); err != nil {
			return fmt.Errorf("write marker: %w", err)
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	// After Commit, Rollback is a no-op returning ErrTxClosed; before it, the
	// error that stopped us is the one worth reporting.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS public.` + MarkerTable + ` (state text, digest text, component text, component_digest text, applied_at timestamptz NOT NULL DEFAULT now())`,
		// A marker table written before the statistics were recorded.
		`ALTER TABLE public.` + MarkerTable + ` ADD COLUMN IF NOT EXISTS tables jsonb`,
		`DELETE FROM public.` + MarkerTable,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("write marker: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO public.`+MarkerTable+` (state, digest, component, component_digest, tables) VALUES ($1, $2, $3, $4, $5)`,
		t.State, t.Digest, c.Name, c.Digest, tables); err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	return tx.Commit(ctx)
}

// Plan implements driver.Driver.
func (d *Driver) Plan(ctx context.Context, c statepkg.Component, t driver.Target) (driver.ComponentPlan, error) {
	strategy := t.Option(OptStrategy, StrategySwap)
	pl := driver.ComponentPlan{Component: c.Name, Kind: c.Kind, Target: driver.Redact(t.URL), Strategy: strategy, Atomic: true, Bytes: c.Size}
	if strategy != StrategySwap && strategy != StrategyInPlace {
		return pl, fmt.Errorf("strategy %q: want %s or %s", strategy, StrategySwap, StrategyInPlace)
	}
	if c.Format != FormatCustom && c.Format != FormatSQL {
		return pl, fmt.Errorf("format %q: the postgres driver restores %s and %s", c.Format, FormatCustom, FormatSQL)
	}
	if err := validDrift(t); err != nil {
		return pl, err
	}
	if dl := t.Option(OptDataLoad, DefaultDataLoad); dl != DataLoadParallel && dl != DataLoadPgRestore && dl != DataLoadStream {
		return pl, fmt.Errorf("option %s=%q: want %s, %s or %s", OptDataLoad, dl, DataLoadStream, DataLoadPgRestore, DataLoadParallel)
	}
	if _, err := driver.KeepPrevious(t); err != nil {
		return pl, err
	}
	e, err := parseEndpoint(t.URL)
	if err != nil {
		return pl, err
	}
	warnings, err := checkVersions(ctx, e, c, t.Options)
	pl.Warnings = warnings
	if err != nil {
		return pl, err
	}
	mc, err := e.maintenance(ctx, t.Options)
	if err != nil {
		return pl, err
	}
	defer mc.Close(context.WithoutCancel(ctx))
	exists, err := dbExists(ctx, mc, e.db)
	if err != nil {
		return pl, err
	}
	switch {
	case !exists:
		pl.Action = driver.ActionCreate
	default:
		pl.Action = driver.ActionReplace
		if m := readMarker(ctx, e, e.db); m != nil {
			pl.Current = m.ComponentDigest
			switch {
			case m.ComponentDigest == c.Digest && t.Force:
				pl.Reason = "already applied; re-applying because force is set"
			case m.ComponentDigest == c.Digest:
				pl.Action, pl.Reason, pl.Bytes = driver.ActionSkip, "already applied", 0
				if err := planDrift(ctx, e, m, t, &pl, c.Size); err != nil {
					return pl, err
				}
			}
		}
	}
	return pl, nil
}

// checkVersions compares the pg_restore at hand with the pg_dump that made
// the archive and with the server, and says which pg_restore is needed.
func checkVersions(ctx context.Context, e endpoint, c statepkg.Component, opts map[string]string) ([]string, error) {
	name := "pg_restore"
	if c.Format == FormatSQL {
		name = "psql"
	}
	path, err := tool(name, opts)
	if err != nil {
		return nil, err
	}
	tv, err := toolVersion(ctx, path)
	if err != nil {
		return nil, err
	}
	mc, err := e.maintenance(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer mc.Close(context.WithoutCancel(ctx))
	sv, err := serverVersion(ctx, mc)
	if err != nil {
		return nil, err
	}
	var warnings []string
	dumpMajor := major(c.Meta["pgDumpVersion"])
	if c.Format == FormatCustom && dumpMajor > major(tv) {
		return nil, fmt.Errorf("this archive was written by pg_dump %s; %s is version %s and cannot read it: install postgresql-client-%d (or newer) or set option %s to its bin directory",
			c.Meta["pgDumpVersion"], path, tv, dumpMajor, OptBinDir)
	}
	if major(tv) < major(sv) {
		warnings = append(warnings, fmt.Sprintf("%s %s is older than the server (%s); use %s %d for a faithful restore (option %s)", name, tv, sv, name, major(sv), OptBinDir))
	}
	if sm := major(c.Meta["serverVersion"]); sm > major(sv) {
		warnings = append(warnings, fmt.Sprintf("the state was dumped from PostgreSQL %s, the target runs %s: objects using newer features may fail to restore", c.Meta["serverVersion"], sv))
	}
	return warnings, nil
}

// Restore implements driver.Driver.
func (d *Driver) Restore(ctx context.Context, c statepkg.Component, src driver.ChunkSource, t driver.Target, p driver.Progress) (res driver.ComponentResult, err error) {
	start := time.Now()
	strategy := t.Option(OptStrategy, StrategySwap)
	res = driver.ComponentResult{Component: c.Name, Kind: c.Kind, Strategy: strategy}
	defer func() { res.Duration = time.Since(start) }()
	phase := driver.PhasePlan
	fail := func(err error) (driver.ComponentResult, error) {
		return res, fmt.Errorf("restore %s: %s: %w", c.Name, phase, err)
	}
	// Phase events as each step starts, so progress (and the agent's step
	// timings) show where the time goes.
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhasePlan})
	pl, err := d.Plan(ctx, c, t)
	if err != nil {
		return fail(err)
	}
	res.Action = pl.Action
	if pl.Action == driver.ActionSkip {
		return res, nil
	}
	e, _ := parseEndpoint(t.URL)
	cleanupCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	}

	// The archive goes to a temp file first: pg_restore -j needs a seekable
	// file, and a damaged chunk stops the apply before the database changes.
	// With one job pg_restore reads the archive sequentially, so it can
	// stream from the chunks: no temp file, download and restore overlap.
	streaming := c.Format == FormatCustom && streamRestore(t)
	overlap := c.Format == FormatCustom && !streaming && overlapLoad(t, strategy)
	var archive string
	if c.Format == FormatCustom && !streaming && !overlap {
		phase = driver.PhaseDownload
		f, err := os.CreateTemp(t.Option(OptTempDir, ""), "unikube-pg-*.dump")
		if err != nil {
			return fail(fmt.Errorf("stage archive (set option %s to a directory with %d bytes free): %w", OptTempDir, c.Size, err))
		}
		archive = f.Name()
		defer os.Remove(archive)
		bw := bufio.NewWriterSize(f, 1<<20)
		stage := stageWriter{w: bw, what: "stage the archive for pg_restore -j", dir: t.Option(OptTempDir, os.TempDir()), size: c.Size}
		pw := &progressWriter{w: stage, p: p, name: c.Name}
		err = src.ReadRange(ctx, 0, c.Size, pw)
		pw.flush()
		res.Bytes = pw.n
		if err == nil {
			if err = bw.Flush(); err != nil {
				err = stage.wrap(err)
			}
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			err = stage.wrap(cerr)
		}
		if err != nil {
			return fail(err)
		}
	}

	mc, err := e.maintenance(ctx, t.Options)
	if err != nil {
		return fail(err)
	}
	defer mc.Close(context.WithoutCancel(ctx))

	into := e.db
	if strategy == StrategySwap {
		into = stagingName(e.db, newSuffix+driver.RandSuffix())
	}
	createdStaging := false
	if strategy == StrategySwap || pl.Action == driver.ActionCreate {
		phase = driver.PhaseRestore
		p.Emit(driver.Event{Component: c.Name, Phase: PhaseCreateDatabase})
		q := "CREATE DATABASE " + ident(into) + " TEMPLATE template0"
		if role := t.Option(OptRole, ""); role != "" {
			q += " OWNER " + ident(role)
		}
		if _, err := mc.Exec(ctx, q); err != nil {
			return fail(fmt.Errorf("create database %s: %w", into, err))
		}
		createdStaging = strategy == StrategySwap
	}
	defer func() {
		if err != nil && createdStaging {
			cctx, cancel := cleanupCtx()
			defer cancel()
			_, _ = mc.Exec(cctx, "DROP DATABASE IF EXISTS "+ident(into)+" WITH (FORCE)")
		}
	}()

	phase = driver.PhaseRestore
	env, err := restoreEnv(e, t, strategy == StrategySwap || pl.Action == driver.ActionCreate)
	if err != nil {
		return fail(err)
	}
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseRestore})
	rows := watchRows(ctx, e, into, p, c.Name, time.Second)
	switch {
	case streaming:
		err = d.pgRestoreStream(ctx, env, src, into, strategy, c, t, p, &res)
	case overlap:
		err = d.pgRestoreOverlap(ctx, env, src, into, c, t, p, &res)
	case c.Format == FormatCustom && parallelLoad(t, strategy):
		err = d.pgRestoreParallel(ctx, env, e, archive, into, t)
	case c.Format == FormatCustom:
		err = d.pgRestore(ctx, env, archive, into, strategy, t)
	default:
		err = d.psql(ctx, env, src, into, strategy, c, t, p, &res)
	}
	res.Rows = rows()
	if err != nil {
		return fail(err)
	}
	if err := writeMarker(ctx, e, into, c, t); err != nil {
		return fail(err)
	}
	keep, _ := driver.KeepPrevious(t) // Plan refused a bad value
	if strategy == StrategyInPlace {
		res.Previous = keepPreviousCopy(ctx, mc, e.db, "", keep)
		p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDone})
		return res, nil
	}

	phase = driver.PhaseSwap
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseSwap})
	prev, err := swap(ctx, mc, e.db, into, pl.Action == driver.ActionCreate)
	if err != nil {
		return fail(err)
	}
	createdStaging = false
	res.Previous = keepPreviousCopy(ctx, mc, e.db, prev, keep)
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDone})
	return res, nil
}

// swap renames db aside to <db>_unikube_prev (dropping an older one) and
// staged into db's place, in one transaction.
func swap(ctx context.Context, mc *pgx.Conn, db, staged string, create bool) (string, error) {
	if create {
		// Someone may have created it since the plan; the rename then fails
		// cleanly and the staged database is dropped.
		_, err := mc.Exec(ctx, "ALTER DATABASE "+ident(staged)+" RENAME TO "+ident(db))
		return "", err
	}
	prev := stagingName(db, prevSuffix)
	if _, err := mc.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(prev)+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop older previous database %s: %w", prev, err)
	}
	// New sessions are refused while we terminate the existing ones, so the
	// rename does not race a reconnecting client.
	if _, err := mc.Exec(ctx, "ALTER DATABASE "+ident(db)+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return "", fmt.Errorf("block new connections to %s: %w", db, err)
	}
	reopen := func() {
		_, _ = mc.Exec(context.WithoutCancel(ctx), "ALTER DATABASE "+ident(db)+" WITH ALLOW_CONNECTIONS true")
	}
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		if _, err := mc.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db); err != nil {
			reopen()
			return "", fmt.Errorf("terminate connections to %s: %w", db, err)
		}
		lastErr = renamePair(ctx, mc, db, prev, staged)
		if lastErr == nil {
			break
		}
		if !strings.Contains(lastErr.Error(), "being accessed by other users") {
			break
		}
		select {
		case <-ctx.Done():
			reopen()
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if lastErr != nil {
		reopen()
		return "", lastErr
	}
	_, _ = mc.Exec(ctx, "ALTER DATABASE "+ident(prev)+" WITH ALLOW_CONNECTIONS true")
	return prev, nil
}

func renamePair(ctx context.Context, mc *pgx.Conn, db, prev, staged string) error {
	tx, err := mc.Begin(ctx)
	if err != nil {
		return err
	}
	// After Commit, Rollback is a no-op returning ErrTxClosed; before it, the
	// error that stopped us is the one worth reporting.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "ALTER DATABASE "+ident(db)+" RENAME TO "+ident(prev)); err != nil {
		return fmt.Errorf("rename %s to %s: %w", db, prev, err)
	}
	if _, err := tx.Exec(ctx, "ALTER DATABASE "+ident(staged)+" RENAME TO "+ident(db)); err != nil {
		return fmt.Errorf("rename %s to %s: %w", staged, db, err)
	}
	return tx.Commit(ctx)
}

// restoreEnv is the environment of pg_restore/psql: the endpoint's, plus
// PGOPTIONS with the restore settings when restoring into a fresh database.
func restoreEnv(e endpoint, t driver.Target, fresh bool) ([]string, error) {
	env := e.env()
	if !fresh {
		return env, nil
	}
	params, err := restoreParams(t)
	if err != nil || len(params) == 0 {
		return env, err
	}
	var opts []string
	for k, v := range params {
		opts = append(opts, "-c "+k+"="+v)
	}
	sort.Strings(opts)
	if prev := os.Getenv("PGOPTIONS"); prev != "" {
		opts = append([]string{prev}, opts...)
	}
	return append(env, "PGOPTIONS="+strings.Join(opts, " ")), nil
}

// restoreParams are the restore settings (option restore_settings) of a
// target, for sessions restoring into a fresh database.
func restoreParams(t driver.Target) (map[string]string, error) {
	settings := t.Option(OptSettings, DefaultRestoreSettings)
	params := map[string]string{}
	if settings == "none" {
		return params, nil
	}
	for _, kv := range strings.Fields(settings) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" || strings.ContainsAny(kv, `\'"`) {
			return nil, fmt.Errorf("option %s: %q is not name=value", OptSettings, kv)
		}
		params[k] = v
	}
	return params, nil
}

func restoreFlags(t driver.Target) []string {
	var args []string
	if t.Option(OptKeepOwner, "") != "true" {
		args = append(args, "--no-owner")
	}
	if role := t.Option(OptRole, ""); role != "" {
		args = append(args, "--role="+role)
	}
	return args
}

// streamRestore says whether pg_restore reads the archive as it is
// downloaded (one job, option jobs=1) rather than from a staged file with
// -j. Staging is the default even on 2 CPUs: the download fetches many
// chunks at once (~130 MB/s in the cluster bench), and pg_restore then
// reads a local file without the download competing for the CPUs. At
// 1 GiB on 2 CPUs: staged with -j 2 29 s, streamed 34 s.
func streamRestore(t driver.Target) bool {
	return Jobs(t) == 1
}

// Jobs is the pg_restore parallelism of a target: option jobs, else the
// CPU count.
func Jobs(t driver.Target) int {
	if n, err := strconv.Atoi(t.Option(OptJobs, "")); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

func (d *Driver) pgRestore(ctx context.Context, env []string, archive, db, strategy string, t driver.Target) error {
	bin, err := tool("pg_restore", t.Options)
	if err != nil {
		return err
	}
	args := []string{"--exit-on-error", "--no-password", "-d", db}
	args = append(args, restoreFlags(t)...)
	if strategy == StrategyInPlace {
		args = append(args, "--clean", "--if-exists", "--single-transaction")
	} else {
		args = append(args, "-j", strconv.Itoa(Jobs(t)))
	}
	args = append(args, archive)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	stderr := &driver.Tail{}
	cmd.Stderr, cmd.Stdout = stderr, stderr
	return driver.ToolError(ctx, "pg_restore", cmd.Run(), stderr)
}

func (d *Driver) pgRestoreStream(ctx context.Context, env []string, src driver.ChunkSource, db, strategy string, c statepkg.Component, t driver.Target, p driver.Progress, res *driver.ComponentResult) error {
	bin, err := tool("pg_restore", t.Options)
	if err != nil {
		return err
	}
	args := []string{"--exit-on-error", "--no-password", "-d", db}
	args = append(args, restoreFlags(t)...)
	if strategy == StrategyInPlace {
		args = append(args, "--clean", "--if-exists", "--single-transaction")
	}
	r, err := src.Open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	pr := &driver.ProgressReader{R: r, P: p, Component: c.Name, Phase: driver.PhaseRestore}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	stderr := &driver.Tail{}
	cmd.Stderr, cmd.Stdout = stderr, stderr
	return driver.Feed(ctx, cmd, "pg_restore", pr, pr, c.Size, stderr, res)
}

func (d *Driver) psql(ctx context.Context, env []string, src driver.ChunkSource, db, strategy string, c statepkg.Component, t driver.Target, p driver.Progress, res *driver.ComponentResult) error {
	bin, err := tool("psql", t.Options)
	if err != nil {
		return err
	}
	args := []string{"-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "-d", db}
	if strategy == StrategyInPlace {
		args = append(args, "--single-transaction")
	}
	// A package is data: the script reaches psql only through the filter
	// (no meta-commands, no COPY ... PROGRAM), and psql is put in
	// restricted mode with a key the script cannot know, so a
	// meta-command the filter missed is still refused by psql itself.
	var prefix string
	if psqlRestricts(ctx, bin) {
		key, err := restrictKey()
		if err != nil {
			return err
		}
		prefix = "\\restrict " + key + "\n"
	}
	r, err := src.Open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	pr := &driver.ProgressReader{R: r, P: p, Component: c.Name, Phase: driver.PhaseRestore}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	stderr := &driver.Tail{}
	cmd.Stderr, cmd.Stdout = stderr, io.Discard
	script := io.MultiReader(strings.NewReader(prefix), sqlfilter.Postgres(pr))
	if err := driver.Feed(ctx, cmd, "psql", script, pr, c.Size, stderr, res); err != nil {
		if sqlfilter.IsRefused(err) {
			return fmt.Errorf("the package's SQL script: %w", err)
		}
		return err
	}
	return nil
}

// psqlRestricts says whether psql has \restrict (17.6, 16.10, 15.14,
// 14.19, 13.22 and later).
func psqlRestricts(ctx context.Context, bin string) bool {
	out, err := exec.CommandContext(ctx, bin, "--help=commands").Output()
	return err == nil && strings.Contains(string(out), "\\restrict")
}

// restrictKey is a random key for psql's \restrict.
func restrictKey() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("restrict key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

type progressWriter struct {
	w       io.Writer
	p       driver.Progress
	name    string
	n, pend int64
}

func (w *progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.pend += int64(n)
	if w.pend >= 1<<20 {
		w.flush()
	}
	return n, err
}

func (w *progressWriter) flush() {
	if w.pend > 0 {
		w.p.Emit(driver.Event{Component: w.name, Phase: driver.PhaseDownload, Bytes: w.pend})
		w.pend = 0
	}
}

// rowsQuery counts the rows inserted into the current database: by
// committed transactions (table statistics) plus by COPY commands still
// running (pg_stat_progress_copy, PostgreSQL 14+). A COPY's rows move from
// the second to the first when it commits, so nothing is counted twice.
const (
	rowsQuery = `SELECT (SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables)::bigint
		+ (SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy WHERE datname = current_database())::bigint`
	rowsQueryOld = `SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_user_tables`
)

// watchRows reports the rows restored into db as progress, polling the
// server's statistics every interval, because neither pg_restore nor psql
// tell. The returned function stops watching and returns the total. The
// count is best effort: statistics reach the server up to a second late, and
// with no way to connect it stays 0.
func watchRows(ctx context.Context, e endpoint, db string, p driver.Progress, component string, every time.Duration) func() int64 {
	ctx, cancel := context.WithCancel(ctx)
	conn, err := e.connect(ctx, db)
	if err != nil {
		cancel()
		return func() int64 { return 0 }
	}
	q := rowsQuery
	count := func(ctx context.Context) (int64, bool) {
		var n int64
		err := conn.QueryRow(ctx, q).Scan(&n)
		if err != nil && q == rowsQuery && ctx.Err() == nil {
			q = rowsQueryOld // before PostgreSQL 14
			err = conn.QueryRow(ctx, q).Scan(&n)
		}
		return n, err == nil
	}
	base, _ := count(ctx) // in-place restores start from existing statistics
	var reported int64
	emit := func(n int64) {
		if d := n - base - reported; d > 0 {
			reported += d
			// No phase: rows are counted while indexes are built too.
			p.Emit(driver.Event{Component: component, Rows: d})
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if n, ok := count(ctx); ok {
					emit(n)
				}
			}
		}
	}()
	return func() int64 {
		cancel()
		<-done
		bg, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		// The restoring sessions flush their statistics as they end, which
		// may be just after pg_restore returns: read until two agree.
		last := int64(-1)
		for range 5 {
			n, ok := count(bg)
			if !ok || n == last {
				break
			}
			emit(n)
			last = n
			time.Sleep(100 * time.Millisecond)
		}
		conn.Close(bg)
		return reported
	}
}
