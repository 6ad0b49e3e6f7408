package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// The access matrix: every operation of the served OpenAPI document, called
// by every kind of caller, against the real platform over HTTP. An operation
// without a row fails the test, so a new route cannot ship without saying
// who may call it.
//
// To change who may call an operation, change its row in matrixRows (min,
// state, also, deny); the expectation of every principal follows from it in
// allowed. A new kind of caller goes into the principals of newWorld; a
// token limited to a few operations (scoped, like the job token) is let
// through only on the rows naming it in also. Insecure behaviour the server
// still has is listed in knownBugs, printed rather than failed, and fails
// once fixed so the entry is removed.

// level is the least a caller needs for a row: a role on the project (or
// on the state, for state routes), or one of the specials around them.
type level int

const (
	lvPublic     level = iota - 1 // no token needed
	lvToken                       // any valid token (a job token only if the row says job)
	lvViewer                      // roles, in their order
	lvApplier                     //
	lvMaintainer                  //
	lvOwner                       //
	lvAdmin                       // the admin token only
	lvNobody                      // no one, not even the admin (another project's object named under this one)
)

var roleLevel = map[string]level{
	client.RoleViewer: lvViewer, client.RoleApplier: lvApplier, client.RoleMaintainer: lvMaintainer, client.RoleOwner: lvOwner,
}

func (l level) String() string {
	return map[level]string{lvPublic: "no token", lvToken: "any token", lvViewer: "viewer", lvApplier: "applier",
		lvMaintainer: "maintainer", lvOwner: "owner", lvAdmin: "admin", lvNobody: "nobody"}[l]
}

// The state names every project of the matrix has: the target state the
// rows act on, and another one (a grant there must not open the target).
const (
	targetState = "s"
	otherState  = "other"
)

// grant is one grant a principal holds in the matrix project; every fresh
// project (and, for the target state, every fresh state) gets it too.
type grant struct{ state, role string }

// principal is one kind of caller.
type principal struct {
	name   string
	token  string // "" sends no Authorization header
	user   string // the user the token acts as
	grants []grant
	unauth bool // every authenticated route must answer 401
	// scoped: a token limited to the rows that name it in also, whatever
	// their level (the job token; an upload token would be another).
	scoped bool
	admin  bool
	// group: the grants go to group:GROUP, not to user:USER (an OIDC
	// identity in a group of the identity provider).
	group string
}

// subject is whom the principal's grants name.
func (p *principal) subject() string {
	if p.group != "" {
		return "group:" + p.group
	}
	return "user:" + p.user
}

// role is the principal's effective role for a row: its project grant, or
// on state routes the higher of that and its grant on the target state.
func (p *principal) role(stateRoute bool) level {
	best := lvToken
	for _, g := range p.grants {
		if g.state == "" || (stateRoute && g.state == targetState) {
			best = max(best, roleLevel[g.role])
		}
	}
	return best
}

// call is one request a row makes; tg fills the path's placeholders.
type call struct {
	tg    target
	query string
	body  []byte
	ctype string
}

// target holds the values of the path placeholders of the route table.
type target struct{ project, state, ref, digest, subject, name, script, run string }

func (tg target) value(param string) string {
	return map[string]string{"project": tg.project, "state": tg.state, "ref": tg.ref, "digest": tg.digest,
		"subject": tg.subject, "name": tg.name, "script": tg.script, "run": tg.run}[param]
}

// row says who may call one operation, and how to call it. Several rows
// may cover one operation (variant names the case).
type row struct {
	op, variant string
	min         level
	state       bool     // a state route: a grant on the target state counts
	also        []string // principals allowed besides the role rule; the only rows scoped tokens may call
	deny        []int    // refusal statuses besides 403 and 404 (e.g. 409 for a commit)
	prepare     func(w *world, p *principal) call
	check       func(w *world, p *principal, status int, body []byte) error
}

func (r row) key() string {
	if r.variant == "" {
		return r.op
	}
	return r.op + "/" + r.variant
}

// allowed is the access rule of the matrix: the one place expectations come from.
func allowed(r row, p *principal) bool {
	switch {
	case r.min == lvPublic:
		return true
	case p.unauth:
		return false
	case p.admin:
		return r.min != lvNobody
	case slices.Contains(r.also, p.name):
		return true
	case p.scoped:
		return false
	case r.min == lvToken:
		return true
	}
	return p.role(r.state) >= r.min
}

// jobToken is also for the rows the job token (for v1 of the target state) may call.
var jobToken = []string{"job"}

// uploader is also for the rows the upload token (for the target state, as
// a capture Job gets it) may call; jobAndUploader for rows both may call.
var (
	uploader       = []string{"upload"}
	jobAndUploader = []string{"job", "upload"}
)

// extraRoutes are served but not in the OpenAPI document.
var extraRoutes = map[string][2]string{}

