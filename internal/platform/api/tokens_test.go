package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/server"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// getWithToken GETs url with "Authorization: Bearer token" (none for "")
// and returns the status and body.
func getWithToken(t *testing.T, url, token string) (int, string) {
	t.Helper()
	return getWithAuthorization(t, url, map[bool]string{true: "", false: "Bearer " + token}[token == ""])
}

func getWithAuthorization(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestTokens_ChildNeverOutlivesParentAndDiesWithIt: a token minted by an
// expiring token expires with it at the latest, records its parent, and is
// revoked (with its own children) when the parent is.
func TestTokens_ChildNeverOutlivesParentAndDiesWithIt(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	parentTok := must(admin.CreateToken(ctx, client.TokenRequest{Name: "laptop", User: "alice", TTLSeconds: 3600}))
	parent := srv.Client(t, parentTok.Secret)

	forever := must(parent.CreateToken(ctx, client.TokenRequest{Name: "no-expiry-asked"}))
	longer := must(parent.CreateToken(ctx, client.TokenRequest{Name: "ten-hours-asked", TTLSeconds: 10 * 3600}))
	shorter := must(parent.CreateToken(ctx, client.TokenRequest{Name: "ten-minutes", TTLSeconds: 600}))
	for _, c := range []client.CreatedToken{forever, longer} {
		if c.ExpiresAt == nil || !c.ExpiresAt.Equal(*parentTok.ExpiresAt) {
			t.Fatalf("%s expires %v, want capped at the parent's %v", c.Name, c.ExpiresAt, parentTok.ExpiresAt)
		}
		if c.ParentID != parentTok.ID {
			t.Fatalf("%s parent %q, want %q", c.Name, c.ParentID, parentTok.ID)
		}
	}
	if shorter.ExpiresAt == nil || !shorter.ExpiresAt.Before(*parentTok.ExpiresAt) {
		t.Fatalf("a shorter lifetime stays: %v", shorter.ExpiresAt)
	}
	child := srv.Client(t, forever.Secret)
	grandchild := srv.Client(t, must(child.CreateToken(ctx, client.TokenRequest{Name: "grandchild"})).Secret)
	sibling := srv.Client(t, srv.UserToken(t, "desktop", "alice")) // same user, not minted by laptop
	for _, c := range []*client.Client{child, grandchild, sibling} {
		if _, err := c.Whoami(ctx); err != nil {
			t.Fatalf("before the revocation: %v", err)
		}
	}

	if err := admin.RevokeUserToken(ctx, "alice", "laptop"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client.Client{"parent": parent, "child": child, "grandchild": grandchild} {
		if _, err := c.Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("%s after its parent's revocation: want 401, got %v", name, err)
		}
	}
	if _, err := sibling.Whoami(ctx); err != nil {
		t.Fatalf("a token the revoked one did not mint: %v", err)
	}
}

// TestTokens_UploadTokenOnlyUploadsToItsState: the token `helm state
// capture` hands its agent Jobs may upload chunks to and commit versions of
// its one state, and nothing else; it ends with its minter's role.
func TestTokens_UploadTokenOnlyUploadsToItsState(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "a", ""))
	must(admin.CreateState(ctx, "p", "b", ""))
	old, oldMem := makeVersion(t, "", "old", randomBytes(100<<10, 21))
	must3(admin.PushVersion(ctx, "p", "a", "v1", old, oldMem, client.TransferOptions{}))
	must3(admin.PushVersion(ctx, "p", "b", "v1", old, oldMem, client.TransferOptions{}))
	must(admin.PutGrant(ctx, "p", "", "user:alice", client.RoleMaintainer))
	alice := srv.Client(t, srv.UserToken(t, "alice", "alice"))

	if _, err := alice.CreateUploadToken(ctx, "p", "a", 7*time.Hour); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("upload token for 7 h: want 400, got %v", err)
	}
	ut := must(alice.CreateUploadToken(ctx, "p", "a", 30*time.Minute))
	if ut.Project != "p" || ut.State != "a" || time.Until(ut.ExpiresAt) > 31*time.Minute {
		t.Fatalf("upload token: %+v", ut)
	}
	up := srv.Client(t, ut.Token)

	// What a capture agent does: upload chunks and a description read back
	// later by the caller, or commit a version itself.
	m, mem := makeVersion(t, "", "new", randomBytes(100<<10, 22))
	v, _, err := up.PushVersion(ctx, "p", "a", "captured", m, mem, client.TransferOptions{})
	if err != nil {
		t.Fatalf("upload token push to its state: %v", err)
	}
	if !strings.HasPrefix(v.CreatedBy, "upload:") {
		t.Fatalf("created_by %q does not name the upload token", v.CreatedBy)
	}
	desc, descZ := statepkg.EncodeChunk([]byte(`{"name":"db"}`))
	if err := up.Chunks("p", "a").PutForReadBack(ctx, desc, descZ); err != nil {
		t.Fatalf("upload token read-back upload: %v", err)
	}
	if _, err := alice.Chunks("p", "a").Get(ctx, desc); err != nil {
		t.Fatalf("the maintainer reads the description back: %v", err)
	}

	oldChunk := old.Components[0].Chunks[0].Digest
	oldZ, _ := oldMem.Get(ctx, oldChunk)
	denied := map[string]func() error{
		"show the version":        func() error { _, err := up.GetVersion(ctx, "p", "a", "v1"); return err },
		"download a manifest":     func() error { _, _, err := up.GetManifest(ctx, "p", "a", "v1"); return err },
		"download a chunk":        func() error { _, err := up.Chunks("p", "a").Get(ctx, oldChunk); return err },
		"read back a description": func() error { _, err := up.Chunks("p", "a").Get(ctx, desc); return err },
		"download chunks in a batch": func() error {
			return up.Chunks("p", "a").GetBatch(ctx, digestsOf(old), func(int, []byte) error { return nil })
		},
		"list versions":           func() error { _, err := up.ListVersions(ctx, "p", "a", client.ListVersionsOptions{}); return err },
		"upload to another state": func() error { return up.Chunks("p", "b").Put(ctx, oldChunk, oldZ) },
		"commit to another state": func() error { _, err := up.CommitVersion(ctx, "p", "b", "x", old); return err },
		"read another state":      func() error { _, _, err := up.GetManifest(ctx, "p", "b", "v1"); return err },
		"retag":                   func() error { _, err := up.Retag(ctx, "p", "a", "v1", "v9"); return err },
		"delete a version":        func() error { return up.DeleteVersion(ctx, "p", "a", "v1") },
		"grant":                   func() error { _, err := up.PutGrant(ctx, "p", "a", "user:eve", client.RoleOwner); return err },
		"create a project":        func() error { _, err := up.CreateProject(ctx, "q", ""); return err },
		"create a state":          func() error { _, err := up.CreateState(ctx, "p", "c", ""); return err },
		"mint a user token":       func() error { _, err := up.CreateToken(ctx, client.TokenRequest{Name: "x"}); return err },
		"mint a job token":        func() error { _, err := up.CreateJobToken(ctx, "p", "a", "v1", 0); return err },
		"mint an upload token":    func() error { _, err := up.CreateUploadToken(ctx, "p", "a", 0); return err },
		"list tokens":             func() error { _, err := up.ListTokens(ctx, ""); return err },
	}
	for name, f := range denied {
		if err := f(); !errors.Is(err, client.ErrForbidden) && !errors.Is(err, client.ErrNotFound) {
			t.Errorf("upload token may not %s: want 403/404, got %v", name, err)
		}
	}
	if ps := must(up.ListProjects(ctx)); len(ps) != 0 {
		t.Errorf("upload token lists projects: %+v", ps)
	}

	// It ends when its minter is no longer a maintainer of the state.
	must(admin.PutGrant(ctx, "p", "", "user:alice", client.RoleApplier))
	if _, err := up.Chunks("p", "a").Has(ctx, oldChunk); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("upload token after its minter lost maintainer: want 401, got %v", err)
	}
}

