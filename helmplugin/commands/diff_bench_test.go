package commands

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// BenchmarkDiff_ManifestsOfA1GiBState times helm state diff between two
// versions whose manifests are as large as the 1 GiB benchmark state's
// (pgbench at ~1 GiB: ~13,700 chunks at the default 64 KiB average; here
// 16,384), through the real platform. The chunks are small so the setup
// uploads megabytes, not gigabytes: a diff reads only the manifests, whose
// size is set by the number of chunks.
func BenchmarkDiff_ManifestsOfA1GiBState(b *testing.B) {
	ctx := context.Background()
	srv := platformtest.Start(b)
	admin := srv.Admin(b)
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		b.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, "shop", "bench", ""); err != nil {
		b.Fatal(err)
	}
	const chunks = 16384
	data := make([]byte, chunks*300)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	tables := func(accounts int64) statepkg.Summary {
		return statepkg.Summary{SchemaDigest: statepkg.DigestBytes([]byte("schema")), Schema: strings.Repeat("CREATE TABLE public.pgbench_x (aid integer);\n", 20), Tables: []statepkg.TableSummary{
			{Name: "public.pgbench_accounts", Rows: 10_000_000, Bytes: accounts, Digest: statepkg.DigestBytes([]byte{byte(accounts)})},
			{Name: "public.pgbench_branches", Rows: 100, Bytes: 1200, Digest: statepkg.DigestBytes([]byte("b"))},
			{Name: "public.pgbench_history", Rows: 0, Bytes: 0, Digest: statepkg.DigestBytes(nil)},
			{Name: "public.pgbench_tellers", Rows: 1000, Bytes: 13000, Digest: statepkg.DigestBytes([]byte("t"))},
		}}
	}
	var n int
	for i, tag := range []string{"v1", "v2"} {
		if i == 1 {
			copy(data[len(data)/2:], "the second version differs here")
		}
		c, _, err := statepkg.WriteComponent(ctx, admin.Chunks("shop", "bench"), statepkg.Component{Name: "db", Kind: statepkg.KindPostgres, Format: "pg_dump-custom"},
			bytes.NewReader(data), statepkg.WriteOptions{MinSize: 64, AvgSize: 256, MaxSize: 1024})
		if err != nil {
			b.Fatal(err)
		}
		if c.Meta, err = statepkg.SetSummary(nil, tables(int64(1<<30+i))); err != nil {
			b.Fatal(err)
		}
		n = len(c.Chunks)
		m := &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, State: "shop/bench", CreatedAt: time.Now(), Components: []statepkg.Component{c}}
		if _, err := admin.CommitVersion(ctx, "shop", "bench", tag, m); err != nil {
			b.Fatal(err)
		}
	}
	w := &world{srv: srv, admin: admin, env: map[string]string{
		client.EnvEndpoint: srv.URL, client.EnvToken: srv.AdminToken, "UNIKUBE_CONFIG": b.TempDir() + "/login.json",
	}}
	b.Logf("manifests of %d chunks each", n)
	b.ResetTimer()
	for b.Loop() {
		out, errOut, code := w.run(b, "", "diff", "shop/bench:v1", "shop/bench:v2")
		if code != 0 || !strings.Contains(out, "public.pgbench_accounts") {
			b.Fatalf("diff: %d %s %s", code, out, errOut)
		}
	}
}