// knownBugs are "row as principal" cases where today's server allows what the
// matrix says it must refuse. The test prints them instead of failing; when
// the server refuses, the test fails until the entry is removed.
var knownBugs = map[string]string{}

func matrixRows() []row {
	str := func(s string) *string { return &s }
	return []row{
		// Public.
		{op: "healthz", min: lvPublic},
		{op: "readyz", min: lvPublic},
		{op: "openapi", min: lvPublic},
		// Metrics tell who uses the server and how: the admin's (or a separate listener's).
		{op: "metrics", min: lvAdmin},
		{op: "whoami", min: lvToken, also: jobAndUploader},
		{op: "oidcSettings", min: lvPublic},
		// The OIDC token in the body is the credential, whoever calls.
		{op: "exchangeToken", min: lvPublic, prepare: func(w *world, _ *principal) call {
			return call{body: jsonBody(map[string]string{"subject_token": w.oidcToken})}
		}},

		// Projects.
		{op: "listProjects", min: lvToken, also: jobAndUploader, check: checkListProjects},
		{op: "createProject", min: lvToken, prepare: func(w *world, _ *principal) call {
			return call{body: jsonBody(map[string]string{"name": w.uniq("mx-new")})}
		}},
		{op: "getProject", min: lvViewer},
		{op: "updateProject", min: lvMaintainer, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: jsonBody(map[string]*string{"description": str("changed by the matrix")})}
		}},
		{op: "deleteProject", min: lvOwner, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.project = w.freshProject()
			return call{tg: tg}
		}},
		{op: "listProjectGrants", min: lvViewer},
		{op: "listProjectAudit", min: lvOwner},
		{op: "listAudit", min: lvAdmin},
		{op: "putProjectGrant", min: lvOwner, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.subject = "user:" + w.uniq("mx-grantee")
			return call{tg: tg, body: jsonBody(map[string]string{"role": client.RoleViewer})}
		}},
		{op: "deleteProjectGrant", min: lvOwner, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.subject = w.freshGrant(tg.project, "")
			return call{tg: tg}
		}},

		// States. A grant on one state lists that state (only).
		{op: "listStates", min: lvViewer, also: []string{"state-owner", "cross-state"}, check: checkListStates},
		{op: "createState", min: lvMaintainer, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: jsonBody(map[string]string{"name": w.uniq("mx-st")})}
		}},
		{op: "getState", min: lvViewer, state: true},
		{op: "updateState", min: lvMaintainer, state: true, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: jsonBody(map[string]*string{"description": str("changed by the matrix")})}
		}},
		{op: "deleteState", min: lvOwner, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.state = w.freshState()
			return call{tg: tg}
		}},
		{op: "listStateGrants", min: lvViewer, state: true},
		{op: "putStateGrant", min: lvOwner, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.subject = "user:" + w.uniq("mx-grantee")
			return call{tg: tg, body: jsonBody(map[string]string{"role": client.RoleViewer})}
		}},
		{op: "deleteStateGrant", min: lvOwner, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.subject = w.freshGrant(tg.project, tg.state)
			return call{tg: tg}
		}},

		// Versions. The job token reads only its own version (v1).
		{op: "listVersions", min: lvViewer, state: true},
		{op: "createVersion", min: lvMaintainer, state: true, also: uploader, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: w.commitBody(w.uniq("cv"), w.freshManifest(w.m))}
		}},
		// The cross-project commit of issue 16 #1: a manifest naming chunks only
		// another project stored must answer 409 (upload them first), not make
		// them readable. In a fresh state, so a commit that wrongly succeeds
		// does not open the chunks to the other rows; the admin's (which
		// rightly succeeds) in a project of its own, or every principal with
		// a grant in P could rightly use the chunks from then on.
		{op: "createVersion", variant: "foreign-chunks", min: lvAdmin, state: true, deny: []int{http.StatusConflict},
			prepare: func(w *world, p *principal) call {
				tg := w.base()
				if p.admin {
					tg.project = w.uniq("mx-adm")
					must(w.admin.CreateProject(w.ctx, tg.project, ""))
					must(w.admin.CreateState(w.ctx, tg.project, targetState, ""))
				} else {
					tg.state = w.freshState()
				}
				return call{tg: tg, body: w.commitBody(w.uniq("cv"), w.freshManifest(w.foreign))}
			}},
		{op: "getVersion", min: lvViewer, state: true, also: jobToken},
		{op: "getVersion", variant: "other-version", min: lvViewer, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.ref = "v2"
			return call{tg: tg}
		}},
		// Another project's version named by digest under this state: no one.
		{op: "getVersion", variant: "foreign-digest", min: lvNobody, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.ref = w.foreignVersion
			return call{tg: tg}
		}},
		{op: "deleteVersion", min: lvOwner, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.ref = w.freshVersion(tg.state, w.uniq("dv"))
			return call{tg: tg}
		}},
		{op: "getManifest", min: lvApplier, state: true, also: jobToken},
		{op: "getManifest", variant: "other-version", min: lvApplier, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.ref = "v2"
			return call{tg: tg}
		}},
		{op: "getManifest", variant: "foreign-digest", min: lvNobody, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.ref = w.foreignVersion
			return call{tg: tg}
		}},
		{op: "promoteVersion", min: lvMaintainer, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.ref = w.freshVersion(tg.state, "[cand]-"+w.uniq("pr"))
			return call{tg: tg}
		}},
		{op: "retagVersion", min: lvMaintainer, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.ref = w.freshVersion(tg.state, w.uniq("rt"))
			return call{tg: tg, body: jsonBody(map[string]string{"tag": w.uniq("rt")})}
		}},
		{op: "createJobToken", min: lvApplier, state: true, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: jsonBody(map[string]int{"ttl_seconds": 600})}
		}},
		{op: "createUploadToken", min: lvMaintainer, state: true, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: jsonBody(map[string]int{"ttl_seconds": 600})}
		}},
		{op: "pruneCandidates", min: lvMaintainer, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			w.freshVersion(tg.state, "[cand]-"+w.uniq("pc"))
			return call{tg: tg, body: jsonBody(map[string]int{"keep": 0})}
		}},

		// Chunks. Maintainers learn by HEAD whether a chunk is stored (to skip
		// uploads); readers whether they may download it.
		{op: "headChunk", min: lvApplier, state: true, also: jobAndUploader},
		{op: "headChunk", variant: "other-version", min: lvApplier, state: true, also: uploader, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.digest = w.v2Chunks[0]
			return call{tg: tg}
		}},
		// A chunk only another project stored: no existence oracle (issue 16 #1).
		{op: "headChunk", variant: "foreign", min: lvAdmin, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.digest = w.foreignChunks[0]
			return call{tg: tg}
		}},
		{op: "putChunk", min: lvMaintainer, state: true, also: uploader, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: w.chunkBytes, ctype: "application/zstd"}
		}},
		{op: "putChunk", variant: "read-back", min: lvMaintainer, state: true, also: uploader, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), query: "read_back=true", body: w.chunkBytes, ctype: "application/zstd"}
		}},
		{op: "getChunk", min: lvApplier, state: true, also: jobToken},
		{op: "getChunk", variant: "other-version", min: lvApplier, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.digest = w.v2Chunks[0]
			return call{tg: tg}
		}},
		{op: "getChunk", variant: "foreign", min: lvAdmin, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.digest = w.foreignChunks[0]
			return call{tg: tg}
		}},
		// v1 is in the other state too: a grant there (cross-state) reads it, a
		// grant on the target state or the job token for the target's v1 do not.
		{op: "getManifest", variant: "other-state", min: lvApplier, also: []string{"cross-state"}, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.state = otherState
			return call{tg: tg}
		}},
		{op: "headChunk", variant: "other-state", min: lvApplier, also: []string{"cross-state"}, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.state = otherState
			return call{tg: tg}
		}},
		{op: "getChunk", variant: "other-state", min: lvApplier, also: []string{"cross-state"}, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.state = otherState
			return call{tg: tg}
		}},
		// A chunk uploaded for read-back to a project that was deleted, under a
		// project since created again with the same name: the new project's
		// maintainers never uploaded it and must not read it.
		{op: "getChunk", variant: "read-back-of-deleted-project", min: lvAdmin, state: true, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.project = w.reusedProjectName()
			tg.digest = w.readBackDigest
			return call{tg: tg}
		}},
		{op: "getChunkBatch", min: lvApplier, state: true, also: jobToken, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: jsonBody(map[string][]string{"digests": w.v1Chunks})}
		}},
		{op: "getChunkBatch", variant: "other-version", min: lvApplier, state: true, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: jsonBody(map[string][]string{"digests": append(slices.Clone(w.v1Chunks), w.v2Chunks[0])})}
		}},
		{op: "getChunkBatch", variant: "foreign", min: lvAdmin, state: true, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: jsonBody(map[string][]string{"digests": append(slices.Clone(w.v1Chunks), w.foreignChunks[0])})}
		}},

		// Tokens: everyone manages their own; only the admin anyone's.
		{op: "listTokens", min: lvToken, check: checkListTokens},
		{op: "createToken", variant: "own", min: lvToken, prepare: func(w *world, p *principal) call {
			return call{body: jsonBody(client.TokenRequest{Name: w.uniq("mx-own"), User: userOf(p)})}
		}},
		{op: "createToken", variant: "other-user", min: lvAdmin, prepare: func(w *world, _ *principal) call {
			return call{body: jsonBody(client.TokenRequest{Name: w.uniq("mx-foreign"), User: "mx-stranger"})}
		}},
		{op: "createToken", variant: "foreign-group", min: lvAdmin, prepare: func(w *world, p *principal) call {
			return call{body: jsonBody(client.TokenRequest{Name: w.uniq("mx-grp"), User: userOf(p), Groups: []string{"mx-admins"}})}
		}},
		{op: "revokeToken", variant: "own", min: lvToken, prepare: func(w *world, p *principal) call {
			return call{tg: target{name: w.freshToken(userOf(p))}}
		}},
		{op: "revokeToken", variant: "other-user", min: lvAdmin, prepare: func(w *world, _ *principal) call {
			return call{tg: target{name: w.freshToken("mx-stranger")}}
		}},

		// Scripts and runs: project routes (a state grant gives no access).
		{op: "listScripts", min: lvViewer},
		{op: "getScript", min: lvViewer},
		{op: "putScript", min: lvMaintainer, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.script = w.uniq("mx-sc")
			return call{tg: tg, body: jsonBody(client.ScriptSpec{Interpreter: "sh", Body: "true"})}
		}},
		{op: "deleteScript", min: lvOwner, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.script = w.freshScript()
			return call{tg: tg}
		}},
		{op: "listRuns", min: lvViewer},
		{op: "createRun", min: lvApplier, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: []byte(`{"target":"matrix/default"}`)}
		}},
		{op: "getRun", min: lvViewer},
		{op: "updateRun", min: lvApplier, prepare: func(w *world, _ *principal) call {
			return call{tg: w.base(), body: []byte(`{"status":"running"}`)}
		}},
		// Another project's run id under this project's script: no one.
		{op: "getRun", variant: "foreign-run", min: lvNobody, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.run = w.foreignRun
			return call{tg: tg}
		}},
		{op: "updateRun", variant: "foreign-run", min: lvNobody, prepare: func(w *world, _ *principal) call {
			tg := w.base()
			tg.run = w.foreignRun
			return call{tg: tg, body: []byte(`{"status":"failed"}`)}
		}},

		// Garbage collection (a dry run: the matrix's chunks stay).
		{op: "collectGarbage", min: lvAdmin, prepare: func(*world, *principal) call {
			return call{body: []byte(`{"dry_run":true}`)}
		}},
	}
}

