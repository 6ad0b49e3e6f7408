package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Redis is a running Redis server with a password, 16 databases and no
// persistence, on 127.0.0.1.
type Redis struct {
	Host     string
	Port     int
	Password string
	Dir      string // working directory (config, log)
}

// StartRedis starts a Redis server for the test and stops it at cleanup.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r, stop, err := RunRedis(t.Context(), "")
	handle(t, "redis", stop, err)
	return r
}

// RunRedis starts a Redis server in a new directory under dir (os.TempDir()
// when empty). The returned stop function shuts it down and removes the
// directory.
func RunRedis(ctx context.Context, dir string) (*Redis, func() error, error) {
	server, err := findBinary("redis-server")
	if err != nil {
		return nil, nil, err
	}
	root, err := makeDir(dir, "redis")
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Redis, func() error, error) {
		_ = stopper(nil, root)()
		return nil, nil, err
	}
	r := &Redis{Host: "127.0.0.1", Password: randomSecret(16), Dir: root}
	proc, err := startWithPortRetry(func(port int) (*process, error) {
		// Settings go through a config file so the password stays off the
		// command line.
		conf := filepath.Join(root, "redis.conf")
		if err := os.WriteFile(conf, []byte(redisConfig(root, port, r.Password)), 0o600); err != nil {
			return nil, fmt.Errorf("write redis config: %w", err)
		}
		p, err := startProcess(procSpec{
			name:    "redis-server",
			path:    server,
			args:    []string{conf},
			dir:     root,
			logPath: filepath.Join(root, "redis.log"),
		})
		if err != nil {
			return nil, err
		}
		r.Port = port
		if err := p.waitReady(ctx, r.ping); err != nil {
			_ = p.stop()
			return nil, err
		}
		return p, nil
	})
	if err != nil {
		return fail(fmt.Errorf("start redis in %s: %w", root, err))
	}
	return r, stopper(proc, root), nil
}

func redisConfig(dir string, port int, password string) string {
	lines := []string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"requirepass " + password,
		"dir " + dir,
		`save ""`,
		"appendonly no",
		"databases 16",
		"daemonize no",
		`logfile ""`,
		"protected-mode yes",
	}
	return strings.Join(lines, "\n") + "\n"
}

// Addr is host:port, for redis.Options.Addr.
func (r *Redis) Addr() string {
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
}

// URL is redis://:PASSWORD@127.0.0.1:PORT/DB (redis.ParseURL accepts it).
func (r *Redis) URL(db int) string {
	u := url.URL{
		Scheme: "redis",
		User:   url.UserPassword("", r.Password),
		Host:   r.Addr(),
		Path:   "/" + strconv.Itoa(db),
	}
	return u.String()
}

func (r *Redis) ping(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{
		Addr: r.Addr(), Password: r.Password,
		MaxRetries: -1, DisableIdentity: true,
	})
	defer c.Close()
	return c.Ping(ctx).Err()
}
