package restore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/unikubehq/terraform-provider-unikube/internal/capture"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func pgExec(t testing.TB, url string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func pgSum(t testing.TB, url string) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	var sum string
	if err := c.QueryRow(ctx, `SELECT count(*), md5(string_agg(t::text, ',' ORDER BY id)) FROM items t`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d %s", n, sum)
}

func redisSum(t testing.TB, url string) string {
	t.Helper()
	o, _ := goredis.ParseURL(url)
	c := goredis.NewClient(o)
	defer c.Close()
	ctx := context.Background()
	return fmt.Sprintf("%d %s %v", c.DBSize(ctx).Val()-c.Exists(ctx, "unikube:state").Val(), c.Get(ctx, "k:7").Val(), c.TTL(ctx, "ttl").Val().Round(time.Hour))
}

func dirSum(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil // the target directory itself is not part of the state
		}
		if strings.HasPrefix(rel, ".unikube") {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %s;", rel, fi.Mode(), fi.Size(), fi.ModTime().UTC().Format(time.RFC3339Nano))
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(statepkg.DigestBytes(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func seedVolume(t testing.TB, dir string, version int) {
	t.Helper()
	for i := range 300 {
		p := filepath.Join(dir, fmt.Sprintf("d%d/f%03d.txt", i%5, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("v%d line %d\n", version, i), 40+i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestApply_RoundTripThroughPlatform captures a postgres database, a Redis
// db and a directory, pushes the version to a real platform server, plans
// and applies it onto other targets, re-applies it (a no-op), and checks
// that a corrupt chunk on the platform's disk fails the next apply without
// touching any target.
func TestApply_RoundTripThroughPlatform(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	plat := platformtest.Start(t)
	ctx := context.Background()
	cl := plat.Admin(t)
	if _, err := cl.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateState(ctx, "shop", "seed", ""); err != nil {
		t.Fatal(err)
	}
	store := cl.Chunks("shop", "seed")

	seedAll := func(version int, db string, rdb int, dir string) {
		pg.CreateDatabase(t, db)
		pgExec(t, pg.URL(db), `CREATE TABLE items (id int PRIMARY KEY, name text)`,
			fmt.Sprintf(`INSERT INTO items SELECT g, 'v%d-' || g || repeat('y', 80) FROM generate_series(1, 30000) g`, version))
		o, _ := goredis.ParseURL(rd.URL(rdb))
		c := goredis.NewClient(o)
		for i := range 2000 {
			c.Set(ctx, fmt.Sprintf("k:%d", i), fmt.Sprintf("v%d-%d", version, i), 0)
		}
		c.Set(ctx, "ttl", "x", 5*time.Hour)
		c.Close()
		seedVolume(t, dir, version)
	}
	src1, src2 := t.TempDir(), t.TempDir()
	seedAll(1, "src1", 1, src1)
	seedAll(2, "src2", 2, src2)

	captureVersion := func(tag, db string, rdb int, dir string) (*statepkg.Manifest, string) {
		m, stats, err := capture.Capture(ctx, []capture.Source{
			{Name: "db", URL: pg.URL(db)},
			{Name: "cache", URL: rd.URL(rdb)},
			{Name: "files", URL: "file://" + dir},
		}, store, capture.Spec{State: "shop/seed", Revision: tag})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("capture %s: %+v", tag, stats)
		if _, err := cl.CommitVersion(ctx, "shop", "seed", tag, m); err != nil {
			t.Fatal(err)
		}
		got, digest, err := cl.GetManifest(ctx, "shop", "seed", tag)
		if err != nil {
			t.Fatal(err)
		}
		return got, digest
	}
	m1, d1 := captureVersion("v1", "src1", 1, src1)
	m2, d2 := captureVersion("v2", "src2", 2, src2)

	dst := filepath.Join(t.TempDir(), "volume")
	targets := restore.Targets{
		"db":    {URL: pg.URL("app")},
		"cache": {URL: rd.URL(5)},
		"files": {URL: dst},
	}
	check := func(what string, db string, rdb int, dir string) {
		t.Helper()
		if got, want := pgSum(t, pg.URL("app")), pgSum(t, pg.URL(db)); got != want {
			t.Errorf("%s: postgres %s, want %s", what, got, want)
		}
		if got, want := redisSum(t, rd.URL(5)), redisSum(t, rd.URL(rdb)); got != want {
			t.Errorf("%s: redis %s, want %s", what, got, want)
		}
		if got, want := dirSum(t, dst), dirSum(t, dir); got != want {
			t.Errorf("%s: volume differs", what)
		}
	}

	plan, err := restore.Plan(ctx, m1, d1, targets, store, restore.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.Components {
		if c.Action != driver.ActionCreate {
			t.Errorf("plan %s: %s, want create", c.Component, c.Action)
		}
	}
	var mu sync.Mutex
	var events []restore.Event
	res, err := restore.Apply(ctx, plan, restore.ApplyOptions{Concurrency: 3, Interval: 50 * time.Millisecond, Progress: func(e restore.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	check("first apply", "src1", 1, src1)
	last := events[len(events)-1]
	if !last.Final || len(last.Components) != 3 {
		t.Fatalf("last event %+v", last)
	}
	for _, c := range last.Components {
		if !c.Done || c.Error != "" || c.Bytes == 0 {
			t.Errorf("final progress of %s: %+v", c.Component, c)
		}
	}
	for _, c := range res.Components {
		if c.ChunksFetched == 0 || c.Error != "" {
			t.Errorf("result %s: %+v", c.Component, c)
		}
		t.Logf("apply v1: %s %s in %s, %d bytes, %d chunks, %d files, %d rows", c.Component, c.Action, c.Duration.Round(time.Millisecond), c.Bytes, c.ChunksFetched, c.FilesWritten, c.Rows)
	}

	// Same digest again: nothing to do, nothing fetched.
	plan, err = restore.Plan(ctx, m1, d1, targets, store, restore.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Changes() {
		t.Errorf("re-plan of the applied digest has changes: %+v", plan.Components)
	}
	res, err = restore.Apply(ctx, plan, restore.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Components {
		if c.ChunksFetched != 0 || c.FilesWritten != 0 || c.Action != driver.ActionSkip {
			t.Errorf("re-apply %s: %+v", c.Component, c.ComponentResult)
		}
	}

	// Forced: the same digest is applied again, every component in full.
	plan, err = restore.Plan(ctx, m1, d1, targets, store, restore.PlanOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.Components {
		if c.Action == driver.ActionSkip || c.Current == "" {
			t.Errorf("forced plan %s: %s (current %q), want a re-apply of the current digest", c.Component, c.Action, c.Current)
		}
	}
	res, err = restore.Apply(ctx, plan, restore.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Components {
		if c.ChunksFetched == 0 || c.Action == driver.ActionSkip {
			t.Errorf("forced re-apply %s: %+v", c.Component, c.ComponentResult)
		}
	}
	check("forced re-apply", "src1", 1, src1)

	// Corrupt a chunk of v2's database component on the platform's disk.
	var corrupted string
	for _, c := range m2.Components {
		if c.Name == "db" {
			corrupted = c.Chunks[len(c.Chunks)/2].Digest
		}
	}
	matches, _ := filepath.Glob(filepath.Join(plat.DataDir, "**", "sha256", "*", strings.TrimPrefix(corrupted, "sha256:")))
	if len(matches) == 0 {
		// Entries that vanish or cannot be read while we look are not the
		// chunk file; the count check below catches a missing one.
		_ = filepath.WalkDir(plat.DataDir, func(p string, de os.DirEntry, err error) error {
			if err == nil && de.Name() == strings.TrimPrefix(corrupted, "sha256:") {
				matches = append(matches, p)
			}
			return nil
		})
	}
	if len(matches) != 1 {
		t.Fatalf("chunk file of %s not found under %s", corrupted, plat.DataDir)
	}
	orig, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), orig...)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(matches[0], bad, 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err = restore.Plan(ctx, m2, d2, targets, store, restore.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = restore.Apply(ctx, plan, restore.ApplyOptions{Concurrency: 1})
	if err == nil {
		t.Fatal("apply with a corrupt chunk succeeded")
	}
	t.Logf("corrupt chunk: %v", err)
	check("after failed apply", "src1", 1, src1)

	// Repaired, v2 applies: volume incrementally.
	if err := os.WriteFile(matches[0], orig, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = restore.Apply(ctx, plan, restore.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Components {
		if c.Action == driver.ActionSkip {
			t.Errorf("apply v2 %s: %+v, want it applied", c.Component, c.ComponentResult)
		}
	}
	check("v2", "src2", 2, src2)
}