// TestAccess_Matrix calls every operation of the API as every kind of
// caller and checks who is let through: no token, a bad or revoked token, a
// user without grants, each project role, an owner of one state, an owner
// of another state of the project (cross-state), an owner of another
// project (cross-project), a job token, and the admin.
func TestAccess_Matrix(t *testing.T) {
	// Identities of a real OpenID Connect provider are principals too.
	idp, ids := matrixIdentities(t)
	withOIDC := platformtest.WithOptions(func(o *platformtest.Options) {
		o.OIDC = auth.OIDCConfig{Issuer: idp.Issuer, ClientID: oidcClientID, UsernameClaim: "preferred_username"}
	})
	t.Run("sqlite-fs", func(t *testing.T) { accessMatrix(t, platformtest.Start(t, withOIDC), ids) })
	t.Run("postgres-s3", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: skipping PostgreSQL + S3")
		}
		accessMatrix(t, platformtest.Start(t, platformtest.WithPostgresS3(), withOIDC), ids)
	})
}

// oidcIdentities are the ID tokens of the matrix's OIDC principals.
type oidcIdentities struct {
	groupMaintainer, noGroup, wrongAudience string
}

// matrixIdentities logs the matrix's OIDC users in at a real provider
// (device flow, in parallel): one in group mx-oidc-devs, one in no group,
// and one through another client, whose tokens name another audience.
func matrixIdentities(t *testing.T) (*testenv.OIDCProvider, oidcIdentities) {
	idp := testenv.StartOIDCProvider(t, testenv.OIDCProviderOptions{
		Users: []testenv.OIDCUser{
			{Name: "mx-oidc-m", Password: "pw-m", Groups: []string{"mx-oidc-devs"}},
			{Name: "mx-oidc-none", Password: "pw-n"},
		},
		Clients: []testenv.OIDCClient{{ID: oidcClientID}, {ID: "mx-other-app"}},
	})
	var ids oidcIdentities
	logins := []struct {
		dst           *string
		client, u, pw string
	}{
		{&ids.groupMaintainer, oidcClientID, "mx-oidc-m", "pw-m"},
		{&ids.noGroup, oidcClientID, "mx-oidc-none", "pw-n"},
		{&ids.wrongAudience, "mx-other-app", "mx-oidc-m", "pw-m"},
	}
	errs := make(chan error, len(logins))
	for _, l := range logins {
		go func() {
			conf := oauthConfig(idp)
			conf.ClientID = l.client
			da, err := conf.DeviceAuth(t.Context())
			if err == nil {
				err = idp.ApproveDevice(t.Context(), da.UserCode, l.u, l.pw)
			}
			var tok *oauth2.Token
			if err == nil {
				tok, err = conf.DeviceAccessToken(t.Context(), da)
			}
			if err == nil {
				*l.dst, _ = tok.Extra("id_token").(string)
			}
			errs <- err
		}()
	}
	for range logins {
		if err := <-errs; err != nil {
			t.Fatalf("device login: %v", err)
		}
	}
	return idp, ids
}

