package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestExecutor_CaptureFromClusterThenApplyBack writes data into the running
// app, captures it with agent Jobs into one version (a candidate, uploaded
// with a CI user's token, the caller's never entering the cluster), alters
// the data, applies the captured version with quiesce, and checks the data
// is exactly back.
func TestExecutor_CaptureFromClusterThenApplyBack(t *testing.T) {
	env := cluster.Require(t)
	platformURL, cl := exPlatform(t, env)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	if _, err := cl.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateState(ctx, "shop", "live", ""); err != nil {
		t.Fatal(err)
	}
	ci, err := cl.CreateToken(ctx, client.TokenRequest{Name: "ci-capture", User: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutGrant(ctx, "shop", "live", "user:ci", "maintainer"); err != nil {
		t.Fatalf("grant: %v", err)
	}
	app := exCreateApp(ctx, t, env, ns)

	// Live data written in the cluster.
	dsn := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", app.password, portForward(t, env, ns, exPod(ctx, t, env, ns, "app=db"), 5432))
	exPgExec(ctx, t, dsn, `CREATE TABLE items (id int PRIMARY KEY, name text)`,
		`INSERT INTO items SELECT g, 'live-' || g FROM generate_series(1, 5000) g`)
	rc := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", portForward(t, env, ns, exPod(ctx, t, env, ns, "app=cache"), 6379))})
	defer rc.Close()
	for i := range 100 {
		rc.Set(ctx, fmt.Sprintf("k:%d", i), fmt.Sprintf("live-%d", i), 0)
	}
	if _, e, err := execIn(ctx, env, ns, exPod(ctx, t, env, ns, "app=web"), "web", nil, "sh", "-c",
		"mkdir -p /uploads/img && for i in 1 2 3 4 5; do seq 1 $((i*2000)) > /uploads/img/$i.txt; done"); err != nil {
		t.Fatalf("write uploads: %v %s", err, e)
	}
	want := exClusterSums(ctx, t, env, app)

	ms := []discovery.Mapping{
		{Component: "db", Kind: statepkg.KindPostgres, Workload: "StatefulSet/db", Quiesce: []string{"Deployment/web"}},
		{Component: "cache", Kind: statepkg.KindRedis, Selector: "app=cache"},
		{Component: "files", Kind: statepkg.KindVolume, Workload: "Deployment/web"},
	}
	start := time.Now()
	v, err := executor.Capture(ctx, executor.CaptureOptions{
		Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: platformURL, UploadToken: ci.Secret,
		Project: "shop", State: "live", Mappings: ms, Quiesce: true, AgentImage: env.Image("unikube-agent"),
	})
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	t.Logf("captured %s (%s, %d bytes) in %s", v.Tag, v.Digest, v.Size, time.Since(start).Round(time.Millisecond))
	if !v.Candidate || len(v.Components) != 3 {
		t.Fatalf("version %+v, want a candidate with 3 components", v)
	}

	// Alter everything.
	dsn = fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/app?sslmode=disable", app.password, portForward(t, env, ns, exPod(ctx, t, env, ns, "app=db"), 5432))
	exPgExec(ctx, t, dsn, `DELETE FROM items WHERE id > 100`)
	if _, e, err := execIn(ctx, env, ns, exPod(ctx, t, env, ns, "app=web"), "web", nil, "sh", "-c", "rm /uploads/img/2.txt; echo x > /uploads/img/9.txt"); err != nil {
		t.Fatalf("alter uploads: %v %s", err, e)
	}
	if got := exClusterSums(ctx, t, env, app); got.pg == want.pg || got.files == want.files {
		t.Fatal("altering changed nothing")
	}

	mapsApply := []discovery.Mapping{
		{Component: "db", Workload: "StatefulSet/db", Quiesce: []string{"Deployment/web"}},
		{Component: "cache", Selector: "app=cache"},
		{Component: "files", Workload: "Deployment/web"},
	}
	rec, err := executor.Apply(ctx, executor.Options{
		Client: env.Client, Namespace: ns, Platform: cl, PlatformURL: platformURL,
		Ref: statepkg.Ref{Project: "shop", State: "live", Digest: v.Digest}, Release: "shop",
		Mappings: mapsApply, Quiesce: true, AgentImage: env.Image("unikube-agent"), Actor: "e2e",
	})
	if err != nil {
		t.Fatalf("apply the captured version: %v", err)
	}
	t.Logf("applied: %+v", rec.Components)
	if got := exClusterSums(ctx, t, env, app); got != want {
		t.Errorf("after apply:\n%+v\nwant\n%+v", got, want)
	}
}
