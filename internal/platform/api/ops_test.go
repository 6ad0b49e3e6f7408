package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestScaleOut_TwoReplicasShareState: two servers on one PostgreSQL database
// and one S3 bucket act as one platform (what runs behind a load balancer).
func TestScaleOut_TwoReplicasShareState(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	pg.CreateDatabase(t, "platform")
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "chunks")
	shared := platformtest.WithOptions(func(o *platformtest.Options) {
		o.Database = pg.URL("platform")
		o.BlobStore = "s3://chunks?endpoint=" + s3.Endpoint + "&region=" + s3.Region
		o.Env = map[string]string{"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey}
	})
	// Both replicas start at once: migrations must not race.
	var a, b *platformtest.Server
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = platformtest.Start(t, shared) }()
	go func() { defer wg.Done(); b = platformtest.Start(t, shared) }()
	wg.Wait()

	ca, cb := a.Admin(t), b.Admin(t)
	must(ca.CreateProject(ctx, "p", ""))
	must(cb.CreateState(ctx, "p", "s", ""))
	data := randomBytes(2<<20, 31)
	m, mem := makeVersion(t, "p/s", "1", data)
	// Half the chunks through each replica, the commit through the first.
	chunks := m.Components[0].Chunks
	for i, ch := range chunks {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		d, _ := mem.Get(ctx, ch.Digest)
		if err := c.Chunks("p", "s").Put(ctx, ch.Digest, d); err != nil {
			t.Fatal(err)
		}
	}
	must(ca.CommitVersion(ctx, "p", "s", "v1", m))
	gm, _, err := cb.GetManifest(ctx, "p", "s", "@latest")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, cb.Chunks("p", "s"), gm), data) {
		t.Fatal("replica b reads other data")
	}
	// A token revoked on one replica is refused by the other within the
	// token cache's lifetime (1 s).
	tok := a.UserToken(t, "roamer", "rita")
	rb := b.Client(t, tok)
	must(rb.Whoami(ctx))
	if err := ca.RevokeToken(ctx, "roamer"); err != nil {
		t.Fatal(err)
	}
	deadlineOK := false
	for i := 0; i < 30; i++ {
		if _, err := rb.Whoami(ctx); err != nil {
			deadlineOK = true
			break
		}
		sleep(100)
	}
	if !deadlineOK {
		t.Fatal("revoked token still accepted by the other replica after 3 s")
	}
}

// TestOps_MetricsAndLogsWithoutSecrets: /metrics exposes request counters
// to the admin token only; request logs name routes and principals but
// never a token.
func TestOps_MetricsAndLogsWithoutSecrets(t *testing.T) {
	ctx := context.Background()
	var logs syncBuf
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}))
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	secret := srv.UserToken(t, "t1", "u1")
	_, _ = srv.Client(t, secret).GetProject(ctx, "p")
	_, _ = srv.Client(t, "uks_wrong-token-value-xyz").GetProject(ctx, "p")

	for name, token := range map[string]string{"no token": "", "a user token": secret} {
		status, body := getWithToken(t, srv.URL+"/metrics", token)
		if status == http.StatusOK || strings.Contains(body, "unikube_http_requests_total") {
			t.Fatalf("/metrics with %s: %d %.200s, want it refused", name, status, body)
		}
	}
	status, body := getWithToken(t, srv.URL+"/metrics", srv.AdminToken)
	if status != http.StatusOK {
		t.Fatalf("/metrics with the admin token: %d %s", status, body)
	}
	for _, want := range []string{`unikube_http_requests_total{code="201",method="POST",route="POST /api/v1/projects"} 1`, "unikube_auth_failures_total 2", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	out := logs.String()
	if !strings.Contains(out, `"route":"GET /api/v1/projects/{project}"`) || !strings.Contains(out, `"principal":"user:u1"`) {
		t.Fatalf("request logs lack route/principal:\n%s", out)
	}
	for _, s := range []string{secret, srv.AdminToken, "uks_wrong-token-value-xyz", "Bearer "} {
		if strings.Contains(out, s) {
			t.Fatalf("logs contain a secret (%.8q...)", s)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