// TestTokens_JobTokenEndsWithMinterGrantOrVersion: a job token stops
// working when the token that minted it is revoked, when the grant that
// made the minter an applier is removed, and when its version is deleted,
// for good: the same manifest or state committed again does not revive it.
func TestTokens_JobTokenEndsWithMinterGrantOrVersion(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	m, mem := makeVersion(t, "", "1", randomBytes(100<<10, 31))
	must3(admin.PushVersion(ctx, "p", "s", "v1", m, mem, client.TransferOptions{}))
	must3(admin.PushVersion(ctx, "p", "s", "v2", m, mem, client.TransferOptions{}))
	must(admin.PutGrant(ctx, "p", "s", "group:deployers", client.RoleApplier))
	ann := srv.Client(t, srv.UserToken(t, "ann-ci", "ann", "deployers"))

	works := func(name string, job *client.Client, ref string) {
		t.Helper()
		if _, _, err := job.GetManifest(ctx, "p", "s", ref); err != nil {
			t.Fatalf("%s: job token should work: %v", name, err)
		}
	}
	dead := func(name string, job *client.Client, ref string) {
		t.Helper()
		if _, _, err := job.GetManifest(ctx, "p", "s", ref); !errors.Is(err, client.ErrUnauthorized) {
			t.Fatalf("%s: want 401, got %v", name, err)
		}
	}

	if _, err := ann.CreateJobToken(ctx, "p", "s", "v1", 6*time.Hour+time.Second); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("job token over 6 h: want 400, got %v", err)
	}
	j := srv.Client(t, must(ann.CreateJobToken(ctx, "p", "s", "v1", 6*time.Hour)).Token)
	works("fresh", j, "v1")
	if err := admin.DeleteGrant(ctx, "p", "s", "group:deployers"); err != nil {
		t.Fatal(err)
	}
	dead("after the minter's grant was removed", j, "v1")
	must(admin.PutGrant(ctx, "p", "s", "group:deployers", client.RoleApplier))

	j = srv.Client(t, must(ann.CreateJobToken(ctx, "p", "s", "v1", 0)).Token)
	works("minted again", j, "v1")
	if err := ann.RevokeToken(ctx, "ann-ci"); err != nil {
		t.Fatal(err)
	}
	dead("after the minter was revoked", j, "v1")

	ann = srv.Client(t, srv.UserToken(t, "ann-ci-2", "ann", "deployers"))
	j1 := srv.Client(t, must(ann.CreateJobToken(ctx, "p", "s", "v1", 0)).Token)
	j2 := srv.Client(t, must(ann.CreateJobToken(ctx, "p", "s", "v2", 0)).Token)
	works("v1", j1, "v1")
	if err := admin.DeleteVersion(ctx, "p", "s", "v2"); err != nil {
		t.Fatal(err)
	}
	works("v1 after v2 was deleted", j1, "v1")
	// v1 and v2 are the same manifest: deleting v1 too removes the version
	// the job token was issued for.
	if err := admin.DeleteVersion(ctx, "p", "s", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := j2.Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("job token of a deleted version: want 401, got %v", err)
	}

	// Committing the same manifest again makes a new version: the tokens of
	// the deleted one stay dead.
	must(admin.CommitVersion(ctx, "p", "s", "v1", m))
	dead("after the same manifest was committed again", j1, "v1")

	// A deleted state takes its job and upload tokens along, also when a
	// state of the same name and content comes back.
	must(admin.CreateState(ctx, "p", "t", ""))
	must(admin.CommitVersion(ctx, "p", "t", "v1", m))
	must(admin.PutGrant(ctx, "p", "t", "group:deployers", client.RoleMaintainer))
	jt := srv.Client(t, must(ann.CreateJobToken(ctx, "p", "t", "v1", 0)).Token)
	ut := srv.Client(t, must(ann.CreateUploadToken(ctx, "p", "t", 0)).Token)
	if err := admin.DeleteState(ctx, "p", "t"); err != nil {
		t.Fatal(err)
	}
	must(admin.CreateState(ctx, "p", "t", ""))
	must(admin.CommitVersion(ctx, "p", "t", "v1", m))
	must(admin.PutGrant(ctx, "p", "t", "group:deployers", client.RoleMaintainer))
	for name, c := range map[string]*client.Client{"job": jt, "upload": ut} {
		if _, err := c.Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
			t.Fatalf("%s token of a deleted and re-created state: want 401, got %v", name, err)
		}
	}
}

