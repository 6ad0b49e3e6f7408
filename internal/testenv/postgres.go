package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Postgres is a running PostgreSQL server. User is a superuser with
// scram-sha-256 password authentication over TCP on 127.0.0.1.
type Postgres struct {
	Host     string
	Port     int
	User     string
	Password string
	BinDir   string // where initdb/postgres came from; use its pg_dump, pg_restore, psql
	DataDir  string
}

// PostgresOptions tunes the server. The zero value is tuned for speed.
type PostgresOptions struct {
	// Fsync keeps fsync, synchronous_commit and full_page_writes on, for
	// tests of durability. Off by default: test data need not survive a crash.
	Fsync bool
}

// StartPostgres starts a PostgreSQL server for the test and stops it at cleanup.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	return StartPostgresWith(t, PostgresOptions{})
}

// StartPostgresWith is StartPostgres with options.
func StartPostgresWith(t testing.TB, opts PostgresOptions) *Postgres {
	t.Helper()
	pg, stop, err := RunPostgresWith(t.Context(), "", opts)
	handle(t, "postgres", stop, err)
	return pg
}

// RunPostgres starts a PostgreSQL server in a new directory under dir
// (os.TempDir() when empty). When running as root the server runs as the
// `postgres` system user, which must be able to traverse dir. The returned
// stop function shuts it down and removes the directory.
func RunPostgres(ctx context.Context, dir string) (*Postgres, func() error, error) {
	return RunPostgresWith(ctx, dir, PostgresOptions{})
}

// RunPostgresWith is RunPostgres with options.
func RunPostgresWith(ctx context.Context, dir string, opts PostgresOptions) (*Postgres, func() error, error) {
	initdb, err := findBinary("initdb", postgresBinDirs()...)
	if err != nil {
		return nil, nil, err
	}
	binDir := filepath.Dir(initdb)
	server, err := findBinary("postgres", binDir)
	if err != nil {
		return nil, nil, err
	}
	cred, err := serverCredential("postgres", "PostgreSQL must run as the `postgres` system user, which does not exist (install the postgresql package)")
	if err != nil {
		return nil, nil, err
	}

	root, err := makeDir(dir, "pg")
	if err != nil {
		return nil, nil, err
	}
	cleanup := stopper(nil, root)
	fail := func(err error) (*Postgres, func() error, error) {
		_ = cleanup()
		return nil, nil, err
	}
	if err := chownForServer(root, cred); err != nil {
		return fail(err)
	}

	pg := &Postgres{
		Host:     "127.0.0.1",
		User:     "unikube",
		Password: randomSecret(16),
		BinDir:   binDir,
		DataDir:  filepath.Join(root, "data"),
	}
	// A data dir from a template (see template.go) carries the template's
	// bootstrap password; the server's own password is set once it is up.
	bootstrapPw, err := postgresDataDir(ctx, initdb, server, pg, root, cred)
	if err != nil {
		return fail(err)
	}
	password := pg.Password
	pg.Password = bootstrapPw

	fsync := "off"
	if opts.Fsync {
		fsync = "on"
	}
	proc, err := startWithPortRetry(func(port int) (*process, error) {
		p, err := startProcess(procSpec{
			name: "postgres",
			path: server,
			args: []string{
				"-D", pg.DataDir,
				"-p", strconv.Itoa(port),
				"-c", "listen_addresses=127.0.0.1",
				"-c", "unix_socket_directories=" + root,
				"-c", "fsync=" + fsync,
				"-c", "synchronous_commit=" + fsync,
				"-c", "full_page_writes=" + fsync,
				"-c", "logging_collector=off",
			},
			dir:     root,
			logPath: filepath.Join(root, "postgres.log"),
			cred:    cred,
			stopSig: syscall.SIGINT, // "fast" shutdown: no waiting for clients
		})
		if err != nil {
			return nil, err
		}
		pg.Port = port
		if err := p.waitReady(ctx, pg.ping); err != nil {
			_ = p.stop()
			return nil, err
		}
		return p, nil
	})
	if err != nil {
		return fail(fmt.Errorf("start postgres in %s: %w", root, err))
	}
	stop := stopper(proc, root)
	if password != bootstrapPw {
		if err := pg.setPassword(ctx, password); err != nil {
			_ = stop()
			return nil, nil, err
		}
	}
	return pg, stop, nil
}