func accessMatrix(t *testing.T, srv *platformtest.Server, ids oidcIdentities) {
	w := newWorld(t, srv, ids)
	rows := matrixRows()
	routes := w.routes(rows)

	cases := map[string]bool{}
	for _, r := range rows {
		for _, p := range w.principals {
			cases[r.key()+" as "+p.name] = true
		}
	}
	for k := range knownBugs {
		if !cases[k] {
			t.Errorf("knownBugs entry %q names no row and principal of the matrix: fix or remove it", k)
		}
	}

	var bugs []string
	var nAllowed, nRefused int
	for _, r := range rows {
		rt := routes[r.op]
		t.Run(r.key(), func(t *testing.T) {
			for _, p := range w.principals {
				c := call{tg: w.base()}
				if r.prepare != nil {
					c = r.prepare(w, p)
				}
				got, body := w.do(t, rt, c, p)
				want := allowed(r, p)
				if want {
					nAllowed++
				} else {
					nRefused++
				}
				what := fmt.Sprintf("%s %s (%s) as %s", rt[0], rt[1], r.key(), p.name)
				bug, known := knownBugs[r.key()+" as "+p.name]
				switch {
				case want && (got < 200 || got > 299):
					t.Errorf("%s: got %d, want 2xx (row: needs %s): %s", what, got, r.min, snippet(body))
				case !want && refused(r, p, got) && known:
					t.Errorf("%s: refused with %d now; remove its knownBugs entry (%s)", what, got, bug)
				case !want && !refused(r, p, got) && known:
					bugs = append(bugs, fmt.Sprintf("%s: got %d: %s", what, got, bug))
				case !want && !refused(r, p, got):
					t.Errorf("%s: got %d, want %s (row: needs %s; if the rule changed on purpose, change the row in matrixRows): %s",
						what, got, refusal(r, p), r.min, snippet(body))
				case want && r.check != nil:
					if err := r.check(w, p, got, body); err != nil {
						t.Errorf("%s: %v", what, err)
					}
				}
				// Names of projects and states stay hidden: a caller without
				// access gets the same answer whether the name exists or not.
				if hide := w.hidden(rt[1], c, p); hide != nil && !want {
					if got2, body2 := w.do(t, rt, *hide, p); got2 != got {
						t.Errorf("%s: %d for an existing name but %d for a missing one (an existence oracle): %s", what, got, got2, snippet(body2))
					}
				}
			}
		})
	}
	consoleMatrix(t, w) // the web console's pages and actions: console_matrix_test.go
	t.Logf("access matrix: %d rows x %d principals: %d calls expected through, %d expected refused", len(rows), len(w.principals), nAllowed, nRefused)
	sort.Strings(bugs)
	for _, b := range bugs {
		t.Logf("KNOWN BUG (allowed, must be refused): %s", b)
	}
}