// TestTokens_NameGrantNotClaimableByAnotherUser: a token:NAME grant binds
// to the owner of the token, so another user creating a token of the same
// name gains nothing, and creating it tells them nothing.
func TestTokens_NameGrantNotClaimableByAnotherUser(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	olga := srv.Client(t, srv.UserToken(t, "olga", "olga"))
	must(olga.CreateProject(ctx, "p", ""))
	must(olga.CreateState(ctx, "p", "s", ""))
	ci := srv.Client(t, must(olga.CreateToken(ctx, client.TokenRequest{Name: "ci"})).Secret)

	// The legacy form names the granter's own token; the explicit form
	// names the owner and may precede the token.
	g := must(olga.PutGrant(ctx, "p", "", "token:ci", client.RoleMaintainer))
	if g.Subject != "token:ci" || g.TokenUser != "olga" {
		t.Fatalf("grant: %+v, want token:ci bound to olga", g)
	}
	must(olga.PutGrant(ctx, "p", "", "token:olga:deploy", client.RoleMaintainer))

	// Mallory creates tokens with both names: allowed (names are per user;
	// the answer is the same whether or not olga has one) and useless.
	mallory := srv.Client(t, srv.UserToken(t, "mallory", "mallory"))
	for _, name := range []string{"ci", "deploy", "never-used-by-anyone"} {
		tok, err := mallory.CreateToken(ctx, client.TokenRequest{Name: name})
		if err != nil {
			t.Fatalf("mallory's token %q: %v", name, err)
		}
		c := srv.Client(t, tok.Secret)
		if _, err := c.GetProject(ctx, "p"); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("mallory's token %q on p: want 403, got %v", name, err)
		}
		if ps := must(c.ListProjects(ctx)); len(ps) != 0 {
			t.Errorf("mallory's token %q lists %+v", name, ps)
		}
	}
	if _, err := mallory.CreateToken(ctx, client.TokenRequest{Name: "ci"}); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("a second token of one's own name: want 409, got %v", err)
	}
	// Olga's own tokens hold the grants.
	if _, err := ci.CreateState(ctx, "p", "from-ci", ""); err != nil {
		t.Fatalf("olga's ci token: %v", err)
	}
	deploy := srv.Client(t, must(olga.CreateToken(ctx, client.TokenRequest{Name: "deploy"})).Secret)
	if _, err := deploy.GetProject(ctx, "p"); err != nil {
		t.Fatalf("olga's deploy token: %v", err)
	}
	// The admin's legacy form is ambiguous now: two users have "ci".
	if _, err := admin.PutGrant(ctx, "p", "", "token:ci", client.RoleViewer); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("admin grant to an ambiguous token name: want 400, got %v", err)
	}
	// Revoking by name from the admin needs the user then.
	if err := admin.RevokeToken(ctx, "ci"); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("admin revoke of an ambiguous name: want 409, got %v", err)
	}
	if err := admin.RevokeUserToken(ctx, "mallory", "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := ci.GetProject(ctx, "p"); err != nil {
		t.Fatalf("olga's ci token after mallory's was revoked: %v", err)
	}
}