// postgresDataDir fills pg.DataDir from the template, or with initdb (then
// publishing it as the template), and returns the password it was made with.
func postgresDataDir(ctx context.Context, initdb, server string, pg *Postgres, root string, cred *syscall.Credential) (string, error) {
	args := []string{"-U", pg.User, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"}
	owner := "self"
	if cred != nil {
		owner = fmt.Sprintf("%d:%d", cred.Uid, cred.Gid)
	}
	key := templateKey([]string{initdb, server}, append(args, owner))
	if tmpl, ok := lookupTemplate("postgres", key); ok {
		pw, rerr := os.ReadFile(filepath.Join(tmpl, "bootstrap-password"))
		if rerr == nil {
			if err := copyTree(filepath.Join(tmpl, "data"), pg.DataDir, cred); err != nil {
				return "", fmt.Errorf("copy postgres template %s: %w", tmpl, err)
			}
			return strings.TrimSpace(string(pw)), nil
		}
	}

	// The password reaches initdb through a file, never a command line.
	pwfile := filepath.Join(root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(pg.Password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write postgres password file: %w", err)
	}
	defer os.Remove(pwfile)
	if err := chownForServer(pwfile, cred); err != nil {
		return "", err
	}
	if err := runOnce(ctx, "initdb", initdb, append([]string{"-D", pg.DataDir, "--pwfile=" + pwfile}, args...), cred); err != nil {
		return "", err
	}
	// Only costs speed if it fails.
	_ = publishTemplate("postgres", key, pg.DataDir, map[string][]byte{"bootstrap-password": []byte(pg.Password)})
	return pg.Password, nil
}

// setPassword replaces the bootstrap password of a templated server.
func (p *Postgres) setPassword(ctx context.Context, password string) error {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to postgres on port %d: %w", p.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// ALTER ROLE takes no parameters; the password is hex, quoting is belt and braces.
	q := "ALTER ROLE " + pgx.Identifier{p.User}.Sanitize() + " PASSWORD '" + strings.ReplaceAll(password, "'", "''") + "'"
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("set postgres password: %w", err)
	}
	p.Password = password
	return nil
}

// serverCredential returns the identity to run a server that refuses root
// as: system user name when we are root, nil (ourselves) otherwise;
// missing says what to install when the user does not exist.
func serverCredential(name, missing string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root, %s: %w", missing, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of %s %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of %s %q: %w", name, u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chownForServer(path string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("hand %s to uid %d: %w", path, cred.Uid, err)
	}
	return nil
}

// URL is a connection URL for database db (pgx, lib/pq, psql all accept it).
func (p *Postgres) URL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(p.User, p.Password),
		Host:     net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Env is the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE)
// for running pg_dump, pg_restore or psql against this server; append it to
// os.Environ() or a minimal environment.
func (p *Postgres) Env() []string {
	return []string{
		"PGHOST=" + p.Host,
		"PGPORT=" + strconv.Itoa(p.Port),
		"PGUSER=" + p.User,
		"PGPASSWORD=" + p.Password,
		"PGSSLMODE=disable",
	}
}

// CreateDatabase creates database name or fails the test.
func (p *Postgres) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	if err := p.CreateDatabaseCtx(t.Context(), name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// CreateDatabaseCtx creates database name.
func (p *Postgres) CreateDatabaseCtx(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to postgres on port %d: %w", p.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create postgres database %q: %w", name, err)
	}
	return nil
}

func (p *Postgres) ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
