package volume

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/drivertest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// capture captures dir into store the way the capture package does: the
// driver streams into WriteComponent, never the whole stream in memory.
func capture(t testing.TB, dir string, store statepkg.ChunkStore) statepkg.Component {
	t.Helper()
	ctx := context.Background()
	pr, pw := io.Pipe()
	var res driver.CaptureResult
	errc := make(chan error, 1)
	cuts := statepkg.NewCuts()
	go func() {
		var err error
		res, err = New().Capture(ctx, driver.Source{URL: dir}, cutPipe{pw, cuts}, nil)
		pw.CloseWithError(err)
		errc <- err
	}()
	c, _, err := statepkg.WriteComponent(ctx, store, statepkg.Component{Name: "files", Kind: statepkg.KindVolume}, pr, statepkg.WriteOptions{Cuts: cuts})
	if cerr := <-errc; cerr != nil {
		t.Fatalf("capture: %v", cerr)
	}
	if err != nil {
		t.Fatalf("write component: %v", err)
	}
	c.Format, c.Files, c.Meta = res.Format, res.Files, res.Meta
	if err := c.Validate(); err != nil {
		t.Fatalf("captured component invalid: %v", err)
	}
	return c
}

// cutPipe passes the driver's entry boundaries to the chunker, as the
// capture package does.
type cutPipe struct {
	*io.PipeWriter
	cuts *statepkg.Cuts
}

func (w cutPipe) MarkCut(off int64, key string) { w.cuts.MarkCut(off, key) }

// apply restores c into dir. The tests comparing a restore with its source
// keep setuid/setgid bits (seed and manySmallFiles hold some);
// TestVolume_ClearsSetIDBitsUnlessKept checks the default.
func apply(t testing.TB, ctx context.Context, c statepkg.Component, store statepkg.ChunkStore, dir string, opts map[string]string) (driver.ComponentResult, error) {
	t.Helper()
	return New().Restore(ctx, c, driver.StoreSource{Store: store, Component: c}, driver.Target{URL: dir, Options: faithful(opts), Digest: "sha256:" + strings.Repeat("a", 64)}, nil)
}

// faithful adds keep_setid=true to opts unless they set it.
func faithful(opts map[string]string) map[string]string {
	out := map[string]string{OptKeepSetID: "true"}
	maps.Copy(out, opts)
	return out
}

