package postgres

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// BenchmarkDataLoad times the three steps of a restore into a fresh
// database, section by section, with the data section loaded by
// pg_restore -j 2 and by the driver over 2 connections, alternating
// (A-B-A-B) so load on the machine favours neither. The database is
// pgbench (scale UNIKUBE_BENCH_PG_SCALE, default 30): one big table.
func BenchmarkDataLoad(b *testing.B) {
	scale := 30
	if s, err := strconv.Atoi(os.Getenv("UNIKUBE_BENCH_PG_SCALE")); err == nil {
		scale = s
	}
	ctx := context.Background()
	pg := testenv.StartPostgres(b)
	pg.CreateDatabase(b, "src")
	env := append(os.Environ(), pg.Env()...)
	bin := func(n string) string { return filepath.Join(pg.BinDir, n) }
	run := func(name string, args ...string) time.Duration {
		b.Helper()
		t0 := time.Now()
		cmd := exec.Command(bin(name), args...)
		cmd.Env = append(env, "PGOPTIONS=-c synchronous_commit=off -c maintenance_work_mem=256MB")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return time.Since(t0)
	}
	run("pgbench", "-i", "-q", "-s", strconv.Itoa(scale), "-I", "dtGvp", "src")
	archive := filepath.Join(b.TempDir(), "src.dump")
	run("pg_dump", "-Fc", "-Z", "0", "-f", archive, "src")
	e, err := parseEndpoint(pg.URL("postgres"))
	if err != nil {
		b.Fatal(err)
	}
	mc, err := e.connect(ctx, "postgres")
	if err != nil {
		b.Fatal(err)
	}
	defer mc.Close(ctx)
	// CPU of the server's backends (reaped by the postmaster, so counted
	// once they exit) and of this process and its children.
	postmaster := func() int {
		raw, err := os.ReadFile(filepath.Join(pg.DataDir, "postmaster.pid"))
		if err != nil {
			b.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.SplitN(string(raw), "\n", 2)[0])
		return pid
	}()
	cpu := func() (server, client time.Duration) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", postmaster))
		if err != nil {
			b.Fatal(err)
		}
		f := strings.Fields(string(raw)[strings.LastIndexByte(string(raw), ')')+2:])
		cu, _ := strconv.Atoi(f[13]) // cutime, field 16
		cs, _ := strconv.Atoi(f[14])
		var self, kids syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
		tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
		return time.Duration(cu+cs) * 10 * time.Millisecond, tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
	}
	selfCPU := func() time.Duration {
		var self syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
		return time.Duration(self.Utime.Nano() + self.Stime.Nano())
	}
	b.ResetTimer()
	_, c0 := cpu()
	script := run("pg_restore", "--section=data", "-f", os.DevNull, archive)
	_, c1 := cpu()
	b.Logf("pg_restore writing the data script to /dev/null: %s, CPU %s", script.Round(time.Millisecond), (c1 - c0).Round(10*time.Millisecond))
	times := map[string][]time.Duration{}
	for i, mode := range []string{DataLoadPgRestore, DataLoadParallel, DataLoadPgRestore, DataLoadParallel} {
		db := fmt.Sprintf("x%d", i)
		if _, err := mc.Exec(ctx, "CREATE DATABASE "+db+" TEMPLATE template0"); err != nil {
			b.Fatal(err)
		}
		pre := run("pg_restore", "--no-owner", "--section=pre-data", "-d", db, archive)
		s0, c0 := cpu()
		self0 := selfCPU()
		t0 := time.Now()
		if mode == DataLoadPgRestore {
			run("pg_restore", "--no-owner", "--section=data", "-j", "2", "-d", db, archive)
		} else {
			var conns []*pgx.Conn
			for range 2 {
				c, err := e.connectWith(ctx, db, map[string]string{"synchronous_commit": "off"})
				if err != nil {
					b.Fatal(err)
				}
				conns = append(conns, c)
			}
			cmd := exec.CommandContext(ctx, bin("pg_restore"), "--no-owner", "--section=data", "-f", "-", archive)
			cmd.Env = env
			if err := loadScript(ctx, cmd, conns); err != nil {
				b.Fatal(err)
			}
			for _, c := range conns {
				c.Close(ctx)
			}
			time.Sleep(300 * time.Millisecond) // until the postmaster reaped the backends
		}
		data := time.Since(t0)
		s1, c1 := cpu()
		self1 := selfCPU()
		post := run("pg_restore", "--no-owner", "--section=post-data", "-j", "2", "-d", db, archive)
		times[mode] = append(times[mode], data)
		b.Logf("%-10s pre-data %s, data %s (CPU: server %s, client %s of which this process %s), post-data %s", mode, pre.Round(time.Millisecond), data.Round(time.Millisecond),
			s1-s0, (c1 - c0).Round(10*time.Millisecond), (self1 - self0).Round(10*time.Millisecond), post.Round(time.Millisecond))
		if _, err := mc.Exec(ctx, "DROP DATABASE "+db); err != nil {
			b.Fatal(err)
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	best := func(ds []time.Duration) time.Duration { return min(ds[0], ds[1]) }
	b.Logf("scale %d, archive %d MB; pg_restore writing the data script to /dev/null %s; data best of 2: pg_restore -j 2 %s, parallel %s (%.2f); load %s",
		scale, fileSizeMB(archive), script.Round(time.Millisecond), best(times[DataLoadPgRestore]).Round(time.Millisecond),
		best(times[DataLoadParallel]).Round(time.Millisecond), best(times[DataLoadParallel]).Seconds()/best(times[DataLoadPgRestore]).Seconds(),
		strings.TrimSpace(string(load)))
}

func fileSizeMB(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size() >> 20
}
