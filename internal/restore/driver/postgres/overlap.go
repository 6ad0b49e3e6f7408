package postgres

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// overlapLoad says whether the archive is restored as it downloads (see
// DataLoadStream): only into a fresh database (strategy swap), where a
// stream that breaks off leaves nothing but a staging database to drop.
func overlapLoad(t driver.Target, strategy string) bool {
	return strategy == StrategySwap && Jobs(t) > 1 && t.Option(OptDataLoad, DefaultDataLoad) == DataLoadStream
}

// pgRestoreOverlap restores the archive into the fresh database db while it
// downloads: one pg_restore reads the stream and restores the schema and
// the data (pg_restore -j needs a seekable file, so it could only start
// once the whole archive is on disk), and a copy of the stream goes to a
// temp file, from which pg_restore -j N then builds the indexes and
// constraints (post-data), the part that gains most from parallel jobs.
func (d *Driver) pgRestoreOverlap(ctx context.Context, env []string, src driver.ChunkSource, db string, c statepkg.Component, t driver.Target, p driver.Progress, res *driver.ComponentResult) error {
	bin, err := tool("pg_restore", t.Options)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(t.Option(OptTempDir, ""), "unikube-pg-*.dump")
	if err != nil {
		return fmt.Errorf("stage archive (set option %s to a directory with %d bytes free): %w", OptTempDir, c.Size, err)
	}
	archive := f.Name()
	defer os.Remove(archive)
	defer f.Close()

	base := append([]string{"--exit-on-error", "--no-password"}, restoreFlags(t)...)
	r, err := src.Open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	pr := &driver.ProgressReader{R: r, P: p, Component: c.Name, Phase: driver.PhaseRestore}
	bw := bufio.NewWriterSize(f, 1<<20)
	// A failed write of the copy (a full disk) is a read error of the
	// stream: Feed then kills pg_restore before it sees the end of input.
	stage := stageWriter{w: bw, what: "keep a copy of the archive for the index build", dir: t.Option(OptTempDir, os.TempDir()), size: c.Size}
	tee := io.TeeReader(pr, stage)
	cmd := exec.CommandContext(ctx, bin, slices.Concat(base, []string{"--section=pre-data", "--section=data", "-d", db})...)
	cmd.Env = env
	stderr := &driver.Tail{}
	cmd.Stderr, cmd.Stdout = stderr, stderr
	if err := driver.Feed(ctx, cmd, "pg_restore --section=pre-data --section=data", tee, pr, c.Size, stderr, res); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return stage.wrap(err)
	}
	if err := f.Close(); err != nil {
		return stage.wrap(err)
	}
	p.Emit(driver.Event{Component: c.Name, Phase: PhasePostData})
	post := exec.CommandContext(ctx, bin, slices.Concat(base, []string{"--section=post-data", "-j", strconv.Itoa(Jobs(t)), "-d", db, archive})...)
	post.Env = env
	stderr = &driver.Tail{}
	post.Stderr, post.Stdout = stderr, stderr
	return driver.ToolError(ctx, "pg_restore --section=post-data", post.Run(), stderr)
}

// stageWriter writes the archive to a temp file and says, when that
// fails, what the file is for and what to do.
type stageWriter struct {
	w    io.Writer
	what string
	dir  string
	size int64
}

func (s stageWriter) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	if err != nil {
		err = s.wrap(err)
	}
	return n, err
}

func (s stageWriter) wrap(err error) error {
	return fmt.Errorf("%s in %s (it needs %d MB free; set option %s to another directory): %w", s.what, s.dir, s.size>>20, OptTempDir, err)
}