// TestTokens_LastAdminTokenCannotBeRevoked: revoking the only admin token
// answers 409 and the token keeps working.
func TestTokens_LastAdminTokenCannotBeRevoked(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	err := admin.RevokeToken(ctx, "admin")
	if !errors.Is(err, client.ErrConflict) || !strings.Contains(err.Error(), "last admin token") {
		t.Fatalf("revoke the last admin token: want 409 naming it, got %v", err)
	}
	if _, err := admin.ListTokens(ctx, ""); err != nil {
		t.Fatalf("the admin token after the refused revocation: %v", err)
	}
}

// TestAuth_BearerSchemeIsCaseInsensitive: RFC 7235 auth schemes are
// case-insensitive.
func TestAuth_BearerSchemeIsCaseInsensitive(t *testing.T) {
	srv := platformtest.Start(t)
	for _, h := range []string{"Bearer ", "bearer ", "BEARER ", "bEaReR  "} {
		if status, body := getWithAuthorization(t, srv.URL+"/api/v1/whoami", h+srv.AdminToken); status != http.StatusOK {
			t.Errorf("%q: %d %s", h, status, body)
		}
	}
	for _, h := range []string{"Basic " + srv.AdminToken, "Bearer", "Bearer ", srv.AdminToken, "Bearerx " + srv.AdminToken} {
		if status, _ := getWithAuthorization(t, srv.URL+"/api/v1/whoami", h); status != http.StatusUnauthorized {
			t.Errorf("%q: %d, want 401", h, status)
		}
	}
}