// refused reports whether status is a refusal for p on r.
func refused(r row, p *principal, status int) bool {
	if p.unauth && r.min != lvPublic {
		return status == http.StatusUnauthorized
	}
	return status == http.StatusForbidden || status == http.StatusNotFound || slices.Contains(r.deny, status)
}

func refusal(r row, p *principal) string {
	if p.unauth {
		return "401"
	}
	s := "403 or 404"
	for _, d := range r.deny {
		s += " or " + strconv.Itoa(d)
	}
	return s
}

// hidden returns the call with the project (for callers without any grant
// in it) or the state (for the cross-state owner) renamed to one that does
// not exist, or nil when the check does not apply.
func (w *world) hidden(pattern string, c call, p *principal) *call {
	switch {
	case p.name == "no-grant" && strings.Contains(pattern, "{project}"):
		c.tg.project = "mx-absent"
	case p.name == "cross-state" && strings.Contains(pattern, "{state}"):
		c.tg.state = "mx-absent"
	default:
		return nil
	}
	return &c
}

// world is the matrix's platform with its fixtures: project P (w.project)
// with states s and other, versions v1 and v2 in s, a script with a run;
// project Q (w.otherProject) of the cross-project owner, whose chunks no one
// else stored.
type world struct {
	t          *testing.T
	ctx        context.Context
	srv        *platformtest.Server
	admin      *client.Client
	hc         *http.Client
	seq        int
	principals []*principal

	project, otherProject string
	script, run           string
	m, foreign            *statepkg.Manifest
	chunkBytes            []byte // v1's first chunk, compressed
	v1Chunks, v2Chunks    []string
	foreignChunks         []string
	readBackDigest        string // a chunk no version names
	readBackBytes         []byte
	foreignVersion        string // Q's version digest
	foreignRun            string // a run of Q's script
	oidcToken             string // an ID token of the OIDC group maintainer
}

