package restore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/postgres"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// The benchmarks run each apply in a child process (this test binary,
// re-executed) so its wall time and peak RSS are those of a real applying
// process. The child reads its job from these variables.
const (
	envChild    = "UNIKUBE_BENCH_CHILD"
	envManifest = "UNIKUBE_BENCH_MANIFEST"
	envStore    = "UNIKUBE_BENCH_STORE"
	envTargets  = "UNIKUBE_BENCH_TARGETS"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(benchChild())
	}
	os.Exit(m.Run())
}

// benchChild applies a manifest from a DirStore onto targets and prints the
// result as JSON.
func benchChild() int {
	ctx := context.Background()
	if prof := os.Getenv("UNIKUBE_BENCH_CPUPROFILE"); prof != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", prof, os.Getpid()))
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	defer func() {
		if os.Getenv("UNIKUBE_BENCH_TRACE") != "" {
			fmt.Fprintf(os.Stderr, "child total %s\n", time.Since(t0))
		}
	}()
	b, err := os.ReadFile(os.Getenv(envManifest))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	m, err := statepkg.DecodeManifest(b)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	store, err := statepkg.NewDirStore(os.Getenv(envStore))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var targets restore.Targets
	if err := json.Unmarshal([]byte(os.Getenv(envTargets)), &targets); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	plan, err := restore.Plan(ctx, m, statepkg.ManifestDigest(b), targets, store, restore.PlanOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var opts restore.ApplyOptions
	if n, err := strconv.Atoi(os.Getenv("UNIKUBE_BENCH_READ_CONCURRENCY")); err == nil {
		opts.ReadConcurrency = n
	}
	if os.Getenv("UNIKUBE_BENCH_TRACE") != "" {
		// Print each component's phase changes with their time, to see
		// where an apply spends it.
		last := map[string]string{}
		opts.Interval = 100 * time.Millisecond
		opts.Progress = func(e restore.Event) {
			for _, c := range e.Components {
				if last[c.Component] != c.Phase {
					last[c.Component] = c.Phase
					fmt.Fprintf(os.Stderr, "%8s %s %s bytes=%d rows=%d\n", e.Elapsed.Round(time.Millisecond), c.Component, c.Phase, c.Bytes, c.Rows)
				}
			}
		}
	}
	res, err := restore.Apply(ctx, plan, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type childRun struct {
	wall   time.Duration
	cpu    time.Duration // user+system time of the child
	maxRSS int64         // bytes
	result restore.Result
}

// applyInChild runs one apply in a child process.
func applyInChild(b *testing.B, m *statepkg.Manifest, store *statepkg.DirStore, targets restore.Targets) childRun {
	b.Helper()
	enc, err := m.Encode()
	if err != nil {
		b.Fatal(err)
	}
	mf := filepath.Join(b.TempDir(), "manifest.json")
	if err := os.WriteFile(mf, enc, 0o600); err != nil {
		b.Fatal(err)
	}
	tj, _ := json.Marshal(targets)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envChild+"=1", envManifest+"="+mf, envStore+"="+store.Dir(), envTargets+"="+string(tj))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	syscall.Sync()
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("child apply: %v: %s", err, errb.String())
	}
	if os.Getenv("UNIKUBE_BENCH_TRACE") != "" {
		fmt.Fprint(os.Stdout, errb.String())
	}
	var r childRun
	r.wall = wall
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss * 1024
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if err := json.Unmarshal(out.Bytes(), &r.result); err != nil {
		b.Fatalf("child output %q: %v", out.String(), err)
	}
	return r
}

func timedEnv(b *testing.B, env []string, name string, args ...string) time.Duration {
	b.Helper()
	wall, _ := timedCPU(b, env, name, args...)
	return wall
}

// timedCPU runs a command and returns its wall time and its CPU time
// (user+system). On a machine shared with other work the CPU times compare
// more fairly than wall times.
func timedCPU(b *testing.B, env []string, name string, args ...string) (wall, cpu time.Duration) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var errb bytes.Buffer
	cmd.Stderr, cmd.Stdout = &errb, &errb
	syscall.Sync()
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %v: %v: %s", name, args, err, errb.String())
	}
	return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func report(b *testing.B, lines ...string) {
	for _, l := range lines {
		fmt.Fprintf(os.Stdout, "    %s: %s\n", b.Name(), l)
	}
}

