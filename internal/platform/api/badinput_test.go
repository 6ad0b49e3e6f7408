package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// raw sends one request and returns status and decoded error message.
func raw(t *testing.T, srv *platformtest.Server, method, path, ctype string, body []byte) (int, string, []string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
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

func TestBadInput_RejectedWithMessage(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) { o.MaxBodyBytes = 1 << 20 }))
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))

	good := randomBytes(64<<10, 3)
	digest, compressed := statepkg.EncodeChunk(good)
	_, otherCompressed := statepkg.EncodeChunk(randomBytes(64<<10, 4))
	chunkPath := "/api/v1/projects/p/states/s/chunks/" + digest
	m, _ := makeVersion(t, "p/s", "1", randomBytes(300<<10, 5))
	manifest, _ := m.Encode()
	commit := func(tag string, man []byte) []byte {
		b, _ := json.Marshal(map[string]any{"tag": tag, "manifest": json.RawMessage(man)})
		return b
	}

	cases := []struct {
		name, method, path string
		body               []byte
		want               int
	}{
		{"chunk bytes of another chunk", "PUT", chunkPath, otherCompressed, 400},
		{"chunk bytes not zstd", "PUT", chunkPath, []byte("definitely not zstd"), 400},
		{"chunk empty body", "PUT", chunkPath, nil, 400},
		{"chunk oversize", "PUT", chunkPath, randomBytes(2<<20, 1), 413},
		{"chunk digest malformed", "PUT", "/api/v1/projects/p/states/s/chunks/sha256:XYZ", compressed, 400},
		{"chunk digest other algorithm", "GET", "/api/v1/projects/p/states/s/chunks/md5:d41d8cd98f00b204e9800998ecf8427e", nil, 400},
		{"chunk digest traversal", "GET", "/api/v1/projects/p/states/s/chunks/..%2F..%2F..%2Fetc%2Fpasswd", nil, 400},
		{"project traversal", "GET", "/api/v1/projects/..%2F..%2Fetc/states", nil, 400},
		{"state traversal", "GET", "/api/v1/projects/p/states/..%2Fx/versions", nil, 400},
		{"script traversal", "GET", "/api/v1/projects/p/scripts/%2E%2E%2Fx", nil, 400},
		{"tag traversal", "GET", "/api/v1/projects/p/states/s/versions/..%2F..%2Fx", nil, 400},
		{"malformed JSON", "POST", "/api/v1/projects", []byte(`{"name": "x"`), 400},
		{"JSON unknown field", "POST", "/api/v1/projects", []byte(`{"name": "x", "colour": "y"}`), 400},
		{"JSON trailing garbage", "POST", "/api/v1/projects", []byte(`{"name": "x"} {}`), 400},
		{"JSON oversize", "POST", "/api/v1/projects", append([]byte(`{"name": "x", "description": "`), append(bytes.Repeat([]byte("a"), 2<<20), '"', '}')...), 413},
		{"invalid project name", "POST", "/api/v1/projects", []byte(`{"name": "Bad_Name"}`), 400},
		{"invalid state name", "POST", "/api/v1/projects/p/states", []byte(`{"name": "-x"}`), 400},
		{"too long state name", "POST", "/api/v1/projects/p/states", []byte(`{"name": "` + strings.Repeat("a", 64) + `"}`), 400},
		{"invalid tag", "POST", "/api/v1/projects/p/states/s/versions", commit("bad tag!", manifest), 400},
		{"read-only tag expression", "POST", "/api/v1/projects/p/states/s/versions", commit("@latest", manifest), 400},
		{"manifest not JSON object", "POST", "/api/v1/projects/p/states/s/versions", commit("v1", []byte(`"x"`)), 400},
		{"manifest newer schema", "POST", "/api/v1/projects/p/states/s/versions", commit("v1", []byte(`{"schemaVersion": 2, "components": []}`)), 400},
		{"manifest for another state", "POST", "/api/v1/projects/p/states/s/versions", commit("v1", mustEncode(t, withState(m, "p/other"))), 400},
		{"manifest missing", "POST", "/api/v1/projects/p/states/s/versions", []byte(`{"tag": "v1"}`), 400},
		{"unknown write expression", "GET", "/api/v1/projects/p/states/s/versions/@newest", nil, 400},
		{"write-only expression on read", "GET", "/api/v1/projects/p/states/s/versions/@random", nil, 400},
		{"retag to expression", "POST", "/api/v1/projects/p/states/s/versions/v1/retag", []byte(`{"tag": "@latest"}`), 400},
		{"grant bad subject", "PUT", "/api/v1/projects/p/grants/root", []byte(`{"role": "viewer"}`), 400},
		{"grant bad role", "PUT", "/api/v1/projects/p/grants/user:x", []byte(`{"role": "god"}`), 400},
		{"script bad interpreter", "PUT", "/api/v1/projects/p/scripts/x", []byte(`{"interpreter": "perl", "body": "1"}`), 400},
		{"script raw secret in credentials", "PUT", "/api/v1/projects/p/scripts/x", []byte(`{"interpreter": "sh", "body": "1", "credentials": [{"secret": "password=hunter2"}]}`), 400},
		{"script bad variable", "PUT", "/api/v1/projects/p/scripts/x", []byte(`{"interpreter": "sh", "body": "1", "variables": [{"name": "1X"}]}`), 400},
		{"job token ttl too long", "POST", "/api/v1/projects/p/states/s/versions/@latest/job-tokens", []byte(`{"ttl_seconds": 999999}`), 400},
		{"token bad name", "POST", "/api/v1/tokens", []byte(`{"name": "a b", "user": "x"}`), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, msg, _ := raw(t, srv, c.method, c.path, "application/json", c.body)
			if code != c.want {
				t.Fatalf("%s %s: got %d (%q), want %d", c.method, c.path, code, msg, c.want)
			}
			if msg == "" {
				t.Fatalf("%s %s: %d without an error message", c.method, c.path, code)
			}
		})
	}

	// Nothing of the rejected chunk uploads was stored.
	if ok, err := admin.Chunks("p", "s").Has(ctx, digest); err != nil || ok {
		t.Fatalf("rejected chunk stored: %v %v", ok, err)
	}
	var files int
	_ = filepath.Walk(filepath.Join(srv.DataDir, "chunks"), func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() {
			files++
		}
		return nil
	})
	if files != 0 {
		t.Fatalf("%d files in the chunk store after rejected uploads", files)
	}

	// A manifest naming unknown chunks: 409 listing exactly them, no version.
	code, msg, missing := raw(t, srv, "POST", "/api/v1/projects/p/states/s/versions", "application/json", commit("v1", manifest))
	if code != http.StatusConflict || len(missing) != len(m.Components[0].Chunks) || !strings.Contains(msg, "upload") {
		t.Fatalf("commit with unknown chunks: %d %q %d missing", code, msg, len(missing))
	}
	if _, err := admin.GetVersion(ctx, "p", "s", "v1"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("version visible after refused commit: %v", err)
	}
	// The good bytes are accepted, twice (idempotent): 201 then 200.
	if code, msg, _ := raw(t, srv, "PUT", chunkPath, "application/zstd", compressed); code != 201 {
		t.Fatalf("good chunk: %d %s", code, msg)
	}
	if code, msg, _ := raw(t, srv, "PUT", chunkPath, "application/zstd", compressed); code != 200 {
		t.Fatalf("good chunk again: %d %s", code, msg)
	}
}

func withState(m *statepkg.Manifest, state string) *statepkg.Manifest {
	c := *m
	c.State = state
	return &c
}

func mustEncode(t *testing.T, m *statepkg.Manifest) []byte {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
