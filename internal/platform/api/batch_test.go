package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// checkBatch fetches m's chunks through the batch endpoint in reverse order
// with repeats, padded past the server's 1024-digest limit, and compares
// every frame with the chunk's stored bytes.
func checkBatch(t *testing.T, chunks *client.ChunkStore, want statepkg.ChunkStore, m *statepkg.Manifest) {
	t.Helper()
	ctx := context.Background()
	var digests []string
	for _, ch := range m.Components[0].Chunks {
		digests = append(digests, ch.Digest)
	}
	slices.Reverse(digests)
	for len(digests) <= 1100 {
		digests = append(digests, digests...)
	}
	got := 0
	err := chunks.GetBatch(ctx, digests, func(i int, data []byte) error {
		if i != got {
			t.Fatalf("frame %d handed over as %d", got, i)
		}
		got++
		exp, err := want.Get(ctx, digests[i])
		if err != nil {
			return err
		}
		if !bytes.Equal(data, exp) {
			t.Fatalf("chunk %d (%s): %d bytes differ from the %d stored", i, digests[i], len(data), len(exp))
		}
		return nil
	})
	if err != nil || got != len(digests) {
		t.Fatalf("batch of %d chunks: %d handed over, %v", len(digests), got, err)
	}
}

// TestBatch_BadInput: an empty, oversize or malformed digest list, or
// malformed JSON, is a 400 with a message; chunks that are not part of a
// version the caller may read are a 404 listing them, with nothing sent.
func TestBatch_BadInput(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	m, mem := makeVersion(t, "p/s", "1", randomBytes(300<<10, 21))
	must3(admin.PushVersion(ctx, "p", "s", "v1", m, mem, client.TransferOptions{}))
	must(admin.PutGrant(ctx, "p", "", "user:ann", client.RoleApplier))
	ann := srv.UserToken(t, "ann", "ann")
	own := m.Components[0].Chunks[0].Digest
	unknown := statepkg.DigestBytes([]byte("never uploaded"))
	body := func(digests ...string) []byte {
		b, _ := json.Marshal(map[string]any{"digests": digests})
		return b
	}
	tooMany := make([]string, 1025)
	for i := range tooMany {
		tooMany[i] = own
	}
	const path = "/api/v1/projects/p/states/s/chunks:batch"
	cases := []struct {
		name        string
		body        []byte
		want        int
		msg         string
		wantMissing []string
	}{
		{"empty list", body(), 400, "empty", nil},
		{"no list", []byte(`{}`), 400, "empty", nil},
		{"too many digests", body(tooMany...), 400, "limit is 1024", nil},
		{"malformed digest", body(own, "sha256:XYZ"), 400, "digests[1]", nil},
		{"other algorithm", body("md5:d41d8cd98f00b204e9800998ecf8427e"), 400, "digests[0]", nil},
		{"traversal as digest", body("../../etc/passwd"), 400, "digests[0]", nil},
		{"malformed JSON", []byte(`{"digests": [`), 400, "malformed JSON", nil},
		{"unknown field", []byte(`{"digests": [], "ids": []}`), 400, "malformed JSON", nil},
		{"unknown chunk", body(own, unknown, unknown), 404, "not part of any version", []string{unknown}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, msg, missing := rawAs(t, srv, ann, "POST", path, c.body)
			if code != c.want || !strings.Contains(msg, c.msg) || !slices.Equal(missing, c.wantMissing) {
				t.Fatalf("got %d %q missing %v, want %d with %q, missing %v", code, msg, missing, c.want, c.msg, c.wantMissing)
			}
		})
	}
	// Through the client: a typed error wrapping ErrMissingChunk and ErrNotFound.
	err := srv.Client(t, ann).Chunks("p", "s").GetBatch(ctx, []string{own, unknown}, func(int, []byte) error { return nil })
	if !errors.Is(err, statepkg.ErrMissingChunk) || !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), unknown) {
		t.Fatalf("unknown chunk through the client: %v", err)
	}
}