// TestOps_ReadyzHidesDatabaseErrors: a broken database makes /readyz 503
// with a generic message; the error itself goes to the server log.
func TestOps_ReadyzHidesDatabaseErrors(t *testing.T) {
	var logs syncBuf
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	}))
	if status, body := getWithToken(t, srv.URL+"/readyz", ""); status != http.StatusOK {
		t.Fatalf("readyz: %d %s", status, body)
	}
	if err := srv.Platform.Store.Close(); err != nil { // the database goes away
		t.Fatal(err)
	}
	status, body := getWithToken(t, srv.URL+"/readyz", "")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "database not ready: see the server log") {
		t.Fatalf("readyz with a closed database: %d %s", status, body)
	}
	if strings.Contains(body, "sql") || strings.Contains(body, "closed") {
		t.Fatalf("readyz echoes the database error: %s", body)
	}
	if !strings.Contains(logs.String(), "database is closed") {
		t.Fatalf("the database error is not in the log:\n%s", logs.String())
	}
}

// TestOps_MetricsOnSeparateListener: --metrics-listen serves /metrics
// without a token on its own address.
func TestOps_MetricsOnSeparateListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) { o.MetricsListen = addr }))
	if status, _ := getWithToken(t, srv.URL+"/metrics", ""); status != http.StatusUnauthorized {
		t.Fatalf("/metrics on the API address without a token: %d, want 401", status)
	}
	var status int
	var body string
	for range 50 { // the listener starts with Serve
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			status, body = resp.StatusCode, string(b)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status != http.StatusOK || !strings.Contains(body, "unikube_http_requests_total") {
		t.Fatalf("/metrics on --metrics-listen: %d %.200s", status, body)
	}
}

// TestServer_TimeoutsCutSlowClientsNotSlowDownloads: a client that never
// finishes its headers is cut off after the read-header timeout, and a
// chunk upload and download bigger than a short write timeout allows at
// once still work while they keep flowing.
func TestServer_TimeoutsCutSlowClientsNotSlowDownloads(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.Timeouts = server.Timeouts{ReadHeader: 300 * time.Millisecond, Write: 2 * time.Second}
	}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil { // never ends the headers
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if err != nil || time.Since(start) > 3*time.Second {
		t.Fatalf("a client stuck in its headers was not cut off after 300ms: %v after %s", err, time.Since(start))
	}

	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	must(admin.CreateState(ctx, "p", "s", ""))
	data := randomBytes(20<<20, 41)
	m, mem := makeVersion(t, "", "big", data)
	must3(admin.PushVersion(ctx, "p", "s", "v1", m, mem, client.TransferOptions{}))
	got := statepkg.NewMemoryStore()
	gm, _ := must2(admin.GetManifest(ctx, "p", "s", "v1"))
	if _, err := admin.DownloadChunks(ctx, "p", "s", gm, got, client.TransferOptions{}); err != nil {
		t.Fatalf("download: %v", err)
	}
	if !bytes.Equal(readAll(t, got, gm), data) {
		t.Fatal("downloaded data differs")
	}
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// TestClient_ResponseHeaderTimeout: a server that accepts a request and
// never answers fails the call after the client's response-header timeout
// instead of hanging.
func TestClient_ResponseHeaderTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // held open, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	c, err := client.New(client.Config{Endpoint: "http://" + ln.Addr().String(), Token: "x", RetryMax: 1,
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond, ResponseHeaderTimeout: 200 * time.Millisecond,
		Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := c.Whoami(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("want a timeout error before the context ends, got %v after %s", err, time.Since(start))
	}
}

// TestTokens_ChildMintedByARevokedParentDoesNotWork: a replica that still
// holds a revoked token in its auth cache (up to a second; here frozen) may
// let it create a token, but that child must not work: the revocation's
// cascade ran before the child existed, so a token is live only while every
// token up its chain of minters is.
func TestTokens_ChildMintedByARevokedParentDoesNotWork(t *testing.T) {
	backends := map[string][]platformtest.Option{"sqlite": nil, "postgres": {platformtest.WithPostgresS3()}}
	for name, opts := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			one := platformtest.Start(t, opts...)
			frozen := time.Now()
			two := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
				*o = one.Options                           // a second replica of the same database and blob store
				o.Now = func() time.Time { return frozen } // its auth cache never goes stale
			}))
			stolen := must(one.Admin(t).CreateToken(ctx, client.TokenRequest{Name: "laptop", User: "alice"}))
			onTwo := two.Client(t, stolen.Secret)
			if _, err := onTwo.Whoami(ctx); err != nil { // now cached on two
				t.Fatal(err)
			}
			if err := one.Admin(t).RevokeUserToken(ctx, "alice", "laptop"); err != nil {
				t.Fatal(err)
			}
			escaped, err := onTwo.CreateToken(ctx, client.TokenRequest{Name: "escape"})
			if err != nil {
				t.Skipf("the replica no longer accepts the revoked token (nothing to check): %v", err)
			}
			for name, srv := range map[string]*platformtest.Server{"one": one, "two": two} {
				if _, err := srv.Client(t, escaped.Secret).Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
					t.Errorf("a child of a revoked token on %s: want 401, got %v", name, err)
				}
			}
		})
	}
}

