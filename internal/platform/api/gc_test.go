package api_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/gc"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// slowDeletes is the server's real blob store with each delete taking as
// long as a round trip to a distant object store. It counts the deletes:
// the count is the collection's progress, the clock the test measures
// writers by (wall time on a loaded machine says little).
type slowDeletes struct {
	blob.Store
	delay   time.Duration
	deleted *atomic.Int64
}

func (s slowDeletes) Delete(ctx context.Context, digest string) error {
	time.Sleep(s.delay)
	defer s.deleted.Add(1)
	return s.Store.Delete(ctx, digest)
}

// TestGC_CommitsAndTokenWritesGoOnDuringCollection: a garbage collection
// deleting many chunks, slowly, does not stop the platform: versions are
// pushed and tokens created meanwhile, every one succeeds, they finish
// all through the collection, and none waits out a large part of it (the
// collection locks out writers only for short steps, not for its walk).
// Progress is counted in deleted chunks, not seconds, so a loaded machine
// slows both sides alike.
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
		var deleted atomic.Int64
		slow := slowDeletes{Store: srv.Platform.Blobs, delay: 25 * time.Millisecond, deleted: &deleted}

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
			mu       sync.Mutex
			ops      int
			longest  int64            // most chunks deleted while one operation ran
			finished = map[int]bool{} // thirds of the collection in which an operation finished
		)
		timed := func(what string, op func() error) {
			before := deleted.Load()
			if err := op(); err != nil {
				t.Errorf("%s during garbage collection: %v", what, err)
			}
			after := deleted.Load()
			mu.Lock()
			defer mu.Unlock()
			ops++
			longest = max(longest, after-before)
			if after > 0 && after < garbage {
				finished[int(after*3/garbage)] = true
			}
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
		t.Logf("gc took %s; %d pushes and token creations meanwhile, finishing in thirds %v of it; at most %d of %d deletes during one", took, ops, finished, longest, garbage)
		if ops < 4 {
			t.Fatalf("only %d operations ran during the collection", ops)
		}
		if len(finished) < 3 {
			t.Fatalf("operations finished only in thirds %v of the collection: writers were locked out for a third of it or more", finished)
		}
		if longest > garbage/2 {
			t.Fatalf("an operation waited while %d of the %d chunks were deleted: writers were locked out for long", longest, garbage)
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
