package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a running MariaDB server. User (root) has every privilege and a
// password, over TCP on 127.0.0.1.
type MariaDB struct {
	Host     string
	Port     int
	User     string
	Password string
	DataDir  string
}

// StartMariaDB starts a MariaDB server for the test and stops it at cleanup.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	m, stop, err := RunMariaDB(t.Context(), "")
	handle(t, "mariadb", stop, err)
	return m
}

// RunMariaDB starts a MariaDB server in a new directory under dir
// (os.TempDir() when empty). The returned stop function shuts it down and
// removes the directory.
func RunMariaDB(ctx context.Context, dir string) (*MariaDB, func() error, error) {
	server, err := findBinary("mariadbd")
	if err != nil {
		return nil, nil, err
	}
	installDB, err := findBinary("mariadb-install-db")
	if err != nil {
		return nil, nil, err
	}
	root, err := makeDir(dir, "my")
	if err != nil {
		return nil, nil, err
	}
	cleanup := stopper(nil, root)
	fail := func(err error) (*MariaDB, func() error, error) {
		_ = cleanup()
		return nil, nil, err
	}

	m := &MariaDB{
		Host:     "127.0.0.1",
		User:     "root",
		Password: randomSecret(16),
		DataDir:  filepath.Join(root, "data"),
	}
	// mariadbd must be told explicitly that running as root is intended.
	var asUser []string
	if os.Geteuid() == 0 {
		asUser = []string{"--user=root"}
	}
	installArgs := append([]string{
		"--no-defaults",
		"--basedir=" + filepath.Dir(filepath.Dir(server)),
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--skip-name-resolve",
		"--skip-log-bin",
	}, append(mariadbFastArgs(), asUser...)...)
	key := templateKey([]string{server, installDB}, installArgs)
	if tmpl, ok := lookupTemplate("mariadb", key); ok {
		if err := copyTree(filepath.Join(tmpl, "data"), m.DataDir, nil); err != nil {
			return fail(fmt.Errorf("copy mariadb template %s: %w", tmpl, err))
		}
	} else {
		if err := runOnce(ctx, "mariadb-install-db", installDB, append([]string{"--datadir=" + m.DataDir}, installArgs...), nil); err != nil {
			return fail(err)
		}
		_ = publishTemplate("mariadb", key, m.DataDir, nil) // only costs speed if it fails
	}

	// The first start sets the root password from an init file, so the
	// password never appears on a command line and real auth is on from the
	// first connection.
	initFile := filepath.Join(root, "init.sql")
	if err := os.WriteFile(initFile, []byte(mariadbInitSQL(m.Password)), 0o600); err != nil {
		return fail(fmt.Errorf("write mariadb init file: %w", err))
	}
	proc, err := startWithPortRetry(func(port int) (*process, error) {
		p, err := startProcess(procSpec{
			name: "mariadbd",
			path: server,
			args: append([]string{
				"--no-defaults",
				"--datadir=" + m.DataDir,
				"--port=" + strconv.Itoa(port),
				"--bind-address=127.0.0.1",
				"--socket=" + filepath.Join(root, "mysqld.sock"),
				"--pid-file=" + filepath.Join(root, "mysqld.pid"),
				"--tmpdir=" + root,
				"--init-file=" + initFile,
				"--skip-name-resolve",
				"--skip-log-bin",
				"--character-set-server=utf8mb4",
				"--collation-server=utf8mb4_unicode_ci",
			}, append(mariadbFastArgs(), asUser...)...),
			dir:     root,
			logPath: filepath.Join(root, "mariadbd.log"),
		})
		if err != nil {
			return nil, err
		}
		m.Port = port
		if err := p.waitReady(ctx, m.ping); err != nil {
			_ = p.stop()
			return nil, err
		}
		return p, nil
	})
	_ = os.Remove(initFile)
	if err != nil {
		return fail(fmt.Errorf("start mariadb in %s: %w", root, err))
	}
	return m, stopper(proc, root), nil
}

// mariadbFastArgs trade durability for speed: test data need not survive a
// crash, and the bootstrap otherwise spends seconds waiting on fsync.
func mariadbFastArgs() []string {
	return []string{
		"--innodb-flush-method=nosync",
		"--innodb-flush-log-at-trx-commit=0",
		"--innodb-doublewrite=0",
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=16M",
	}
}

// mariadbInitSQL gives root the password on every loopback host entry and
// removes anonymous users, which would otherwise shadow root over TCP.
func mariadbInitSQL(password string) string {
	pw := quoteSQL(password)
	var b strings.Builder
	b.WriteString("DELETE FROM mysql.global_priv WHERE User = '';\nFLUSH PRIVILEGES;\n")
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "%"} {
		h := quoteSQL(host)
		fmt.Fprintf(&b, "CREATE USER IF NOT EXISTS 'root'@%s;\n", h)
		fmt.Fprintf(&b, "ALTER USER 'root'@%s IDENTIFIED BY %s;\n", h, pw)
		fmt.Fprintf(&b, "GRANT ALL PRIVILEGES ON *.* TO 'root'@%s WITH GRANT OPTION;\n", h)
	}
	b.WriteString("FLUSH PRIVILEGES;\n")
	return b.String()
}

func quoteSQL(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// URL is a mysql:// URL for database db.
func (m *MariaDB) URL(db string) string {
	u := url.URL{
		Scheme: "mysql",
		User:   url.UserPassword(m.User, m.Password),
		Host:   net.JoinHostPort(m.Host, strconv.Itoa(m.Port)),
		Path:   "/" + db,
	}
	return u.String()
}

// DSN is the go-sql-driver/mysql form for database db ("" for none).
func (m *MariaDB) DSN(db string) string {
	return m.config(db).FormatDSN()
}

func (m *MariaDB) config(db string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = m.User
	cfg.Passwd = m.Password
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	cfg.DBName = db
	cfg.MultiStatements = true
	cfg.ParseTime = true
	return cfg
}

// Env is the environment for the mariadb/mysql client tools
// (MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_PWD); pass --user=User on their command line.
func (m *MariaDB) Env() []string {
	return []string{
		"MYSQL_HOST=" + m.Host,
		"MYSQL_TCP_PORT=" + strconv.Itoa(m.Port),
		"MYSQL_PWD=" + m.Password,
	}
}

// CreateDatabase creates database name (utf8mb4) or fails the test.
func (m *MariaDB) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	if err := m.CreateDatabaseCtx(t.Context(), name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// CreateDatabaseCtx creates database name (utf8mb4).
func (m *MariaDB) CreateDatabaseCtx(ctx context.Context, name string) error {
	db, err := sql.Open("mysql", m.DSN(""))
	if err != nil {
		return fmt.Errorf("open mariadb on port %d: %w", m.Port, err)
	}
	defer db.Close()
	q := "CREATE DATABASE `" + strings.ReplaceAll(name, "`", "``") + "` CHARACTER SET utf8mb4"
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create mariadb database %q: %w", name, err)
	}
	return nil
}

// ping is polled while the server starts; the driver's own logger would
// print every refused attempt, so it is silenced here.
func (m *MariaDB) ping(ctx context.Context) error {
	cfg := m.config("")
	cfg.Logger = mysql.Logger(log.New(io.Discard, "", 0))
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	return db.PingContext(ctx)
}