func newWorld(t *testing.T, srv *platformtest.Server, ids oidcIdentities) *world {
	ctx := context.Background()
	w := &world{t: t, ctx: ctx, srv: srv, admin: srv.Admin(t), hc: &http.Client{Timeout: time.Minute},
		project: "mx", otherProject: "mx-q", script: "sc"}
	t.Cleanup(w.hc.CloseIdleConnections)

	admin := w.admin
	must(admin.CreateProject(ctx, w.project, ""))
	for _, s := range []string{targetState, otherState} {
		must(admin.CreateState(ctx, w.project, s, ""))
	}
	m1, mem1 := makeVersion(t, "", "1", randomBytes(96<<10, 31))
	m2, mem2 := makeVersion(t, "", "2", randomBytes(96<<10, 32))
	must3(admin.PushVersion(ctx, w.project, targetState, "v1", m1, mem1, client.TransferOptions{}))
	must3(admin.PushVersion(ctx, w.project, targetState, "v2", m2, mem2, client.TransferOptions{}))
	w.m, w.v1Chunks, w.v2Chunks = m1, digestsOf(m1), digestsOf(m2)
	w.chunkBytes = must(mem1.Get(ctx, w.v1Chunks[0]))
	must(admin.CommitVersion(ctx, w.project, otherState, "v1", m1))
	mr, memr := makeVersion(t, "", "r", randomBytes(8<<10, 34))
	w.readBackDigest = digestsOf(mr)[0]
	w.readBackBytes = must(memr.Get(ctx, w.readBackDigest))
	must(admin.PutScript(ctx, w.project, w.script, client.ScriptSpec{Interpreter: "sh", Body: "echo hi"}))
	w.run = must(admin.CreateRun(ctx, w.project, w.script, nil, "")).ID

	user := func(name string, grants ...grant) *principal {
		p := &principal{name: name, user: "mx-" + name, grants: grants}
		p.token = srv.UserToken(t, "mx-tok-"+name, p.user)
		return p
	}
	revoked := user("revoked", grant{"", client.RoleOwner})
	revoked.unauth = true
	crossProject := user("cross-project")
	applier := user("applier", grant{"", client.RoleApplier})
	maintainer := user("maintainer", grant{"", client.RoleMaintainer})
	w.principals = []*principal{
		{name: "no-token", unauth: true},
		{name: "bad-token", token: "uks_not-a-real-token", unauth: true},
		revoked,
		user("no-grant"),
		user("viewer", grant{"", client.RoleViewer}),
		applier,
		maintainer,
		user("owner", grant{"", client.RoleOwner}),
		user("state-owner", grant{targetState, client.RoleOwner}),
		user("cross-state", grant{otherState, client.RoleOwner}),
		crossProject,
		{name: "job"},
		{name: "upload"},
		{name: "admin", token: srv.AdminToken, admin: true},
		// OpenID Connect identities: a group grant of the identity
		// provider's group, no group, a token for another audience.
		{name: "oidc-group-maintainer", token: ids.groupMaintainer, user: "mx-oidc-m", group: "mx-oidc-devs", grants: []grant{{"", client.RoleMaintainer}}},
		{name: "oidc-no-group", token: ids.noGroup, user: "mx-oidc-none"},
		{name: "oidc-wrong-audience", token: ids.wrongAudience, unauth: true},
	}
	w.oidcToken = ids.groupMaintainer
	for _, p := range w.principals {
		for _, g := range p.grants {
			must(admin.PutGrant(ctx, w.project, g.state, p.subject(), g.role))
		}
	}
	if err := admin.RevokeToken(ctx, "mx-tok-revoked"); err != nil {
		t.Fatalf("revoke: %v", err)
	}

	// The job token for v1, minted by the applier as an apply would.
	jt := must(srv.Client(t, applier.token).CreateJobToken(ctx, w.project, targetState, "v1", time.Hour))
	job := w.principals[slices.IndexFunc(w.principals, func(p *principal) bool { return p.name == "job" })]
	job.token, job.scoped, job.user = jt.Token, true, applier.user
	// The upload token for the target state, minted by a maintainer as a capture would.
	ut := must(srv.Client(t, maintainer.token).CreateUploadToken(ctx, w.project, targetState, time.Hour))
	up := w.principals[slices.IndexFunc(w.principals, func(p *principal) bool { return p.name == "upload" })]
	up.token, up.scoped, up.user = ut.Token, true, maintainer.user

	// Project Q, created and filled by its owner: its chunks are stored only there.
	qc := srv.Client(t, crossProject.token)
	must(qc.CreateProject(ctx, w.otherProject, ""))
	must(qc.CreateState(ctx, w.otherProject, targetState, ""))
	mq, memq := makeVersion(t, "", "q", randomBytes(96<<10, 33))
	must3(qc.PushVersion(ctx, w.otherProject, targetState, "v1", mq, memq, client.TransferOptions{}))
	w.foreign, w.foreignChunks = mq, digestsOf(mq)
	w.foreignVersion = must(qc.GetVersion(ctx, w.otherProject, targetState, "v1")).Digest
	must(qc.PutScript(ctx, w.otherProject, w.script, client.ScriptSpec{Interpreter: "sh", Body: "echo q"}))
	w.foreignRun = must(qc.CreateRun(ctx, w.otherProject, w.script, nil, "")).ID
	return w
}

