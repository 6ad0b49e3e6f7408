package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
)

// TestChunks_ConcurrentSameUploadStoredOnce: two clients pushing the same
// content at the same time both succeed and each chunk is stored once.
func TestChunks_ConcurrentSameUploadStoredOnce(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	m, mem := makeVersion(t, "p/s", "1", randomBytes(8<<20, 21))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := srv.Admin(t)
			// Upload everything without asking first, so the PUTs really race.
			_, err := c.UploadChunks(ctx, "p", "s", m, mem, client.TransferOptions{Parallelism: 4})
			if err == nil {
				_, err = c.CommitVersion(ctx, "p", "s", fmt.Sprintf("v%d", i), m)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	var files int
	_ = filepath.Walk(filepath.Join(srv.DataDir, "chunks", "sha256"), func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() {
			files++
		}
		return nil
	})
	if want := len(m.Components[0].Chunks); files != want {
		t.Fatalf("%d chunk files stored, want %d (one per distinct chunk)", files, want)
	}
	tmp, _ := os.ReadDir(filepath.Join(srv.DataDir, "chunks", "tmp"))
	if len(tmp) != 0 {
		t.Fatalf("%d temp files left behind", len(tmp))
	}
}

// TestChunks_RangeResumesDownload: GET with Range returns the tail of the
// stored bytes (206), so a broken download resumes where it stopped.
func TestChunks_RangeResumesDownload(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	m, mem := makeVersion(t, "p/s", "1", randomBytes(1<<20, 22))
	must3(admin.PushVersion(ctx, "p", "s", "v1", m, mem, client.TransferOptions{}))
	d := m.Components[0].Chunks[0].Digest
	full, _ := mem.Get(ctx, d)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/projects/p/states/s/chunks/"+d, nil)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	req.Header.Set("Range", "bytes=100-")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || string(b) != string(full[100:]) {
		t.Fatalf("range: %d, %d bytes, want 206 with %d bytes", resp.StatusCode, len(b), len(full)-100)
	}
	if !strings.Contains(resp.Header.Get("Content-Range"), fmt.Sprintf("/%d", len(full))) {
		t.Fatalf("content-range %q", resp.Header.Get("Content-Range"))
	}
}
