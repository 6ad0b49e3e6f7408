// Package store is the platform's metadata store: projects, states, versions,
// grants, tokens, scripts and script runs, in SQLite (embedded default) or
// PostgreSQL (scale-out). The SQL is written once, in the subset both engines
// share ($N placeholders, ON CONFLICT, BIGINT unix-nanosecond timestamps).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Errors returned by the store; the API maps them to HTTP statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Dialect is the SQL engine behind a Store.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is the metadata store. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
	// gcMu serialises garbage collection against version commits within one
	// process (SQLite). PostgreSQL uses an advisory lock so replicas agree.
	gcMu sync.RWMutex
	// writeMu queues this process's SQLite writers in Go rather than in
	// SQLite's busy handler, which polls with growing sleeps and lets a
	// writer that keeps coming back (the collection's short steps) starve
	// one that waits: sync.Mutex hands itself to the longest waiter. Another
	// process (a `gc` run beside a server) still meets busy_timeout.
	writeMu sync.Mutex
	// stmts caches prepared statements of the hot read paths (auth, grants,
	// resolve, chunk checks): parsing SQL was a quarter of a request's CPU.
	stmts sync.Map // query string -> *sql.Stmt
}

// lockWrites takes the SQLite write queue (see writeMu); every write
// outside a transaction goes through exec, every transaction through tx
// (SQLite transactions here are IMMEDIATE: all of them write-lock).
func (s *Store) lockWrites() (unlock func()) {
	if s.dialect != SQLite {
		return func() {}
	}
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// exec runs one writing statement outside a transaction.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	unlock := s.lockWrites()
	defer unlock()
	return s.db.ExecContext(ctx, q, args...)
}

// queryRow runs a cached prepared statement returning one row.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.prepared(ctx, q)
	if err != nil {
		return s.db.QueryRowContext(ctx, q, args...) // reports the same error through Scan
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a cached prepared statement returning rows.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *Store) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if v, ok := s.stmts.Load(q); ok {
		if st, ok := v.(*sql.Stmt); ok {
			return st, nil
		}
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		if ps, ok := prev.(*sql.Stmt); ok {
			st.Close()
			return ps, nil
		}
	}
	return st, nil
}

// Open connects to the database named by dsn and applies pending migrations.
// An empty dsn means SQLite at dataDir/unikube.db; "sqlite:PATH" or
// "sqlite://PATH" names another SQLite file; "postgres://..." or
// "postgresql://..." selects PostgreSQL.
func Open(ctx context.Context, dsn, dataDir string) (*Store, error) {
	var (
		db      *sql.DB
		dialect Dialect
		err     error
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		dialect = Postgres
		db, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
	case dsn == "" || strings.HasPrefix(dsn, "sqlite:"):
		dialect = SQLite
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
		if path == "" {
			path = filepath.Join(dataDir, "unikube.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "foreign_keys(1)")
		// IMMEDIATE transactions take the write lock up front, so two writers
		// wait on busy_timeout instead of failing with SQLITE_BUSY on upgrade.
		q.Set("_txlock", "immediate")
		db, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
		db.SetConnMaxIdleTime(0)
	default:
		return nil, fmt.Errorf("unsupported --database %q: use postgres://... or sqlite:PATH (or nothing for the embedded default)", redact(dsn))
	}
	s := &Store{db: db, dialect: dialect}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// redact hides a password in a DSN for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Dialect reports the engine in use.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, v any) bool {
		if st, ok := v.(*sql.Stmt); ok {
			st.Close()
		}
		return true
	})
	return s.db.Close()
}

// Ping checks the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func nanos(t time.Time) int64 { return t.UTC().UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullNanos(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: nanos(*t), Valid: true}
}

func ptrTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// isUnique reports whether err is a unique-constraint violation on either engine.
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || // sqlite
		strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "duplicate key value") // postgres
}

// tx runs fn in a transaction and commits it, rolling back on error.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	unlock := s.lockWrites()
	defer unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
