// Command unikube-platform is the Unikube State platform server: it stores
// named states and cluster scripts and decides who may use them.
//
//	unikube-platform            serve (127.0.0.1:8080, ./unikube-data/)
//	unikube-platform gc         delete chunks no version references
//
// Every flag has an environment variable (UNIKUBE_LISTEN, UNIKUBE_DATA_DIR,
// UNIKUBE_DATABASE, UNIKUBE_BLOB_STORE, UNIKUBE_TLS_CERT, UNIKUBE_TLS_KEY,
// UNIKUBE_ADMIN_TOKEN, UNIKUBE_MAX_BODY_BYTES, UNIKUBE_METRICS_LISTEN,
// UNIKUBE_READ_TIMEOUT, UNIKUBE_PROJECT_UPLOAD_QUOTA, ...). Prefer the
// environment for secrets: a database password belongs in PGPASSWORD, S3 keys in
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/api"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/gc"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "unikube-platform:", err)
		os.Exit(1)
	}
}

type config struct {
	listen   string
	opts     server.Options
	logJSON  bool
	logLevel string
	// gc subcommand
	gcGrace  time.Duration
	gcDryRun bool
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func parse(name string, args []string, getenv func(string) string, stderr io.Writer, gcMode bool) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	maxBody, err := strconv.ParseInt(envOr(getenv, "UNIKUBE_MAX_BODY_BYTES", "67108864"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("UNIKUBE_MAX_BODY_BYTES: %w", err)
	}
	jobTTL, err := time.ParseDuration(envOr(getenv, "UNIKUBE_JOB_TOKEN_TTL", "1h"))
	if err != nil {
		return nil, fmt.Errorf("UNIKUBE_JOB_TOKEN_TTL: %w", err)
	}
	grace, err := time.ParseDuration(envOr(getenv, "UNIKUBE_GC_GRACE", "1h"))
	if err != nil {
		return nil, fmt.Errorf("UNIKUBE_GC_GRACE: %w", err)
	}
	quota, err := strconv.ParseInt(envOr(getenv, "UNIKUBE_PROJECT_UPLOAD_QUOTA", "0"), 10, 64)
	if err != nil || quota < 0 {
		return nil, fmt.Errorf("UNIKUBE_PROJECT_UPLOAD_QUOTA: want a number of bytes >= 0 (0: no quota), got %q", getenv("UNIKUBE_PROJECT_UPLOAD_QUOTA"))
	}
	durations := []struct {
		dst       *time.Duration
		flag, env string
		def       time.Duration
		help      string
	}{
		{&c.opts.Timeouts.ReadHeader, "read-header-timeout", "UNIKUBE_READ_HEADER_TIMEOUT", server.DefaultReadHeaderTimeout, "time a client has to send a request's headers"},
		{&c.opts.Timeouts.Read, "read-timeout", "UNIKUBE_READ_TIMEOUT", server.DefaultReadTimeout, "time a client has to send a whole request, body included (a chunk upload of up to 64 MiB)"},
		{&c.opts.Timeouts.Write, "write-timeout", "UNIKUBE_WRITE_TIMEOUT", server.DefaultWriteTimeout, "how long one write of a response may stall (each write extends it, so long downloads that keep flowing are not cut off)"},
		{&c.opts.Timeouts.Idle, "idle-timeout", "UNIKUBE_IDLE_TIMEOUT", server.DefaultIdleTimeout, "how long a kept-alive connection may wait for its next request"},
	}
	for _, d := range durations {
		v := d.def
		if e := getenv(d.env); e != "" {
			if v, err = time.ParseDuration(e); err != nil || v <= 0 {
				return nil, fmt.Errorf("%s=%q: want a positive duration such as 30s or 10m", d.env, e)
			}
		}
		fs.DurationVar(d.dst, d.flag, v, d.help+" ("+d.env+")")
	}
	fs.StringVar(&c.opts.MetricsListen, "metrics-listen", envOr(getenv, "UNIKUBE_METRICS_LISTEN", ""), "also serve /metrics without a token on this address, e.g. 127.0.0.1:9090 or :9090 inside a cluster (on --listen, /metrics needs the admin token) (UNIKUBE_METRICS_LISTEN)")
	fs.StringVar(&c.listen, "listen", envOr(getenv, "UNIKUBE_LISTEN", "127.0.0.1:8080"), "address to listen on (UNIKUBE_LISTEN)")
	fs.StringVar(&c.opts.DataDir, "data-dir", envOr(getenv, "UNIKUBE_DATA_DIR", "unikube-data"), "directory of the embedded database and chunk store (UNIKUBE_DATA_DIR)")
	fs.StringVar(&c.opts.Database, "database", envOr(getenv, "UNIKUBE_DATABASE", ""), "metadata database: empty for SQLite in --data-dir, or postgres://user@host/db (password in PGPASSWORD) (UNIKUBE_DATABASE)")
	fs.StringVar(&c.opts.BlobStore, "blob-store", envOr(getenv, "UNIKUBE_BLOB_STORE", ""), "chunk store: empty for --data-dir/chunks, a directory, or s3://bucket?endpoint=http://host:9000&region=us-east-1 (keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) (UNIKUBE_BLOB_STORE)")
	fs.StringVar(&c.opts.TLSCert, "tls-cert", envOr(getenv, "UNIKUBE_TLS_CERT", ""), "TLS certificate file; serves HTTPS with --tls-key (UNIKUBE_TLS_CERT)")
	fs.StringVar(&c.opts.TLSKey, "tls-key", envOr(getenv, "UNIKUBE_TLS_KEY", ""), "TLS private key file (UNIKUBE_TLS_KEY)")
	fs.StringVar(&c.opts.AdminToken, "admin-token", "", "admin token to bootstrap or rotate; prefer UNIKUBE_ADMIN_TOKEN or --admin-token-file, a flag shows in ps")
	adminFile := fs.String("admin-token-file", envOr(getenv, "UNIKUBE_ADMIN_TOKEN_FILE", ""), "file holding the admin token (UNIKUBE_ADMIN_TOKEN_FILE)")
	secretKeyFile := fs.String("secret-key-file", envOr(getenv, "UNIKUBE_SECRET_KEY_FILE", ""), "file holding the key that seals sensitive script variable defaults at rest: 32 random bytes, base64 (UNIKUBE_SECRET_KEY_FILE; or the key itself in UNIKUBE_SECRET_KEY)")
	fs.Int64Var(&c.opts.MaxBodyBytes, "max-body-bytes", maxBody, "largest request body accepted: chunks, manifests, JSON (UNIKUBE_MAX_BODY_BYTES)")
	fs.DurationVar(&c.opts.JobTokenTTL, "job-token-ttl", jobTTL, "default lifetime of job and upload tokens, at most 6h (UNIKUBE_JOB_TOKEN_TTL)")
	fs.DurationVar(&c.opts.GCGrace, "gc-grace", grace, "garbage collection spares unreferenced chunks younger than this (in-flight uploads) (UNIKUBE_GC_GRACE)")
	fs.Int64Var(&c.opts.ProjectUploadQuota, "project-upload-quota", quota, "bytes of uploaded chunks (compressed) each project may hold; an upload past it answers 507; 0: no quota (UNIKUBE_PROJECT_UPLOAD_QUOTA)")
	fs.StringVar(&c.opts.OIDC.Issuer, "oidc-issuer", envOr(getenv, "UNIKUBE_OIDC_ISSUER", ""), "trust the ID tokens (and JWT access tokens) of this OpenID Connect provider beside platform tokens, e.g. https://login.example.com/realms/acme; empty: OIDC off (UNIKUBE_OIDC_ISSUER)")
	fs.StringVar(&c.opts.OIDC.ClientID, "oidc-client-id", envOr(getenv, "UNIKUBE_OIDC_CLIENT_ID", ""), "the OIDC client helm state login uses; tokens must carry it as audience (UNIKUBE_OIDC_CLIENT_ID)")
	audiences := fs.String("oidc-audiences", envOr(getenv, "UNIKUBE_OIDC_AUDIENCES", ""), "more audiences to accept, comma-separated, e.g. the audience CI workload identity tokens are requested for (UNIKUBE_OIDC_AUDIENCES)")
	fs.StringVar(&c.opts.OIDC.UsernameClaim, "oidc-username-claim", envOr(getenv, "UNIKUBE_OIDC_USERNAME_CLAIM", auth.DefaultUsernameClaim), "claim holding the user name: the identity acts as user:NAME (UNIKUBE_OIDC_USERNAME_CLAIM)")
	fs.StringVar(&c.opts.OIDC.GroupsClaim, "oidc-groups-claim", envOr(getenv, "UNIKUBE_OIDC_GROUPS_CLAIM", auth.DefaultGroupsClaim), "claim holding the groups: grants to group:NAME follow them (UNIKUBE_OIDC_GROUPS_CLAIM)")
	exchangeTTL, err := time.ParseDuration(envOr(getenv, "UNIKUBE_OIDC_EXCHANGE_TTL", api.DefaultExchangeTTL.String()))
	if err != nil {
		return nil, fmt.Errorf("UNIKUBE_OIDC_EXCHANGE_TTL: %w", err)
	}
	fs.DurationVar(&c.opts.OIDCExchangeTTL, "oidc-exchange-ttl", exchangeTTL, "lifetime of platform tokens exchanged for OIDC tokens (POST /api/v1/token-exchange), at most 12h (UNIKUBE_OIDC_EXCHANGE_TTL)")
	fs.BoolVar(&c.logJSON, "log-json", envOr(getenv, "UNIKUBE_LOG_FORMAT", "text") == "json", "log JSON lines instead of text (UNIKUBE_LOG_FORMAT=json)")
	fs.StringVar(&c.logLevel, "log-level", envOr(getenv, "UNIKUBE_LOG_LEVEL", "info"), "debug, info, warn or error (UNIKUBE_LOG_LEVEL)")
	if gcMode {
		fs.BoolVar(&c.gcDryRun, "dry-run", false, "report what would be deleted, delete nothing")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: subcommands are gc and version", fs.Arg(0))
	}
	for _, a := range strings.Split(*audiences, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.opts.OIDC.Audiences = append(c.opts.OIDC.Audiences, a)
		}
	}
	if c.opts.AdminToken == "" {
		c.opts.AdminToken = getenv("UNIKUBE_ADMIN_TOKEN")
	}
	if c.opts.AdminToken == "" && *adminFile != "" {
		b, err := os.ReadFile(*adminFile)
		if err != nil {
			return nil, fmt.Errorf("read --admin-token-file: %w", err)
		}
		c.opts.AdminToken = strings.TrimSpace(string(b))
	}
	if *secretKeyFile != "" {
		b, err := os.ReadFile(*secretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read --secret-key-file: %w", err)
		}
		c.opts.SecretKey = strings.TrimSpace(string(b))
	}
	if c.opts.ProjectUploadQuota < 0 {
		return nil, errors.New("--project-upload-quota must be >= 0 (0: no quota)")
	}
	for _, d := range durations {
		if *d.dst <= 0 {
			return nil, fmt.Errorf("--%s must be a positive duration such as 30s or 10m", d.flag)
		}
	}
	if (c.opts.TLSCert == "") != (c.opts.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	c.gcGrace = c.opts.GCGrace
	c.opts.Getenv = getenv
	return c, nil
}

func newLogger(c *config, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	ho := &slog.HandlerOptions{Level: lvl}
	if c.logJSON {
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return slog.New(slog.NewTextHandler(w, ho)), nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "gc":
			return runGC(ctx, args[1:], getenv, stdout, stderr)
		case "version":
			fmt.Fprintf(stdout, "unikube-platform %s (API v1)\n", buildinfo.Get())
			return nil
		case "serve":
			args = args[1:]
		}
	}
	c, err := parse("unikube-platform", args, getenv, stderr, false)
	if err != nil {
		return err
	}
	log, err := newLogger(c, stderr)
	if err != nil {
		return err
	}
	c.opts.Logger = log
	srv, err := server.New(ctx, c.opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	if srv.GeneratedAdminToken != "" {
		// Printed once, on first start; only its hash is stored.
		fmt.Fprintf(stdout, "Admin token (shown only now; keep it safe):\n\n    %s\n\nUse it as UNIKUBE_TOKEN, or pass --admin-token/UNIKUBE_ADMIN_TOKEN to rotate it.\n", srv.GeneratedAdminToken)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (use --listen to choose another address)", c.listen, err)
	}
	scheme := "http"
	if c.opts.TLSCert != "" {
		scheme = "https"
	}
	log.Info("listening", "url", scheme+"://"+ln.Addr().String(), "database", srv.Store.Dialect(), "blob_store", srv.Blobs.String(), "data_dir", c.opts.DataDir)
	err = srv.Serve(ctx, ln)
	log.Info("stopped")
	return err
}

func runGC(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parse("unikube-platform gc", args, getenv, stderr, true)
	if err != nil {
		return err
	}
	log, err := newLogger(c, stderr)
	if err != nil {
		return err
	}
	c.opts.Logger = log
	// A server may be running on the same stores: leave its writes alone.
	c.opts.Offline = true
	srv, err := server.New(ctx, c.opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	res, err := gc.Run(ctx, srv.Store, srv.Blobs, gc.Options{Grace: c.gcGrace, DryRun: c.gcDryRun})
	if err != nil {
		return err
	}
	verb := "deleted"
	if res.DryRun {
		verb = "would delete"
	}
	fmt.Fprintf(stdout, "scanned %d chunks, %d referenced, %d too young to collect; %s %d chunks (%d bytes)\n",
		res.Scanned, res.Referenced, res.Young, verb, res.Deleted, res.DeletedBytes)
	return nil
}