// rawAs sends one request with token and returns status, error message and
// the missing list.
func rawAs(t *testing.T, srv *platformtest.Server, token, method, path string, body []byte) (int, string, []string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error   string   `json:"error"`
		Missing []string `json:"missing"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error, e.Missing
}

// TestBatch_LostBlobNamesTheChunk: a chunk a version references but the
// blob store lost comes as a "missing" frame after the chunks before it;
// the restore reader then names exactly that chunk.
func TestBatch_LostBlobNamesTheChunk(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	m, mem := makeVersion(t, "p/s", "1", randomBytes(1<<20, 22))
	must3(admin.PushVersion(ctx, "p", "s", "v1", m, mem, client.TransferOptions{}))
	chunks := m.Components[0].Chunks
	lost := chunks[len(chunks)/2]
	var removed int
	_ = filepath.Walk(filepath.Join(srv.DataDir, "chunks"), func(p string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() && strings.HasSuffix(p, strings.TrimPrefix(lost.Digest, "sha256:")) {
			removed++
			return os.Remove(p)
		}
		return nil
	})
	if removed != 1 {
		t.Fatalf("removed %d blob files for %s", removed, lost.Digest)
	}
	must(admin.PutGrant(ctx, "p", "", "user:ann", client.RoleApplier))
	store := srv.Client(t, srv.UserToken(t, "ann", "ann")).Chunks("p", "s")
	var digests []string
	for _, ch := range chunks {
		digests = append(digests, ch.Digest)
	}
	delivered := 0
	err := store.GetBatch(ctx, digests, func(int, []byte) error { delivered++; return nil })
	if !errors.Is(err, statepkg.ErrMissingChunk) || !strings.Contains(err.Error(), lost.Digest) || delivered != len(chunks)/2 {
		t.Fatalf("lost chunk: %d delivered, %v; want %d then ErrMissingChunk naming %s", delivered, err, len(chunks)/2, lost.Digest)
	}
	var ce *statepkg.ChunkError
	err = statepkg.ReadComponent(ctx, store, m.Components[0], io.Discard, statepkg.ReadOptions{})
	if !errors.As(err, &ce) || ce.Chunk != lost.Digest || !errors.Is(err, statepkg.ErrMissingChunk) {
		t.Fatalf("restore with a lost chunk: want a ChunkError naming %s, got %v", lost.Digest, err)
	}
}

// TestBatch_CutOffResponseResumes: a batch response that breaks midway is
// resumed by asking for the rest; restore gets every byte.
func TestBatch_CutOffResponseResumes(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	data := randomBytes(6<<20, 23)
	m, mem := makeVersion(t, "p/s", "1", data)
	must3(admin.PushVersion(ctx, "p", "s", "v1", m, mem, client.TransferOptions{}))

	// A proxy that cuts off the first three batch responses after 300 KB.
	target, _ := url.Parse(srv.URL)
	var cuts atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.RequestURI = target.Scheme, target.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		if strings.HasSuffix(r.URL.Path, "chunks:batch") && cuts.Add(1) <= 3 {
			_, _ = io.CopyN(w, resp.Body, 300<<10)
			panic(http.ErrAbortHandler)
		}
		_, _ = io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	c, err := client.New(client.Config{Endpoint: proxy.URL, Token: srv.AdminToken, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := statepkg.ReadComponent(ctx, c.Chunks("p", "s"), m.Components[0], &got, statepkg.ReadOptions{}); err != nil {
		t.Fatalf("restore through a cutting proxy: %v", err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("restored bytes differ")
	}
	if cuts.Load() <= 3 {
		t.Fatalf("only %d batch requests: the test cut nothing off", cuts.Load())
	}
	if _, err := c.DownloadChunks(ctx, "p", "s", m, statepkg.NewMemoryStore(), client.TransferOptions{}); err != nil {
		t.Fatalf("download after the cuts: %v", err)
	}
}
