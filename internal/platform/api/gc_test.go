package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/gc"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// slowDeletes is the server's real blob store with each delete taking as
// long as a round trip to a distant object store.
type slowDeletes struct {
	blob.Store
	delay time.Duration
}

func (s slowDeletes) Delete(ctx context.Context, digest string) error {
	time.Sleep(s.delay)
	return s.Store.Delete(ctx, digest)
}

// TestGC_CommitsAndTokenWritesGoOnDuringCollection: a garbage collection
// deleting many chunks, slowly, does not stop the platform: versions are
// pushed and tokens created meanwhile, every one succeeds, and none waits
// for more than a moment (the collection locks out writers only for short
// steps, not for its whole walk).
func TestGC_CommitsAndTokenWritesGoOnDuringCollection(t *testing.T) {
	onBothBackends(t, func(t *testing.T, srv *platformtest.Server) {
		ctx := context.Background()
		admin := srv.Admin(t)
		must(admin.CreateProject(ctx, "p", ""))
		must(admin.CreateState(ctx, "p", "s", ""))
		must(admin.PutGrant(ctx, "p", "", "user:mia", client.RoleMaintainer))
		mia := srv.Client(t, srv.UserToken(t, "mia", "mia"))

		const garbage = 120
		for i := range garbage {
			d, z := statepkg.EncodeChunk(randomBytes(1024, uint64(1000+i)))
			if err := srv.Platform.Blobs.Put(ctx, d, z); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		slow := slowDeletes{Store: srv.Platform.Blobs, delay: 25 * time.Millisecond}

		var (
			res    gc.Result
			gcErr  error
			gcDone = make(chan struct{})
		)
		go func() {
			defer close(gcDone)
			res, gcErr = gc.Run(ctx, srv.Platform.Store, slow, gc.Options{Now: func() time.Time { return start }})
		}()

		var (
			mu      sync.Mutex
			slowest time.Duration
			ops     int
		)
		timed := func(what string, op func() error) {
			t0 := time.Now()
			if err := op(); err != nil {
				t.Errorf("%s during garbage collection: %v", what, err)
			}
			mu.Lock()
			defer mu.Unlock()
			ops++
			slowest = max(slowest, time.Since(t0))
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-gcDone:
					return
				default:
				}
				sleep(10)
				m, mem := makeVersion(t, "p/s", "1", randomBytes(64<<10, uint64(5000+i)))
				timed("push", func() error {
					_, _, err := mia.PushVersion(ctx, "p", "s", fmt.Sprintf("v%d", i), m, mem, client.TransferOptions{})
					return err
				})
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-gcDone:
					return
				default:
				}
				sleep(10)
				timed("token creation", func() error {
					_, err := admin.CreateToken(ctx, client.TokenRequest{Name: fmt.Sprintf("ci-%d", i), User: "ci"})
					return err
				})
			}
		}()
		<-gcDone
		wg.Wait()
		took := time.Since(start)
		if gcErr != nil {
			t.Fatalf("gc: %v", gcErr)
		}
		if res.Deleted != garbage {
			t.Fatalf("gc deleted %d chunks, want the %d unreferenced ones (%+v)", res.Deleted, garbage, res)
		}
		t.Logf("gc took %s; %d pushes and token creations meanwhile, the slowest %s", took, ops, slowest)
		if ops < 4 {
			t.Fatalf("only %d operations ran during the collection", ops)
		}
		if limit := 3 * time.Second; slowest > limit || slowest > took/2 {
			t.Fatalf("an operation waited %s during a %s collection: writers were locked out for long", slowest, took)
		}
		// What was pushed meanwhile is intact.
		for _, v := range must(admin.ListVersions(ctx, "p", "s", client.ListVersionsOptions{})) {
			m, _, err := admin.GetManifest(ctx, "p", "s", v.Tag)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, admin.Chunks("p", "s"), m)
		}
	})
}