func captureToDir(b *testing.B, sources []capture.Source, store statepkg.ChunkStore) *statepkg.Manifest {
	b.Helper()
	m, _, err := capture.Capture(context.Background(), sources, store, capture.Spec{State: "bench/state"})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkPostgresApply compares applying a ~1 GiB pgbench database (scale
// 70 plus indexes) with pg_restore -j N from a local archive.
func BenchmarkPostgresApply(b *testing.B) {
	scale := 70
	if s, err := strconv.Atoi(os.Getenv("UNIKUBE_BENCH_PG_SCALE")); err == nil {
		scale = s
	}
	ctx := context.Background()
	pg := testenv.StartPostgres(b)
	pg.CreateDatabase(b, "bench")
	env := pg.Env()
	bin := func(n string) string { return filepath.Join(pg.BinDir, n) }
	t0 := time.Now()
	// Server-side generation (G) is the fastest way to fill pgbench tables.
	timedEnv(b, env, bin("pgbench"), "-i", "-q", "-s", strconv.Itoa(scale), "-I", "dtGvp", "bench")
	pgExec(b, pg.URL("bench"),
		`CREATE INDEX accounts_bid ON pgbench_accounts (bid)`,
		`CREATE INDEX accounts_abalance ON pgbench_accounts (abalance)`,
		`CREATE INDEX accounts_filler ON pgbench_accounts (aid, bid) INCLUDE (abalance)`)
	var size int64
	pgConnQuery(b, pg.URL("bench"), `SELECT pg_database_size('bench')`, &size)
	gen := time.Since(t0)

	dir := b.TempDir()
	archive := filepath.Join(dir, "bench.dump")
	timedEnv(b, env, bin("pg_dump"), "-Fc", "-Z", "0", "-f", archive, "bench")
	store, err := statepkg.NewDirStore(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	m := captureToDir(b, []capture.Source{{Name: "db", URL: pg.URL("bench")}}, store)
	jobs := postgres.Jobs(driver.Target{})

	b.ResetTimer()
	// Baseline before and after the apply (A-B-A), so cache warmth and
	// machine load do not favour either side.
	baseline := func(db string) time.Duration {
		pg.CreateDatabase(b, db)
		d := timedEnv(b, env, bin("pg_restore"), "-j", strconv.Itoa(jobs), "--no-owner", "-d", db, archive)
		pgExec(b, pg.URL("postgres"), `DROP DATABASE `+db)
		return d
	}
	// UNIKUBE_BENCH_PG_DATA_LOAD=stream,pg_restore,... applies once per
	// data load (option data_load), in that order; the first is the
	// headline figure. Default: the driver's default. An entry with "="
	// gives target options instead: jobs=1+data_load=stream.
	loads := strings.Split(os.Getenv("UNIKUBE_BENCH_PG_DATA_LOAD"), ",")
	if loads[0] == "" {
		loads = []string{postgres.DefaultDataLoad}
	}
	base1 := baseline("baseline1")
	runs := make([]childRun, len(loads))
	for i, dl := range loads {
		db := fmt.Sprintf("applied%d", i)
		opts := map[string]string{postgres.OptDataLoad: dl}
		if strings.Contains(dl, "=") {
			// Target options instead: "jobs=1+restore_settings=none".
			opts = map[string]string{}
			for _, kv := range strings.Split(dl, "+") {
				k, v, _ := strings.Cut(kv, "=")
				opts[k] = v
			}
		}
		runs[i] = applyInChild(b, m, store, restore.Targets{"db": {URL: pg.URL(db), Options: opts}})
		pgExec(b, pg.URL("postgres"), `DROP DATABASE `+db)
	}
	run := runs[0]
	base2 := baseline("baseline2")
	base := (base1 + base2) / 2
	// Streaming alternative: one pg_restore job reading the archive from a
	// pipe (what an apply could do without a temp file).
	pg.CreateDatabase(b, "piped")
	piped := timedEnv(b, env, "sh", "-c", `exec "$0" --no-owner -d piped < "$1"`, bin("pg_restore"), archive)
	b.StopTimer()
	_ = ctx

	ratio := run.wall.Seconds() / base.Seconds()
	b.ReportMetric(ratio, "apply/pg_restore")
	b.ReportMetric(float64(run.maxRSS)/(1<<20), "peakRSS-MiB")
	report(b,
		fmt.Sprintf("database %s (pgbench scale %d + 3 indexes, generated in %s), archive %s, stored %s in %d chunks", mib(size), scale, gen.Round(time.Second), mib(fileSize(archive)), mib(storedSize(m)), len(m.Components[0].Chunks)),
		fmt.Sprintf("pg_restore -j %d from a local archive: %s before, %s after the apply (mean %s)", jobs, base1.Round(time.Millisecond), base2.Round(time.Millisecond), base.Round(time.Millisecond)),
		fmt.Sprintf("pg_restore single job from a pipe (streaming, no temp file): %s", piped.Round(time.Millisecond)),
	)
	for i, r := range runs {
		report(b, fmt.Sprintf("unikube apply, data_load=%s (-j %d, swap): %s, ratio %.3f, CPU of the applying process %s", loads[i], jobs, r.wall.Round(time.Millisecond), r.wall.Seconds()/base.Seconds(), r.cpu.Round(time.Millisecond)))
	}
	report(b, fmt.Sprintf("ratio apply / pg_restore = %.3f (goal <= 1.15, data_load=%s); peak RSS of the applying process %s (goal <= 256 MiB)", ratio, loads[0], mib(run.maxRSS)))
}

func pgConnQuery(b *testing.B, url, q string, dst any) {
	b.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, q).Scan(dst); err != nil {
		b.Fatal(err)
	}
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func storedSize(m *statepkg.Manifest) int64 {
	var n int64
	for _, c := range m.Components {
		for _, ch := range c.Chunks {
			n += ch.StoredSize
		}
	}
	return n
}

// writeTree creates n files of size bytes of pseudo-random (incompressible)
// data under dir, spread over directories of 500 files.
func writeTree(b *testing.B, dir string, n, size int) {
	b.Helper()
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, size)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i/500), fmt.Sprintf("f%05d.bin", i))
		if i%500 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		_, _ = r.Read(buf) // ChaCha8.Read always fills buf and returns nil
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// volumeRun is one volume benchmark setup and its full apply.
type volumeRun struct {
	m           *statepkg.Manifest
	store       *statepkg.DirStore
	src, target string
	full        childRun
	tarTime     time.Duration // wall time of tar -x
	tarCPU      time.Duration // CPU time of tar -x
	work        string        // kept between runs when UNIKUBE_BENCH_WORKDIR is set
}

// volumeCase captures a tree, then times tar -x of the same stream and a
// full apply into empty directories. With UNIKUBE_BENCH_WORKDIR set, the
// tree, store and tar are kept there and reused by later runs (for
// profiling: the setup takes longer than the applies).
func volumeCase(b *testing.B, n, size int) volumeRun {
	b.Helper()
	var v volumeRun
	work := b.TempDir()
	reuse := false
	if wd := os.Getenv("UNIKUBE_BENCH_WORKDIR"); wd != "" {
		work = filepath.Join(wd, fmt.Sprintf("%dx%d", n, size))
		if raw, err := os.ReadFile(filepath.Join(work, "manifest.json")); err == nil {
			if v.m, err = statepkg.DecodeManifest(raw); err == nil {
				reuse = true
			}
		}
	}
	v.src = filepath.Join(work, "src")
	if reuse {
		v.work = work
	}
	var err error
	if !reuse {
		os.RemoveAll(work)
		writeTree(b, v.src, n, size)
	}
	v.store, err = statepkg.NewDirStore(filepath.Join(work, "store"))
	if err != nil {
		b.Fatal(err)
	}
	tarFile := filepath.Join(work, "stream.tar")
	if !reuse {
		v.m = captureToDir(b, []capture.Source{{Name: "files", URL: v.src}}, v.store)
		f, err := os.Create(tarFile)
		if err != nil {
			b.Fatal(err)
		}
		if err := statepkg.ReadComponent(context.Background(), v.store, v.m.Components[0], f, statepkg.ReadOptions{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
		enc, err := v.m.Encode()
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "manifest.json"), enc, 0o644); err != nil {
			b.Fatal(err)
		}
		if os.Getenv("UNIKUBE_BENCH_WORKDIR") != "" {
			v.work = work
		}
	}
	// UNIKUBE_BENCH_REPEAT=n alternates n runs of each and keeps the
	// fastest, the usual way to measure on a machine busy with other work.
	reps := 1
	if n, err := strconv.Atoi(os.Getenv("UNIKUBE_BENCH_REPEAT")); err == nil && n > 1 {
		reps = n
	}
	// Every run extracts and applies into new directories, and the trees
	// are removed only after the timed runs: on ext4 without a journal
	// (this machine's disk) creating files shortly after many were deleted
	// checks each recently freed inode before reusing it, which made
	// whichever side ran right after a removal several times slower.
	var trees []string
	b.Cleanup(func() {
		// After the incremental runs too, which create files.
		for _, d := range trees {
			if d != v.target {
				os.RemoveAll(d)
			}
		}
	})
	if reuse {
		// Leftovers of an earlier run, removed before anything is timed.
		old, _ := filepath.Glob(filepath.Join(work, "untar*"))
		more, _ := filepath.Glob(filepath.Join(work, "applied*"))
		for _, d := range append(old, more...) {
			os.RemoveAll(d)
		}
	}
	for i := range reps {
		untar := filepath.Join(work, fmt.Sprintf("untar-%d", i))
		v.target = filepath.Join(work, fmt.Sprintf("applied-%d", i))
		trees = append(trees, untar, v.target)
		if err := os.Mkdir(untar, 0o755); err != nil {
			b.Fatal(err)
		}
		wall, cpu := timedCPU(b, nil, "tar", "-xf", tarFile, "-C", untar)
		full := applyInChild(b, v.m, v.store, restore.Targets{"files": {URL: v.target}})
		if i == 0 {
			v.tarTime, v.tarCPU, v.full = wall, cpu, full
			continue
		}
		v.tarTime, v.tarCPU = min(v.tarTime, wall), min(v.tarCPU, cpu)
		v.full.wall, v.full.cpu = min(v.full.wall, full.wall), min(v.full.cpu, full.cpu)
		v.full.maxRSS = max(v.full.maxRSS, full.maxRSS)
	}
	return v
}

// incremental times applying m2 onto the target holding v.m; with
// UNIKUBE_BENCH_REPEAT=n it puts v.m back (untimed) and applies m2 again,
// n times, keeping the fastest run.
func incremental(b *testing.B, v volumeRun, m2 *statepkg.Manifest) childRun {
	b.Helper()
	if v.work != "" {
		// For profiling single applies by hand (UNIKUBE_BENCH_CHILD=1).
		enc, err := m2.Encode()
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(v.work, "manifest2.json"), enc, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	targets := restore.Targets{"files": {URL: v.target}}
	inc := applyInChild(b, m2, v.store, targets)
	n, _ := strconv.Atoi(os.Getenv("UNIKUBE_BENCH_REPEAT"))
	for i := 1; i < n; i++ {
		applyInChild(b, v.m, v.store, targets)
		r := applyInChild(b, m2, v.store, targets)
		inc.wall, inc.cpu = min(inc.wall, r.wall), min(inc.cpu, r.cpu)
		inc.maxRSS = max(inc.maxRSS, r.maxRSS)
	}
	return inc
}

// BenchmarkVolumeApplyLargeFiles: 1 GiB of 8 MiB files, then a re-apply
// after changing 2 of the 128 files (1.6%).
func BenchmarkVolumeApplyLargeFiles(b *testing.B) {
	v := volumeCase(b, 128, 8<<20)
	store, src, full, tarTime := v.store, v.src, v.full, v.tarTime
	ratio := full.wall.Seconds() / tarTime.Seconds()
	cpuRatio := full.cpu.Seconds() / v.tarCPU.Seconds()
	r := rand.NewChaCha8([32]byte{3})
	buf := make([]byte, 8<<20)
	for _, i := range []int{17, 99} {
		_, _ = r.Read(buf) // ChaCha8.Read always fills buf and returns nil
		if err := os.WriteFile(filepath.Join(src, "d000", fmt.Sprintf("f%05d.bin", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	m2 := captureToDir(b, []capture.Source{{Name: "files", URL: src}}, store)
	inc := incremental(b, v, m2)
	incRatio := inc.wall.Seconds() / full.wall.Seconds()
	incCPURatio := inc.cpu.Seconds() / full.cpu.Seconds()
	b.ReportMetric(ratio, "apply/tar-x")
	b.ReportMetric(cpuRatio, "cpu-apply/tar-x")
	b.ReportMetric(incRatio, "incremental/full")
	b.ReportMetric(float64(max(full.maxRSS, inc.maxRSS))/(1<<20), "peakRSS-MiB")
	ic := inc.result.Components[0]
	report(b,
		fmt.Sprintf("1 GiB in 128 files of 8 MiB: tar -x %s, apply %s, ratio %.3f (goal <= 1.3), peak RSS %s", tarTime.Round(time.Millisecond), full.wall.Round(time.Millisecond), ratio, mib(full.maxRSS)),
		fmt.Sprintf("  CPU time: tar -x %s, apply %s, ratio %.3f", v.tarCPU.Round(time.Millisecond), full.cpu.Round(time.Millisecond), cpuRatio),
		fmt.Sprintf("re-apply with 2 of 128 files changed: %s (%d files written, %d chunks fetched), ratio to full apply %.3f (goal <= 0.05), peak RSS %s", inc.wall.Round(time.Millisecond), ic.FilesWritten, ic.ChunksFetched, incRatio, mib(inc.maxRSS)),
		fmt.Sprintf("  CPU time: re-apply %s, ratio to full apply %.3f", inc.cpu.Round(time.Millisecond), incCPURatio),
	)
}

// BenchmarkVolumeApplySmallFiles: 50,000 files of 4 KiB, then a re-apply
// after changing 1% of them.
func BenchmarkVolumeApplySmallFiles(b *testing.B) {
	const n = 50000
	v := volumeCase(b, n, 4<<10)
	store, src, target, full, tarTime := v.store, v.src, v.target, v.full, v.tarTime
	ratio := full.wall.Seconds() / tarTime.Seconds()
	cpuRatio := full.cpu.Seconds() / v.tarCPU.Seconds()

	// Change 1% of the files and capture the new version into the same
	// store (only the changed chunks are new).
	r := rand.NewChaCha8([32]byte{2})
	buf := make([]byte, 4<<10)
	for i := 0; i < n; i += 100 {
		_, _ = r.Read(buf) // ChaCha8.Read always fills buf and returns nil
		p := filepath.Join(src, fmt.Sprintf("d%03d", i/500), fmt.Sprintf("f%05d.bin", i))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	m2 := captureToDir(b, []capture.Source{{Name: "files", URL: src}}, store)
	inc := incremental(b, v, m2)
	incRatio := inc.wall.Seconds() / full.wall.Seconds()
	again := applyInChild(b, m2, store, restore.Targets{"files": {URL: target}})

	incCPURatio := inc.cpu.Seconds() / full.cpu.Seconds()
	b.ReportMetric(ratio, "apply/tar-x")
	b.ReportMetric(cpuRatio, "cpu-apply/tar-x")
	b.ReportMetric(incRatio, "incremental/full")
	b.ReportMetric(float64(max(full.maxRSS, inc.maxRSS))/(1<<20), "peakRSS-MiB")
	ic := inc.result.Components[0]
	ac := again.result.Components[0]
	report(b,
		fmt.Sprintf("50,000 files of 4 KiB: tar -x %s, apply %s, ratio %.3f (goal <= 1.3), peak RSS %s", tarTime.Round(time.Millisecond), full.wall.Round(time.Millisecond), ratio, mib(full.maxRSS)),
		fmt.Sprintf("  CPU time: tar -x %s, apply %s, ratio %.3f", v.tarCPU.Round(time.Millisecond), full.cpu.Round(time.Millisecond), cpuRatio),
		fmt.Sprintf("re-apply with 1%% changed: %s (%d files written, %d chunks fetched), ratio to full apply %.3f (goal <= 0.05), peak RSS %s", inc.wall.Round(time.Millisecond), ic.FilesWritten, ic.ChunksFetched, incRatio, mib(inc.maxRSS)),
		fmt.Sprintf("  CPU time: re-apply %s, ratio to full apply %.3f", inc.cpu.Round(time.Millisecond), incCPURatio),
		fmt.Sprintf("re-apply of the same digest: %s (CPU %s), %d files written, %d chunks fetched", again.wall.Round(time.Millisecond), again.cpu.Round(time.Millisecond), ac.FilesWritten, ac.ChunksFetched),
	)
}