func newStore(t testing.TB) *statepkg.DirStore {
	t.Helper()
	s, err := statepkg.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var mtime = time.Date(2024, 3, 1, 12, 30, 15, 123456789, time.UTC)

func write(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// seed builds a tree with every kind of entry the driver preserves.
func seed(t testing.TB, dir string) {
	t.Helper()
	write(t, filepath.Join(dir, "a.txt"), []byte("hello"), 0o640)
	write(t, filepath.Join(dir, "sub/deep/big.bin"), bytes.Repeat([]byte("0123456789abcdef"), 300000), 0o600)
	write(t, filepath.Join(dir, "sub/exec.sh"), []byte("#!/bin/sh\necho hi\n"), os.ModeSetuid|0o755)
	write(t, filepath.Join(dir, "sub/empty"), nil, 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "emptydir"), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("deep/big.bin", filepath.Join(dir, "sub/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a.txt"), filepath.Join(dir, "sub/hard.txt")); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(dir, "sub/empty"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"emptydir", "sub/deep", "sub"} {
		if err := os.Chtimes(filepath.Join(dir, d), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot describes a tree: every entry's type, mode, owner, mtime, content
// or link target, and which entries share an inode.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || reserved(filepath.ToSlash(rel)) {
			if rel != "." && de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no syscall.Stat_t", p)
		}
		desc := fmt.Sprintf("%v %o %d:%d", fi.Mode().Type(), st.Mode&0o7777, st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %s %x", fi.ModTime().UTC().Format(time.RFC3339Nano), statepkg.DigestBytes(b))
			if first, ok := inodes[st.Ino]; ok {
				desc += " =" + first
			} else {
				inodes[st.Ino] = rel
			}
		case fi.IsDir():
			desc += " " + fi.ModTime().UTC().Format(time.RFC3339Nano)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc = "symlink -> " + l
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(t testing.TB, want, got map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected entry %q", k, got[k])
		}
	}
}

func noStaging(t testing.TB, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, stagingPrefix+"*"))
	if len(m) > 0 {
		t.Errorf("staging leftovers: %v", m)
	}
}

func TestVolume_RoundTripPreservesContentModeOwnerMTimeLinks(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "target")
	seed(t, src)
	store := newStore(t)
	c := capture(t, src, store)
	pl, err := New().Plan(context.Background(), c, driver.Target{URL: dst, Options: faithful(nil)})
	if err != nil || pl.Action != driver.ActionCreate {
		t.Fatalf("plan = %+v, %v; want create", pl, err)
	}
	res, err := apply(t, context.Background(), c, store, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesWritten != 6 {
		t.Errorf("files written = %d, want 6", res.FilesWritten)
	}
	diffSnapshots(t, snapshot(t, src), snapshot(t, dst))
	noStaging(t, dst)
	if m := ReadMarker(dst); m == nil || m.ComponentDigest != c.Digest {
		t.Errorf("marker = %+v", m)
	}
}

func TestVolume_ReapplySameDigestFetchesAndWritesNothing(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	seed(t, src)
	store := newStore(t)
	c := capture(t, src, store)
	if _, err := apply(t, context.Background(), c, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	cs := &drivertest.CountingStore{ChunkStore: store}
	pl, err := New().Plan(context.Background(), c, driver.Target{URL: dst, Options: faithful(nil)})
	if err != nil || pl.Action != driver.ActionSkip {
		t.Fatalf("plan = %+v, %v; want skip", pl, err)
	}
	res, err := apply(t, context.Background(), c, cs, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Gets.Load() != 0 || res.FilesWritten != 0 || res.FilesDeleted != 0 {
		t.Errorf("second apply fetched %d chunks, wrote %d files, deleted %d; want 0", cs.Gets.Load(), res.FilesWritten, res.FilesDeleted)
	}
}

func TestVolume_ForceRewritesEveryEntryOfAnAppliedDigest(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	seed(t, src)
	store := newStore(t)
	c := capture(t, src, store)
	if _, err := apply(t, context.Background(), c, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dst, "extra/x"), []byte("x"), 0o644)
	forced := driver.Target{URL: dst, Force: true, Options: faithful(nil)}
	pl, err := New().Plan(context.Background(), c, forced)
	if err != nil || pl.Action != driver.ActionReplace || pl.Current != c.Digest {
		t.Fatalf("forced plan = %+v, %v; want replace of the current digest", pl, err)
	}
	cs := &drivertest.CountingStore{ChunkStore: store}
	res, err := New().Restore(context.Background(), c, driver.StoreSource{Store: cs, Component: c}, forced, nil)
	if err != nil {
		t.Fatal(err)
	}
	var entries int64
	for _, e := range c.Files {
		if e.Type != statepkg.FileDir {
			entries++
		}
	}
	if res.FilesWritten != entries || cs.Gets.Load() == 0 {
		t.Errorf("forced apply wrote %d of %d entries, fetched %d chunks", res.FilesWritten, entries, cs.Gets.Load())
	}
	diffSnapshots(t, snapshot(t, src), snapshot(t, dst))
	noStaging(t, dst)
	if m := ReadMarker(dst); m == nil || m.ComponentDigest != c.Digest {
		t.Errorf("marker = %+v", m)
	}
}

func TestVolume_PlanDiffIsReusedOnlyWhileTheTargetHoldsWhatWasPlanned(t *testing.T) {
	src1, src2, src3, dst := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	seed(t, src1)
	seed(t, src2)
	write(t, filepath.Join(src2, "two.txt"), []byte("two"), 0o644)
	seed(t, src3)
	write(t, filepath.Join(src3, "a.txt"), []byte("three"), 0o640)
	write(t, filepath.Join(src3, "three/x"), []byte("x"), 0o644)
	store := newStore(t)
	c1, c2, c3 := capture(t, src1, store), capture(t, src2, store), capture(t, src3, store)
	ctx := context.Background()
	restoreWith := func(d *Driver, c statepkg.Component) {
		t.Helper()
		if _, err := d.Restore(ctx, c, driver.StoreSource{Store: store, Component: c}, driver.Target{URL: dst, Digest: c.Digest, Options: faithful(nil)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	d := New()
	restoreWith(d, c1)

	// Plan then apply: the apply reuses the plan's diff.
	if pl, err := d.Plan(ctx, c2, driver.Target{URL: dst, Options: faithful(nil)}); err != nil || pl.Action != driver.ActionIncremental {
		t.Fatalf("plan = %+v, %v", pl, err)
	}
	restoreWith(d, c2)
	diffSnapshots(t, snapshot(t, src2), snapshot(t, dst))

	// Plan, then another apply changes the target: the plan's diff is
	// stale and must not be used.
	if _, err := d.Plan(ctx, c1, driver.Target{URL: dst, Options: faithful(nil)}); err != nil {
		t.Fatal(err)
	}
	restoreWith(New(), c3)
	restoreWith(d, c1)
	diffSnapshots(t, snapshot(t, src1), snapshot(t, dst))
}

func TestVolume_ReplacesDriftAndRemovesExtraFiles(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	seed(t, src)
	store := newStore(t)
	c := capture(t, src, store)
	if _, err := apply(t, context.Background(), c, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	// Drift: same size and mtime but other content, an extra file, a
	// directory where a file was, a changed mode.
	write(t, filepath.Join(dst, "a.txt"), []byte("HELLO"), 0o640)
	write(t, filepath.Join(dst, "extra/x"), []byte("x"), 0o644)
	// A stray file next to entries that are all still there (the diff
	// then sees more names than the index holds for that directory).
	write(t, filepath.Join(dst, "sub/stray"), []byte("s"), 0o644)
	if err := os.Remove(filepath.Join(dst, "sub/empty")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dst, "sub/empty/inner"), []byte("y"), 0o644)
	if err := os.Chmod(filepath.Join(dst, "sub/exec.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	pl, err := New().Plan(context.Background(), c, driver.Target{URL: dst, Options: faithful(nil)})
	if err != nil || pl.Action != driver.ActionIncremental {
		t.Fatalf("plan = %+v, %v; want incremental", pl, err)
	}
	// The marker says this version was applied: the plan says the files
	// changed since, and names them.
	if !pl.Drifted() || !slices.Contains(pl.Changed, "a.txt: changed or missing") || !slices.ContainsFunc(pl.Changed, func(s string) bool { return strings.HasPrefix(s, "extra") && strings.HasSuffix(s, ": added") }) {
		t.Errorf("plan reason %q, changed %q; want changed since apply naming a.txt and extra", pl.Reason, pl.Changed)
	}
	if _, err := apply(t, context.Background(), c, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, snapshot(t, src), snapshot(t, dst))
	noStaging(t, dst)
	if pl, err := New().Plan(context.Background(), c, driver.Target{URL: dst, Options: faithful(nil)}); err != nil || pl.Action != driver.ActionSkip || pl.Drifted() {
		t.Errorf("plan after the apply = %+v, %v; want skip", pl, err)
	}
}

func TestVolume_IncrementalRewritesOnlyChangedFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 files")
	}
	src, dst := t.TempDir(), t.TempDir()
	const n = 20000
	for i := range n {
		write(t, filepath.Join(src, fmt.Sprintf("d%02d/f%05d", i%50, i)), []byte(fmt.Sprintf("file %d %s", i, strings.Repeat("z", i%300))), 0o644)
	}
	store := newStore(t)
	c1 := capture(t, src, store)
	if _, err := apply(t, context.Background(), c1, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 100 { // 1%
		write(t, filepath.Join(src, fmt.Sprintf("d%02d/f%05d", i%50, i)), []byte(fmt.Sprintf("changed %d", i)), 0o644)
	}
	c2 := capture(t, src, store)
	cs := &drivertest.CountingStore{ChunkStore: store}
	res, err := apply(t, context.Background(), c2, cs, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesWritten != n/100 {
		t.Errorf("files written = %d, want %d", res.FilesWritten, n/100)
	}
	if cs.Gets.Load() >= int64(len(c2.Chunks)) && len(c2.Chunks) > 1 {
		t.Errorf("fetched %d of %d chunks", cs.Gets.Load(), len(c2.Chunks))
	}
	t.Logf("incremental: %d files written, %d of %d chunks fetched, %d bytes", res.FilesWritten, cs.Gets.Load(), len(c2.Chunks), res.Bytes)
	diffSnapshots(t, snapshot(t, src), snapshot(t, dst))
}

// Chunks end between tar entries, so a changed small file is fetched as one
// or two small chunks, not the dozen files around it.
func TestVolume_ChangedSmallFileFetchesAtMostTwoChunks(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	const n = 3000
	body := func(i, version int) []byte {
		b := make([]byte, 4<<10)
		for j := range b {
			b[j] = byte((i*7919 + version*104729 + j*31) ^ (j >> 3))
		}
		return b
	}
	for i := range n {
		write(t, filepath.Join(src, fmt.Sprintf("d%02d/f%05d", i/500, i)), body(i, 1), 0o644)
	}
	store := newStore(t)
	c1 := capture(t, src, store)
	if _, err := apply(t, context.Background(), c1, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for i := 50; i < n; i += 300 {
		p := filepath.Join(src, fmt.Sprintf("d%02d/f%05d", i/500, i))
		write(t, p, body(i, 2), 0o644)
		// Same size: a new mtime is what tells the file changed.
		if err := os.Chtimes(p, mtime.Add(time.Hour), mtime.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		changed++
	}
	c2 := capture(t, src, store)
	cs := &drivertest.CountingStore{ChunkStore: store}
	res, err := apply(t, context.Background(), c2, cs, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d files changed: %d written, %d of %d chunks fetched (%d bytes)", changed, n, res.FilesWritten, cs.Gets.Load(), len(c2.Chunks), res.Bytes)
	if res.FilesWritten != int64(changed) {
		t.Errorf("files written = %d, want %d", res.FilesWritten, changed)
	}
	if got := cs.Gets.Load(); got > int64(2*changed) {
		t.Errorf("fetched %d chunks for %d changed 4 KiB files, want at most 2 each", got, changed)
	}
	if res.Bytes > int64(changed)*64<<10 {
		t.Errorf("fetched %d bytes for %d changed 4 KiB files, want well under one default chunk each", res.Bytes, changed)
	}
	diffSnapshots(t, snapshot(t, src), snapshot(t, dst))
}

// Changed entries of directories the target already has are staged flat
// (not in a mirror directory) and renamed into place: large files written in
// parallel, small ones in order, symlinks, at the top and deeper down.
func TestVolume_IncrementalReplacesEntriesOfExistingDirectories(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	big := func(v byte) []byte { return bytes.Repeat([]byte{v, 1, 2, 3}, 1<<19) } // 2 MiB
	write(t, filepath.Join(src, "top.bin"), big(1), 0o644)
	write(t, filepath.Join(src, "a/b/big.bin"), big(2), 0o600)
	write(t, filepath.Join(src, "a/b/small.txt"), []byte("small"), 0o644)
	if err := os.Symlink("b/small.txt", filepath.Join(src, "a/link")); err != nil {
		t.Fatal(err)
	}
	store := newStore(t)
	c1 := capture(t, src, store)
	if _, err := apply(t, context.Background(), c1, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	later := mtime.Add(time.Hour)
	for p, data := range map[string][]byte{"top.bin": big(3), "a/b/big.bin": big(4), "a/b/small.txt": []byte("SMALL")} {
		write(t, filepath.Join(src, p), data, 0o640)
		if err := os.Chtimes(filepath.Join(src, p), later, later); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(src, "a/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b/big.bin", filepath.Join(src, "a/link")); err != nil {
		t.Fatal(err)
	}
	c2 := capture(t, src, store)
	for _, opts := range []map[string]string{nil, {OptVerify: "true"}} {
		res, err := apply(t, context.Background(), c2, store, dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		if opts == nil && res.FilesWritten != 4 {
			t.Errorf("files written = %d, want 4", res.FilesWritten)
		}
		diffSnapshots(t, snapshot(t, src), snapshot(t, dst))
		noStaging(t, dst)
		if _, err := apply(t, context.Background(), c1, store, dst, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVolume_FailureLeavesPreviousDataAndNoStaging(t *testing.T) {
	src1, src2 := t.TempDir(), t.TempDir()
	seed(t, src1)
	write(t, filepath.Join(src2, "new/big"), bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 3<<20), 0o644)
	write(t, filepath.Join(src2, "a.txt"), []byte("version two"), 0o644)
	store := newStore(t)
	c1, c2 := capture(t, src1, store), capture(t, src2, store)

	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string) (context.Context, statepkg.ChunkStore)
	}{
		{"corrupt chunk", func(t *testing.T, dir string) (context.Context, statepkg.ChunkStore) {
			return context.Background(), corruptStore{store, c2.Chunks[len(c2.Chunks)-1].Digest}
		}},
		{"cancelled after some bytes", func(t *testing.T, dir string) (context.Context, statepkg.ChunkStore) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			return ctx, &drivertest.CancelStore{ChunkStore: store, After: 1, Cancel: cancel}
		}},
		{"missing chunk", func(t *testing.T, dir string) (context.Context, statepkg.ChunkStore) {
			return context.Background(), corruptStore{store, c2.Chunks[0].Digest + "missing"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			if _, err := apply(t, context.Background(), c1, store, dst, nil); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dst)
			ctx, s := tt.break_(t, dst)
			_, err := apply(t, ctx, c2, s, dst, nil)
			if err == nil {
				t.Fatal("apply succeeded; want an error")
			}
			if !strings.Contains(err.Error(), "restore files: download:") {
				t.Errorf("error %q does not name component and phase", err)
			}
			diffSnapshots(t, before, snapshot(t, dst))
			noStaging(t, dst)
			if m := ReadMarker(dst); m == nil || m.ComponentDigest != c1.Digest {
				t.Errorf("marker changed: %+v", m)
			}
		})
	}
}

type corruptStore struct {
	statepkg.ChunkStore
	digest string
}

func (s corruptStore) Get(ctx context.Context, d string) ([]byte, error) {
	b, err := s.ChunkStore.Get(ctx, d)
	if s.digest == d+"missing" {
		return nil, statepkg.ErrMissingChunk
	}
	if d == s.digest {
		b = append([]byte(nil), b...)
		b[len(b)/2] ^= 0xff
	}
	return b, err
}

// hostileIndexes are indexes no restore may write, each with what its
// refusal says. FuzzValidateIndex's corpus holds the same attacks.
func hostileIndexes(size int64) []struct {
	name  string
	files []statepkg.FileEntry
	want  string
} {
	sha := strings.Repeat("ab", 32)
	reg := func(p string) statepkg.FileEntry {
		return statepkg.FileEntry{Path: p, Type: statepkg.FileRegular, Size: 1, SHA256: sha, Mode: 0o644}
	}
	dir := func(p string) statepkg.FileEntry {
		return statepkg.FileEntry{Path: p, Type: statepkg.FileDir, Mode: 0o755}
	}
	sym := func(p, to string) statepkg.FileEntry {
		return statepkg.FileEntry{Path: p, Type: statepkg.FileSymlink, Linkname: to}
	}
	hard := func(to string) statepkg.FileEntry { // always "h": one hardlink per case
		return statepkg.FileEntry{Path: "h", Type: statepkg.FileHardlink, Linkname: to}
	}
	return []struct {
		name  string
		files []statepkg.FileEntry
		want  string
	}{
		{"dotdot", []statepkg.FileEntry{reg("../evil")}, `path "../evil" leaves the target`},
		{"dotdot inside", []statepkg.FileEntry{reg("a/../../evil")}, `path "a/../../evil" is not clean`},
		{"absolute", []statepkg.FileEntry{reg("/etc/passwd")}, `absolute path "/etc/passwd"`},
		{"symlink outside", []statepkg.FileEntry{sym("l", "../../etc")}, `symlink "l" -> "../../etc" points outside the target: it climbs out through ..`},
		{"absolute symlink", []statepkg.FileEntry{sym("l", "/etc")}, `symlink "l" -> "/etc" points outside`},
		{"symlink to dotdot", []statepkg.FileEntry{sym("a", "..")}, `symlink "a" -> ".." points outside`},
		{"write through symlink", []statepkg.FileEntry{sym("l", "d"), reg("l/x")}, `entry "l/x": its parent "l" is not a directory listed before it`},
		{"write through symlink to root", []statepkg.FileEntry{sym("a", "."), reg("a/x")}, `entry "a/x": its parent "a" is not a directory`},
		{"climb through a link to the top", []statepkg.FileEntry{sym("a", "."), sym("b", "a/..")},
			`symlink "b" -> "a/.." points outside the target: it climbs out through .. after the symlink "a" -> "."`},
		{"climb through a link to its parent", []statepkg.FileEntry{dir("d"), sym("d/l", ".."), sym("m", "d/l/..")},
			`symlink "m" -> "d/l/.." points outside the target: it climbs out through .. after the symlink "d/l" -> ".."`},
		{"climb through a link listed later", []statepkg.FileEntry{sym("b", "a/../.."), dir("a"), dir("a/x"), sym("a/y", "x/..")},
			`symlink "b" -> "a/../.." points outside`},
		{"climb through a chain of links", []statepkg.FileEntry{dir("d"), dir("d/e"), sym("d/e/up", ".."), sym("d/up2", "e/up/.."), sym("top", "d/up2/..")},
			`symlink "top" -> "d/up2/.." points outside the target: it climbs out through .. after the symlink "d/up2" -> "e/up/.."`},
		{"climb in a link's own directory", []statepkg.FileEntry{dir("d"), sym("d/self", "."), sym("d/out", "self/../..")},
			`symlink "d/out" -> "self/../.." points outside`},
		{"symlink loop", []statepkg.FileEntry{sym("a", "b"), sym("b", "a/x")}, `symlink "a" -> "b": does not resolve: more than 40 symlinks`},
		{"device file", []statepkg.FileEntry{{Path: "dev", Type: "char"}}, "device files"},
		{"zip bomb claim", []statepkg.FileEntry{{Path: "bomb", Type: statepkg.FileRegular, Size: 10 << 30, SHA256: sha}}, fmt.Sprintf("stream holds only %d bytes", size)},
		{"reserved name", []statepkg.FileEntry{reg(MarkerName)}, "reserved"},
		{"staging name", []statepkg.FileEntry{dir(stagingPrefix + "x")}, "reserved"},
		{"hardlink to outside", []statepkg.FileEntry{hard("/etc/shadow")}, `hardlink "h" -> "/etc/shadow" does not name a regular file listed before it`},
		{"hardlink up", []statepkg.FileEntry{hard("../outside/canary")}, "does not name a regular file"},
		{"hardlink through a symlink", []statepkg.FileEntry{sym("l", ".."), hard("l/outside/canary")}, `hardlink "h" -> "l/outside/canary" does not name a regular file`},
		{"hardlink through a symlink to a file", []statepkg.FileEntry{dir("d"), reg("d/f"), sym("l", "d"), hard("l/f")}, `hardlink "h" -> "l/f" does not name a regular file`},
		{"hardlink to a symlink", []statepkg.FileEntry{sym("l", "."), hard("l")}, "does not name a regular file"},
	}
}

// A hostile index is refused before anything is written: the target and a
// canary file next to it are unchanged.
func TestVolume_RefusesHostileIndex(t *testing.T) {
	const size = 4096
	for _, tt := range hostileIndexes(size) {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "target")
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dst, "keep"), []byte("keep"), 0o644)
			write(t, filepath.Join(parent, "outside/canary"), []byte("canary"), 0o644)
			before := snapshot(t, parent)
			c := statepkg.Component{Name: "files", Kind: statepkg.KindVolume, Format: Format, Size: size, Files: tt.files,
				Digest: "sha256:" + strings.Repeat("0", 64)}
			src := driver.ReaderAtSource{R: bytes.NewReader(make([]byte, size)), Size: size}
			_, perr := New().Plan(context.Background(), c, driver.Target{URL: dst})
			_, err := New().Restore(context.Background(), c, src, driver.Target{URL: dst}, nil)
			for _, err := range []error{perr, err} {
				if err == nil || !errors.Is(err, ErrHostileIndex) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v; want a refusal saying %q", err, tt.want)
				}
			}
			diffSnapshots(t, before, snapshot(t, parent))
		})
	}
}

// The restore writes only beneath the target even where the index check
// cannot help: symlinks that already stand in the target where the state
// has a directory or a file, and an index changed after its check (as a
// bug in the check would let through).
func TestVolume_WritesNeverLeaveTheTarget(t *testing.T) {
	const size = 2
	data := driver.ReaderAtSource{R: bytes.NewReader([]byte("xy")), Size: size}
	sha := func(b string) string { h := sha256.Sum256([]byte(b)); return hex.EncodeToString(h[:]) }
	setup := func(t *testing.T) (parent, dst string, before map[string]string) {
		parent = t.TempDir()
		dst = filepath.Join(parent, "target")
		write(t, filepath.Join(parent, "outside/canary"), []byte("canary"), 0o644)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		return parent, dst, snapshot(t, filepath.Join(parent, "outside"))
	}
	t.Run("symlinks already in the target", func(t *testing.T) {
		parent, dst, before := setup(t)
		for name, to := range map[string]string{"sub": "../outside", "canary": "../outside/canary", "gone": ".."} {
			if err := os.Symlink(to, filepath.Join(dst, name)); err != nil {
				t.Fatal(err)
			}
		}
		c := statepkg.Component{Name: "files", Kind: statepkg.KindVolume, Format: Format, Size: size, Digest: "sha256:" + strings.Repeat("1", 64),
			Files: []statepkg.FileEntry{
				{Path: "canary", Type: statepkg.FileRegular, Size: 1, SHA256: sha("x"), Mode: 0o644, MTime: mtime},
				{Path: "sub", Type: statepkg.FileDir, Mode: 0o755, MTime: mtime},
				{Path: "sub/canary", Type: statepkg.FileRegular, Size: 1, DataOffset: 1, SHA256: sha("y"), Mode: 0o644, MTime: mtime},
			}}
		if _, err := New().Restore(context.Background(), c, data, driver.Target{URL: dst}, nil); err != nil {
			t.Fatal(err)
		}
		diffSnapshots(t, before, snapshot(t, filepath.Join(parent, "outside")))
		for p, want := range map[string]string{"canary": "x", "sub/canary": "y"} {
			fi, err := os.Lstat(filepath.Join(dst, p))
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("%s: %v, %v; want a regular file", p, fi, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dst, p)); string(b) != want {
				t.Errorf("%s holds %q, want %q", p, b, want)
			}
		}
		if _, err := os.Lstat(filepath.Join(dst, "gone")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the target's symlink not in the state was not removed: %v", err)
		}
	})
	t.Run("a hardlink through an escaping symlink the check let pass", func(t *testing.T) {
		parent, dst, before := setup(t)
		// A Plan onto a missing target checks the index and Restore
		// trusts that check for this very index; the entries are then
		// changed in place into what a flawed check would let through.
		dst = filepath.Join(dst, "new")
		c := statepkg.Component{Name: "files", Kind: statepkg.KindVolume, Format: Format, Size: size, Digest: "sha256:" + strings.Repeat("2", 64),
			Files: []statepkg.FileEntry{
				{Path: "l", Type: statepkg.FileSymlink, Linkname: "x", MTime: mtime},
				{Path: "x", Type: statepkg.FileRegular, Size: 1, SHA256: sha("x"), Mode: 0o644, MTime: mtime},
			}}
		d := New()
		if _, err := d.Plan(context.Background(), c, driver.Target{URL: dst}); err != nil {
			t.Fatal(err)
		}
		c.Files[0].Linkname = "../../"
		c.Files[1] = statepkg.FileEntry{Path: "h", Type: statepkg.FileHardlink, Linkname: "l/outside/canary", MTime: mtime}
		_, err := d.Restore(context.Background(), c, data, driver.Target{URL: dst}, nil)
		if err == nil || !strings.Contains(err.Error(), "escapes") {
			t.Errorf("restore of a hardlink through a symlink out of the target: %v; want os.Root's refusal of a path that escapes", err)
		}
		diffSnapshots(t, before, snapshot(t, filepath.Join(parent, "outside")))
		fi, err := os.Stat(filepath.Join(parent, "outside/canary"))
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Nlink != 1 {
			t.Errorf("the canary outside the target has another link: %+v", fi.Sys())
		}
	})
}

// Setuid and setgid bits of the state's files are cleared unless
// keep_setid=true; directories keep setgid (fsGroup's group inheritance)
// and the sticky bit either way, and a re-apply sees nothing to change.
func TestVolume_ClearsSetIDBitsUnlessKept(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "bin/suid"), []byte("#!/bin/sh\n"), os.ModeSetuid|0o755)
	write(t, filepath.Join(src, "bin/sgid"), []byte("#!/bin/sh\n"), os.ModeSetgid|0o711)
	write(t, filepath.Join(src, "big/suid"), bytes.Repeat([]byte("x"), 3<<20), os.ModeSetuid|os.ModeSetgid|0o755) // written by the parallel writer
	for d, m := range map[string]os.FileMode{"shared": 0o775 | os.ModeSetgid, "tmp": 0o777 | os.ModeSticky} {
		if err := os.Mkdir(filepath.Join(src, d), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(src, d), m); err != nil {
			t.Fatal(err)
		}
	}
	store := newStore(t)
	c := capture(t, src, store)
	tests := []struct {
		opts map[string]string
		want map[string]os.FileMode
	}{
		{nil, map[string]os.FileMode{"bin/suid": 0o755, "bin/sgid": 0o711, "big/suid": 0o755, "shared": os.ModeDir | os.ModeSetgid | 0o775, "tmp": os.ModeDir | os.ModeSticky | 0o777}},
		{map[string]string{OptKeepSetID: "true"}, map[string]os.FileMode{"bin/suid": os.ModeSetuid | 0o755, "bin/sgid": os.ModeSetgid | 0o711,
			"big/suid": os.ModeSetuid | os.ModeSetgid | 0o755, "shared": os.ModeDir | os.ModeSetgid | 0o775, "tmp": os.ModeDir | os.ModeSticky | 0o777}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.opts), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "target")
			target := driver.Target{URL: dst, Options: tt.opts, Digest: "sha256:" + strings.Repeat("3", 64)}
			if _, err := New().Restore(context.Background(), c, driver.StoreSource{Store: store, Component: c}, target, nil); err != nil {
				t.Fatal(err)
			}
			for p, want := range tt.want {
				fi, err := os.Lstat(filepath.Join(dst, p))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode() != want {
					t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
				}
			}
			pl, err := New().Plan(context.Background(), c, target)
			if err != nil || pl.Action != driver.ActionSkip {
				t.Errorf("re-plan = %+v, %v; want skip", pl, err)
			}
		})
	}
	_, err := New().Plan(context.Background(), c, driver.Target{URL: t.TempDir(), Options: map[string]string{OptKeepSetID: "yes"}})
	if err == nil || !strings.Contains(err.Error(), `keep_setid option "yes": want true or false`) {
		t.Errorf("plan with keep_setid=yes: %v", err)
	}
}