// routes maps each row's operation to its method and path pattern, from
// the served OpenAPI document, and fails for operations without a row
// and rows without an operation.
func (w *world) routes(rows []row) map[string][2]string {
	t := w.t
	resp, err := w.hc.Get(w.srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatalf("get openapi: %v", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("decode openapi: %v", err)
	}
	ops := map[string][2]string{}
	for path, item := range doc.Paths {
		for method, op := range item {
			ops[op.OperationID] = [2]string{strings.ToUpper(method), path}
		}
	}
	if len(ops) < 40 {
		t.Fatalf("openapi lists only %d operations", len(ops))
	}
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.op] = true
		if _, ok := ops[r.op]; !ok {
			if _, extra := extraRoutes[r.op]; !extra {
				t.Errorf("matrix row %q names no operation of the OpenAPI document: remove or rename it", r.key())
			}
		}
	}
	for op, rt := range ops {
		if !covered[op] {
			t.Errorf("route %s %s (operationId %s) has no access matrix row: add one to matrixRows in access_matrix_test.go saying who may call it", rt[0], rt[1], op)
		}
	}
	for op, rt := range extraRoutes {
		ops[op] = rt
	}
	if t.Failed() {
		t.FailNow()
	}
	return ops
}

var placeholder = regexp.MustCompile(`\{([a-z]+)\}`)

// do sends c to route rt as p and returns the status and the body.
func (w *world) do(t *testing.T, rt [2]string, c call, p *principal) (int, []byte) {
	t.Helper()
	path := placeholder.ReplaceAllStringFunc(rt[1], func(m string) string {
		v := c.tg.value(m[1 : len(m)-1])
		if v == "" {
			t.Fatalf("%s %s: no value for %s", rt[0], rt[1], m)
		}
		return url.PathEscape(v)
	})
	u := w.srv.URL + path
	if c.query != "" {
		u += "?" + c.query
	}
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(w.ctx, rt[0], u, body)
	if err != nil {
		t.Fatalf("%s %s: %v", rt[0], u, err)
	}
	if c.body != nil {
		ct := c.ctype
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", rt[0], u, p.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("%s %s as %s: read body: %v", rt[0], u, p.name, err)
	}
	return resp.StatusCode, b
}

// uniq returns a fresh name with the prefix.
func (w *world) uniq(prefix string) string {
	w.seq++
	return prefix + "-" + strconv.Itoa(w.seq)
}

// base is the target the read rows use: v1 and its first chunk in state s of P.
func (w *world) base() target {
	return target{project: w.project, state: targetState, ref: "v1", digest: w.v1Chunks[0], script: w.script, run: w.run}
}

// freshProject creates a project shaped like P (states s and other, every
// principal's grants) for a row that deletes it.
func (w *world) freshProject() string {
	name := w.uniq("mx-p")
	w.shapeProject(name)
	return name
}

// reusedProjectName creates a project whose target state received a chunk
// for read-back, deletes it, and creates a project shaped like P under
// the same name.
func (w *world) reusedProjectName() string {
	name := w.uniq("mx-reused")
	must(w.admin.CreateProject(w.ctx, name, ""))
	must(w.admin.CreateState(w.ctx, name, targetState, ""))
	if err := w.admin.Chunks(name, targetState).PutForReadBack(w.ctx, w.readBackDigest, w.readBackBytes); err != nil {
		w.t.Fatalf("upload for read-back: %v", err)
	}
	if err := w.admin.DeleteProject(w.ctx, name); err != nil {
		w.t.Fatalf("delete project: %v", err)
	}
	w.shapeProject(name)
	return name
}