// TestTokens_AdminTokenGrantMustNameTheUser: the admin has no tokens of its
// own to mean by token:NAME, and guessing the owner from today's token of
// that name hands the grant to whoever created the name first.
func TestTokens_AdminTokenGrantMustNameTheUser(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	must(admin.CreateProject(ctx, "p", ""))
	// Mallory guesses the name the admin will grant to olga's future token.
	mallory := srv.Client(t, must(srv.Client(t, srv.UserToken(t, "mallory", "mallory")).CreateToken(ctx, client.TokenRequest{Name: "deploy"})).Secret)
	if g, err := admin.PutGrant(ctx, "p", "", "token:deploy", client.RoleMaintainer); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("admin grant to token:deploy: want 400 asking for token:USER:deploy, got %+v, %v", g, err)
	}
	if _, err := mallory.GetProject(ctx, "p"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("mallory's token named deploy on p: want 403, got %v", err)
	}
	g := must(admin.PutGrant(ctx, "p", "", "token:olga:deploy", client.RoleMaintainer))
	if g.TokenUser != "olga" {
		t.Fatalf("grant %+v, want bound to olga", g)
	}
}

// TestOps_MetricsLabelsStayBounded: anyone may send any method to any path,
// without a token; the metrics must not grow a series per made-up method
// (an unauthenticated caller could fill the server's memory).
func TestOps_MetricsLabelsStayBounded(t *testing.T) {
	srv := platformtest.Start(t)
	for i := range 20 {
		for _, path := range []string{"/", "/api/v1/whoami", "/no/such/route"} {
			req, err := http.NewRequest(fmt.Sprintf("MADEUP%d", i), srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	status, body := getWithToken(t, srv.URL+"/metrics", srv.AdminToken)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	var madeUp, other int
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "unikube_http_requests_total{") {
			if strings.Contains(line, "MADEUP") {
				madeUp++
			}
			if strings.Contains(line, `method="other"`) {
				other++
			}
		}
	}
	if madeUp > 0 || other == 0 {
		t.Fatalf("%d request series name a made-up method, %d count them as method=\"other\"", madeUp, other)
	}
}

// TestTokens_AdminRotationKeepsTheTokensItCreated: rotating the admin token
// (a restart with another --admin-token) replaces its row; the user tokens
// the old one created have no live minter chain to check any more and keep
// working, while a revoked one stays revoked.
func TestTokens_AdminRotationKeepsTheTokensItCreated(t *testing.T) {
	ctx := context.Background()
	srv := platformtest.Start(t)
	admin := srv.Admin(t)
	alice := srv.Client(t, srv.UserToken(t, "laptop", "alice"))
	child := srv.Client(t, must(alice.CreateToken(ctx, client.TokenRequest{Name: "child"})).Secret)
	bob := srv.Client(t, srv.UserToken(t, "laptop", "bob"))
	if err := admin.RevokeUserToken(ctx, "bob", "laptop"); err != nil {
		t.Fatal(err)
	}
	rotated := "rotated-admin-token-0123456789"
	if err := srv.Platform.Store.ReplaceAdminToken(ctx, store.Token{Token: apitypes.Token{ID: auth.NewID(), Name: "admin", Kind: store.TokenAdmin, CreatedAt: time.Now(), CreatedBy: "bootstrap"}, Hash: auth.HashSecret(rotated)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the auth cache
	for name, c := range map[string]*client.Client{"alice": alice, "alice's child": child, "new admin": srv.Client(t, rotated)} {
		if _, err := c.Whoami(ctx); err != nil {
			t.Errorf("%s after the admin token was rotated: %v", name, err)
		}
	}
	for name, c := range map[string]*client.Client{"old admin": admin, "bob (revoked)": bob} {
		if _, err := c.Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("%s after the rotation: want 401, got %v", name, err)
		}
	}
}