func TestVolume_OwnerOptionMapsEveryEntry(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	src, dst := t.TempDir(), t.TempDir()
	seed(t, src)
	store := newStore(t)
	c := capture(t, src, store)
	if _, err := apply(t, context.Background(), c, store, dst, map[string]string{OptOwner: "4242:4343"}); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dst, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dst || strings.HasSuffix(p, MarkerName) {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no syscall.Stat_t", p)
		}
		if st.Uid != 4242 || st.Gid != 4343 {
			t.Errorf("%s owned by %d:%d", p, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// manySmallFiles builds dirs directories of n small files each, with mixed
// modes and, as root, mixed owners (some the restoring user's, some not).
func manySmallFiles(t testing.TB, dir string, dirs, n int) {
	t.Helper()
	modes := []os.FileMode{0o644, 0o600, 0o755, 0o640 | os.ModeSetgid, 0o444, 0o666, 0o777, 0o1750, 0o4755, 0o400}
	for d := range dirs {
		for i := range n {
			p := filepath.Join(dir, fmt.Sprintf("d%02d/f%04d", d, i))
			write(t, p, []byte(fmt.Sprintf("dir %d file %d %s", d, i, strings.Repeat("x", i%97))), modes[(d+i)%len(modes)])
			if os.Geteuid() == 0 && i%3 == 0 {
				if err := os.Lchown(p, 1000+i%2, 2000+d%3); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.Chtimes(filepath.Join(dir, fmt.Sprintf("d%02d", d)), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// More files than one writer takes (see dirSegments): several staging
// writers create them, each in its own directories.
func TestVolume_ManySmallFilesAcrossDirectories(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		prev := runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	}
	if n := writerSegments(driver.StoreSource{}); n < 2 {
		t.Fatalf("writerSegments = %d; the test wants several writers", n)
	}
	src := t.TempDir()
	manySmallFiles(t, src, 6, 400)
	store := newStore(t)
	c := capture(t, src, store)

	t.Run("full apply", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "target")
		res, err := apply(t, context.Background(), c, store, dst, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.FilesWritten != 2400 {
			t.Errorf("files written = %d, want 2400", res.FilesWritten)
		}
		diffSnapshots(t, snapshot(t, src), snapshot(t, dst))
		noStaging(t, dst)
	})
	t.Run("owner option", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to chown")
		}
		dst := filepath.Join(t.TempDir(), "target")
		if _, err := apply(t, context.Background(), c, store, dst, map[string]string{OptOwner: "0:0"}); err != nil {
			t.Fatal(err)
		}
		want := snapshot(t, src)
		for k, v := range want {
			f := strings.Fields(v)
			f[2] = "0:0"
			want[k] = strings.Join(f, " ")
		}
		diffSnapshots(t, want, snapshot(t, dst))
	})
	for _, tt := range []struct {
		name  string
		chunk int // index of the chunk that fails
	}{
		{"corrupt first chunk", 0},
		{"corrupt last chunk", len(c.Chunks) - 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			write(t, filepath.Join(dst, "old"), []byte("previous"), 0o644)
			before := snapshot(t, dst)
			_, err := apply(t, context.Background(), c, corruptStore{store, c.Chunks[tt.chunk].Digest}, dst, nil)
			if err == nil || !strings.Contains(err.Error(), "restore files: download:") {
				t.Fatalf("err = %v; want a download failure", err)
			}
			diffSnapshots(t, before, snapshot(t, dst))
			noStaging(t, dst)
		})
	}
}

// A default ACL on the target decides the mode of new files instead of the
// umask: files must still end with the index's modes.
func TestVolume_ModesUnderDefaultACL(t *testing.T) {
	src := t.TempDir()
	manySmallFiles(t, src, 2, 100)
	store := newStore(t)
	c := capture(t, src, store)
	dst := t.TempDir()
	// system.posix_acl_default: version 2, then (tag, perm, id) entries:
	// user::rwx, group::r-x, other::--- (no mask).
	acl := []byte{2, 0, 0, 0, 1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, 4, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	if err := unix.Setxattr(dst, "system.posix_acl_default", acl, 0); err != nil {
		t.Skipf("no default ACLs here: %v", err)
	}
	if _, err := apply(t, context.Background(), c, store, dst, nil); err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, snapshot(t, src), snapshot(t, dst))
}

func TestVolume_DirSegmentsCutOnlyBetweenDirectories(t *testing.T) {
	files := func(counts ...int) []statepkg.FileEntry {
		var out []statepkg.FileEntry
		for d, n := range counts {
			for i := range n {
				out = append(out, statepkg.FileEntry{Path: fmt.Sprintf("d%d/f%d", d, i)})
			}
		}
		return out
	}
	w := &stagingWriter{flat: map[string]string{}}
	tests := []struct {
		name  string
		files []statepkg.FileEntry
		n     int
		want  []int
	}{
		{"too few files", files(300, 300), 4, []int{0, 600}},
		{"two directories", files(600, 600), 2, []int{0, 600, 1200}},
		{"cut moves to the next directory", files(700, 500, 100), 2, []int{0, 700, 1300}},
		{"one directory", files(3000), 4, []int{0, 3000}},
		{"big directory last", files(600, 3000), 4, []int{0, 600, 3600}},
		{"four runs", files(600, 600, 600, 600), 4, []int{0, 600, 1200, 1800, 2400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dirSegments(tt.files, w, tt.n); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("dirSegments = %v, want %v", got, tt.want)
			}
		})
	}
	flat := &stagingWriter{flat: map[string]string{}}
	fs := files(600, 600)
	for i, e := range fs {
		flat.flat[e.Path] = stagingPrefix + fmt.Sprint(i)
	}
	if got := dirSegments(fs, flat, 2); fmt.Sprint(got) != "[0 1200]" {
		t.Errorf("flat staging: dirSegments = %v, want one run", got)
	}
}

// Several writers share the component's read-ahead rather than each
// taking all of it.
func TestVolume_WritersShareTheReadAhead(t *testing.T) {
	cpus := min(runtime.GOMAXPROCS(0), maxWriterSegments)
	tests := []struct {
		name      string
		readAhead int
		runs      int
		wantRuns  int // writerSegments
		wantEach  int // each run's Concurrency
	}{
		{"one chunk ahead: one writer", 1, 1, 1, 1},
		{"two ahead, two runs", 2, 2, min(cpus, 2), 1},
		{"eight ahead, two runs", 8, 2, cpus, 4},
		{"three ahead, two runs", 3, 2, min(cpus, 3), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := driver.StoreSource{Options: statepkg.ReadOptions{Concurrency: tt.readAhead}}
			if got := writerSegments(src); got != tt.wantRuns {
				t.Errorf("writerSegments = %d, want %d", got, tt.wantRuns)
			}
			got, ok := shareReadAhead(src, tt.runs).(driver.StoreSource)
			if !ok || got.Options.Concurrency != tt.wantEach {
				t.Errorf("shareReadAhead gives %+v, want Concurrency %d", got.Options, tt.wantEach)
			}
		})
	}
	other := driver.ReaderAtSource{R: bytes.NewReader(nil)}
	if got := shareReadAhead(other, 2); got != other {
		t.Errorf("shareReadAhead changed a source it does not know: %#v", got)
	}
}

// A staging writer that foresees a new file's mode wrongly (here: it is
// told the umask is 0 when it is 022) notices on the first such file and
// sets modes itself from then on.
func TestVolume_StagingWriterChecksTheModeItForesees(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	st, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := &stagingWriter{st: st, made: map[string]bool{".": true}, flat: map[string]string{}, umask: 0}
	defer w.close()
	for _, e := range []statepkg.FileEntry{
		{Path: "d/a", Mode: 0o666, MTime: mtime},
		{Path: "d/b", Mode: 0o646, MTime: mtime},
		{Path: "d/c", Mode: 0o644, MTime: mtime},
	} {
		fd, err := w.open(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.finish(e, fd); err != nil {
			t.Fatal(err)
		}
		fi, err := st.Lstat(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		if got := uint32(fi.Mode().Perm()); got != e.Mode {
			t.Errorf("%s: mode %o, want %o", e.Path, got, e.Mode)
		}
	}
}

// A plan made while the target did not exist lets Restore skip a second
// index check, but not its own diff: what appeared in between is seen.
func TestVolume_PlanOfAMissingTargetIsNotReusedAsItsDiff(t *testing.T) {
	src := t.TempDir()
	seed(t, src)
	store := newStore(t)
	c := capture(t, src, store)
	dst := filepath.Join(t.TempDir(), "target")
	d := New()
	ctx := context.Background()
	if pl, err := d.Plan(ctx, c, driver.Target{URL: dst, Options: faithful(nil)}); err != nil || pl.Action != driver.ActionCreate {
		t.Fatalf("plan = %+v, %v; want create", pl, err)
	}
	if !d.indexChecked(dst, c, options{uid: -1, gid: -1, chown: os.Geteuid() == 0, keepSetID: true}) {
		t.Error("the plan's index check is not remembered")
	}
	write(t, filepath.Join(dst, "stray/x"), []byte("x"), 0o644)
	if _, err := d.Restore(ctx, c, driver.StoreSource{Store: store, Component: c}, driver.Target{URL: dst, Options: faithful(nil)}, nil); err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, snapshot(t, src), snapshot(t, dst))
	noStaging(t, dst)
}

func TestVolume_MergeSorted(t *testing.T) {
	tests := []struct {
		a, b []int
		want string
	}{
		{nil, nil, "[]"},
		{[]int{1, 4, 9}, nil, "[1 4 9]"},
		{nil, []int{2, 3}, "[2 3]"},
		{[]int{0, 5, 6, 10}, []int{1, 2, 7, 11, 12}, "[0 1 2 5 6 7 10 11 12]"},
		{[]int{3, 1}, []int{2}, "[1 2 3]"}, // unsorted input is sorted
	}
	for _, tt := range tests {
		if got := fmt.Sprint(mergeSorted(tt.a, tt.b)); got != tt.want {
			t.Errorf("mergeSorted(%v, %v) = %s, want %s", tt.a, tt.b, got, tt.want)
		}
	}
}
