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

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/sqlfilter"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Capture implements driver.Driver. A live database is dumped with
// `pg_dump -Fc -Z0` into a temp file (a seekable archive carries data
// offsets, so pg_restore -j can seek; no compression, so chunks dedupe and
// zstd compresses them), then streamed to w. A local archive or .sql file is
// streamed as it is.
func (d *Driver) Capture(ctx context.Context, src driver.Source, w io.Writer, p driver.Progress) (driver.CaptureResult, error) {
	name := src.Option("component", "postgres")
	if path, ok := driver.LocalPath(src.URL); ok {
		return captureFile(ctx, path, w, p, name, src.Options)
	}
	e, err := parseEndpoint(src.URL)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	bin, err := tool("pg_dump", src.Options)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	tv, err := toolVersion(ctx, bin)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	conn, err := e.connect(ctx, e.db)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	sv, err := serverVersion(ctx, conn)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return driver.CaptureResult{}, err
	}
	if major(tv) < major(sv) {
		return driver.CaptureResult{}, fmt.Errorf("pg_dump %s cannot dump a PostgreSQL %s server: install postgresql-client-%d or set option %s", tv, sv, major(sv), OptBinDir)
	}
	f, err := os.CreateTemp(src.Option(OptTempDir, ""), "unikube-pg-*.dump")
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("temp archive (set option %s): %w", OptTempDir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	args := []string{"-Fc", "-Z", "0", "--no-password", "--exclude-table=public." + MarkerTable, "-f", f.Name(), e.db}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.env()
	stderr := &driver.Tail{}
	cmd.Stderr, cmd.Stdout = stderr, stderr
	p.Emit(driver.Event{Component: name, Phase: driver.PhaseCapture})
	if err := driver.ToolError(ctx, "pg_dump", cmd.Run(), stderr); err != nil {
		return driver.CaptureResult{}, err
	}
	if err := copyWithProgress(ctx, w, f, p, name); err != nil {
		return driver.CaptureResult{}, err
	}
	meta := map[string]string{
		"pgDumpVersion": tv,
		"serverVersion": sv,
		"database":      e.db,
	}
	if meta, err = withArchiveSummary(ctx, meta, f.Name(), src.Options); err != nil {
		return driver.CaptureResult{}, err
	}
	return driver.CaptureResult{Format: FormatCustom, Meta: meta}, nil
}

// withArchiveSummary adds the summary of the archive at path to meta.
func withArchiveSummary(ctx context.Context, meta map[string]string, path string, opts map[string]string) (map[string]string, error) {
	s, err := summarizeArchive(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	return statepkg.SetSummary(meta, s)
}

func captureFile(ctx context.Context, path string, w io.Writer, p driver.Progress, name string, opts map[string]string) (driver.CaptureResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return driver.CaptureResult{}, fmt.Errorf("postgres capture: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(5)
	format := FormatSQL
	meta := map[string]string{"source": "file"}
	sum := newSummarizer()
	var in io.Reader = br
	if bytes.Equal(head, []byte("PGDMP")) {
		format = FormatCustom
		if v := archiveDumpVersion(ctx, path); v != "" {
			meta["pgDumpVersion"] = v
		}
		// A damaged or truncated archive must not become a version that
		// every apply then fails on.
		if err := validateArchive(ctx, path, opts); err != nil {
			return driver.CaptureResult{}, err
		}
		if meta, err = withArchiveSummary(ctx, meta, path, opts); err != nil {
			return driver.CaptureResult{}, err
		}
	} else {
		// An SQL script is packaged only if a restore would run it: the
		// same filter, so hostile or truncated SQL is never captured.
		in = io.TeeReader(sqlfilter.Postgres(br), sum)
	}
	if err := copyWithProgress(ctx, w, in, p, name); err != nil {
		if fe := (*sqlfilter.Error)(nil); errors.As(err, &fe) {
			return driver.CaptureResult{}, fmt.Errorf("postgres capture of %s: the SQL script is refused: %w", path, fe)
		}
		return driver.CaptureResult{}, err
	}
	if format == FormatSQL {
		if s, err := sum.summary(); err == nil {
			if meta, err = statepkg.SetSummary(meta, s); err != nil {
				return driver.CaptureResult{}, err
			}
		}
		// A script the summarizer cannot follow (not pg_dump's) is
		// still a valid capture; the diff says no summary was recorded.
	}
	return driver.CaptureResult{Format: format, Meta: meta}, nil
}

// validateArchive reads the whole custom-format archive at path as a
// restore would, every data block included (pg_restore to /dev/null).
func validateArchive(ctx context.Context, path string, opts map[string]string) error {
	bin, err := tool("pg_restore", opts)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "-f", os.DevNull, path)
	stderr := &driver.Tail{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := driver.ToolError(ctx, "pg_restore", cmd.Run(), stderr); err != nil {
		return fmt.Errorf("postgres capture: %s is damaged or truncated (pg_restore cannot read it; dump it again): %w", path, err)
	}
	return nil
}

// archiveDumpVersion reads "Dumped by pg_dump version" from the archive's TOC.
func archiveDumpVersion(ctx context.Context, path string) string {
	bin, err := tool("pg_restore", nil)
	if err != nil {
		return ""
	}
	out, err := exec.CommandContext(ctx, bin, "-l", path).Output()
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if i := bytes.Index([]byte(line), []byte("Dumped by pg_dump version:")); i >= 0 {
			return string(bytes.TrimSpace([]byte(line[i+len("Dumped by pg_dump version:"):])))
		}
	}
	return ""
}

func copyWithProgress(ctx context.Context, w io.Writer, r io.Reader, p driver.Progress, name string) error {
	pr := &driver.ProgressReader{R: ctxReader{ctx, r}, P: p, Component: name, Phase: driver.PhaseCapture}
	_, err := io.CopyBuffer(w, pr, make([]byte, 1<<20))
	pr.Flush()
	if err != nil {
		return fmt.Errorf("postgres capture: %w", err)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