// shapeProject creates project name like P: states s and other, every principal's grants.
func (w *world) shapeProject(name string) {
	must(w.admin.CreateProject(w.ctx, name, ""))
	for _, s := range []string{targetState, otherState} {
		must(w.admin.CreateState(w.ctx, name, s, ""))
	}
	for _, p := range w.principals {
		for _, g := range p.grants {
			must(w.admin.PutGrant(w.ctx, name, g.state, p.subject(), g.role))
		}
	}
}

// freshState creates a state in P carrying the principals' grants on the
// target state.
func (w *world) freshState() string {
	name := w.uniq("mx-s")
	must(w.admin.CreateState(w.ctx, w.project, name, ""))
	for _, p := range w.principals {
		for _, g := range p.grants {
			if g.state == targetState {
				must(w.admin.PutGrant(w.ctx, w.project, name, p.subject(), g.role))
			}
		}
	}
	return name
}

// freshManifest is m with a fresh revision: a new version digest naming the
// same chunks.
func (w *world) freshManifest(m *statepkg.Manifest) *statepkg.Manifest {
	c := *m
	c.Revision = w.uniq("rev")
	return &c
}

// freshVersion commits v1's chunks as a new version of state in P and
// returns its tag.
func (w *world) freshVersion(state, tag string) string {
	must(w.admin.CommitVersion(w.ctx, w.project, state, tag, w.freshManifest(w.m)))
	return tag
}

// freshGrant grants a new subject viewer on project (or its state) and returns the subject.
func (w *world) freshGrant(project, state string) string {
	subject := "user:" + w.uniq("mx-grantee")
	must(w.admin.PutGrant(w.ctx, project, state, subject, client.RoleViewer))
	return subject
}

func (w *world) freshScript() string {
	name := w.uniq("mx-sc")
	must(w.admin.PutScript(w.ctx, w.project, name, client.ScriptSpec{Interpreter: "sh", Body: "true"}))
	return name
}

// freshToken creates a token for user and returns its name.
func (w *world) freshToken(user string) string {
	name := w.uniq("mx-t")
	must(w.admin.CreateToken(w.ctx, client.TokenRequest{Name: name, User: user}))
	return name
}

func (w *world) commitBody(tag string, m *statepkg.Manifest) []byte {
	enc, err := m.Encode()
	if err != nil {
		w.t.Fatalf("encode manifest: %v", err)
	}
	return jsonBody(map[string]any{"tag": tag, "manifest": json.RawMessage(enc)})
}

// userOf is the user a principal's own tokens are for (the admin and the
// token-less act for a made-up one).
func userOf(p *principal) string {
	if p.user == "" {
		return "mx-minted"
	}
	return p.user
}

func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err))
	}
	return b
}

func snippet(b []byte) string {
	if !utf8.Valid(b) {
		return fmt.Sprintf("(%d bytes, not text)", len(b))
	}
	if len(b) > 300 {
		b = b[:300]
	}
	return strings.TrimSpace(string(b))
}

// checkListProjects: a caller sees P only with a grant in it, Q only as its owner.
func checkListProjects(w *world, p *principal, _ int, body []byte) error {
	var ps []client.Project
	if err := json.Unmarshal(body, &ps); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	seen := map[string]bool{}
	for _, pr := range ps {
		seen[pr.Name] = true
	}
	if p.admin {
		if !seen[w.project] || !seen[w.otherProject] {
			return fmt.Errorf("the admin does not see every project: %v", seen)
		}
		return nil
	}
	if seen[w.project] != (len(p.grants) > 0) {
		return fmt.Errorf("sees project %s: %v, holds grants there: %v", w.project, seen[w.project], len(p.grants) > 0)
	}
	if seen[w.otherProject] != (p.name == "cross-project") {
		return fmt.Errorf("sees project %s: %v", w.otherProject, seen[w.otherProject])
	}
	return nil
}

// checkListStates: a caller with only a state grant sees that state only.
func checkListStates(_ *world, p *principal, _ int, body []byte) error {
	var sts []client.State
	if err := json.Unmarshal(body, &sts); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	var names []string
	for _, s := range sts {
		names = append(names, s.Name)
	}
	switch p.name {
	case "cross-state":
		if !slices.Equal(names, []string{otherState}) {
			return fmt.Errorf("sees states %v, want only %s", names, otherState)
		}
	case "state-owner":
		if slices.Contains(names, otherState) || !slices.Contains(names, targetState) {
			return fmt.Errorf("sees states %v, want %s and not %s", names, targetState, otherState)
		}
	}
	return nil
}

// checkListTokens: a user sees only their own tokens.
func checkListTokens(_ *world, p *principal, _ int, body []byte) error {
	var ts []client.Token
	if err := json.Unmarshal(body, &ts); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if p.admin {
		return nil
	}
	for _, tk := range ts {
		if tk.User != p.user {
			return fmt.Errorf("lists token %s of user %q", tk.Name, tk.User)
		}
	}
	return nil
}
