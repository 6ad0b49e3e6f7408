package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Health checks /healthz; Ready checks /readyz (database and blob store).
func (c *Client) Health(ctx context.Context) error {
	return c.doJSON(ctx, request{method: http.MethodGet, path: "/healthz"}, nil)
}

// Ready checks the server's database and blob store answer.
func (c *Client) Ready(ctx context.Context) error {
	return c.doJSON(ctx, request{method: http.MethodGet, path: "/readyz"}, nil)
}

// Whoami describes the client's token.
func (c *Client) Whoami(ctx context.Context) (Whoami, error) {
	var out Whoami
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: "/api/v1/whoami"}, &out)
}

// OpenAPI fetches the server's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/openapi.json"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// ---- projects

// ListProjects lists the projects the caller may see.
func (c *Client) ListProjects(ctx context.Context) ([]Project, error) {
	var out []Project
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: "/api/v1/projects"}, &out)
}

// CreateProject creates a project; the caller becomes its owner.
func (c *Client) CreateProject(ctx context.Context, name, description string) (Project, error) {
	var out Project
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: "/api/v1/projects",
		body: apitypes.NameDescription{Name: name, Description: description}}, &out)
}

// GetProject shows a project.
func (c *Client) GetProject(ctx context.Context, name string) (Project, error) {
	var out Project
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s", name)}, &out)
}

// UpdateProject changes a project's description.
func (c *Client) UpdateProject(ctx context.Context, name, description string) (Project, error) {
	var out Project
	return out, c.doJSON(ctx, request{method: http.MethodPatch, path: pathf("/api/v1/projects/%s", name), idempotent: true,
		body: apitypes.DescriptionUpdate{Description: &description}}, &out)
}

// DeleteProject deletes a project and everything in it.
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: pathf("/api/v1/projects/%s", name)}, nil)
}

// ---- states

// ListStates lists a project's states.
func (c *Client) ListStates(ctx context.Context, project string) ([]State, error) {
	var out []State
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s/states", project)}, &out)
}

// CreateState creates a named state.
func (c *Client) CreateState(ctx context.Context, project, name, description string) (State, error) {
	var out State
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: pathf("/api/v1/projects/%s/states", project),
		body: apitypes.NameDescription{Name: name, Description: description}}, &out)
}

// GetState shows a named state.
func (c *Client) GetState(ctx context.Context, project, name string) (State, error) {
	var out State
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s/states/%s", project, name)}, &out)
}

// UpdateState changes a state's description.
func (c *Client) UpdateState(ctx context.Context, project, name, description string) (State, error) {
	var out State
	return out, c.doJSON(ctx, request{method: http.MethodPatch, path: pathf("/api/v1/projects/%s/states/%s", project, name), idempotent: true,
		body: apitypes.DescriptionUpdate{Description: &description}}, &out)
}

// DeleteState deletes a named state with its versions.
func (c *Client) DeleteState(ctx context.Context, project, name string) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: pathf("/api/v1/projects/%s/states/%s", project, name)}, nil)
}

// ---- grants (state "" = the project)

func grantsPath(project, state string) string {
	if state == "" {
		return pathf("/api/v1/projects/%s/grants", project)
	}
	return pathf("/api/v1/projects/%s/states/%s/grants", project, state)
}

// ListGrants lists the grants on a project (state "") or a state.
func (c *Client) ListGrants(ctx context.Context, project, state string) ([]Grant, error) {
	var out []Grant
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: grantsPath(project, state)}, &out)
}

// PutGrant gives subject (user:NAME, group:NAME, token:USER:NAME or token:NAME) a role on a
// project (state "") or a state, replacing its previous grant there.
func (c *Client) PutGrant(ctx context.Context, project, state, subject, role string) (Grant, error) {
	var out Grant
	return out, c.doJSON(ctx, request{method: http.MethodPut, path: grantsPath(project, state) + "/" + url.PathEscape(subject),
		body: apitypes.GrantRequest{Role: role}}, &out)
}

// DeleteGrant removes a subject's grant.
func (c *Client) DeleteGrant(ctx context.Context, project, state, subject string) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: grantsPath(project, state) + "/" + url.PathEscape(subject)}, nil)
}

// ---- versions

// ListVersionsOptions filter ListVersions.
type ListVersionsOptions struct {
	// Candidates: "" all, "only" or "exclude".
	Candidates string
}

// ListVersions lists a state's versions, newest first.
func (c *Client) ListVersions(ctx context.Context, project, state string, opts ListVersionsOptions) ([]Version, error) {
	var out []Version
	q := url.Values{}
	if opts.Candidates != "" {
		q.Set("candidates", opts.Candidates)
	}
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s/states/%s/versions", project, state), query: q}, &out)
}

// GetVersion resolves a read tag expression (@latest, @candidate, a tag, or
// sha256:<hex>) to a version.
func (c *Client) GetVersion(ctx context.Context, project, state, ref string) (Version, error) {
	var out Version
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s/states/%s/versions/%s", project, state, ref)}, &out)
}

// Resolve resolves a parsed reference to a version.
func (c *Client) Resolve(ctx context.Context, r statepkg.Ref) (Version, error) {
	ref := r.Tag
	if r.Digest != "" && r.Tag == "" {
		ref = r.Digest
	}
	if ref == "" {
		ref = statepkg.ExprLatest
	}
	return c.GetVersion(ctx, r.Project, r.State, ref)
}

// GetManifest downloads a version's manifest and checks its digest is the
// version's.
func (c *Client) GetManifest(ctx context.Context, project, state, ref string) (*statepkg.Manifest, string, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s/states/%s/versions/%s/manifest", project, state, ref)})
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("download manifest: %w", err)
	}
	digest := statepkg.ManifestDigest(b)
	if want := resp.Header.Get("X-Unikube-Digest"); want != "" && want != digest {
		return nil, "", fmt.Errorf("%w: manifest of %s/%s:%s has digest %s, server says %s", statepkg.ErrInvalidManifest, project, state, ref, digest, want)
	}
	m, err := statepkg.DecodeManifest(b)
	if err != nil {
		return nil, "", fmt.Errorf("manifest of %s/%s:%s: %w", project, state, ref, err)
	}
	return m, digest, nil
}

// CommitVersion records a version whose chunks are all uploaded. tag is a
// literal tag, @random or @new-candidate. When chunks are missing the error
// is an *Error wrapping ErrConflict with Missing set.
func (c *Client) CommitVersion(ctx context.Context, project, state, tag string, m *statepkg.Manifest) (Version, error) {
	enc, err := m.Encode()
	if err != nil {
		return Version{}, err
	}
	expr, err := statepkg.ParseTagExpr(tag)
	if err != nil {
		return Version{}, err
	}
	var out Version
	// A literal tag makes the commit idempotent on the server (same tag and
	// manifest again returns the version), so it is safe to retry.
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: pathf("/api/v1/projects/%s/states/%s/versions", project, state),
		idempotent: expr.Kind == statepkg.TagLiteral,
		body:       apitypes.CreateVersionRequest{Tag: tag, Manifest: enc}}, &out)
}

// DeleteVersion deletes the version a reference selects.
func (c *Client) DeleteVersion(ctx context.Context, project, state, ref string) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: pathf("/api/v1/projects/%s/states/%s/versions/%s", project, state, ref)}, nil)
}

// Promote drops the [cand]- prefix of a candidate; it becomes @latest.
func (c *Client) Promote(ctx context.Context, project, state, ref string) (Version, error) {
	var out Version
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: pathf("/api/v1/projects/%s/states/%s/versions/%s/promote", project, state, ref)}, &out)
}

// Retag renames a version's tag.
func (c *Client) Retag(ctx context.Context, project, state, ref, newTag string) (Version, error) {
	var out Version
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: pathf("/api/v1/projects/%s/states/%s/versions/%s/retag", project, state, ref),
		body: apitypes.RetagRequest{Tag: newTag}}, &out)
}

// PruneCandidates deletes candidates except the newest keep.
func (c *Client) PruneCandidates(ctx context.Context, project, state string, keep int) ([]Version, error) {
	var out apitypes.PruneResponse
	err := c.doJSON(ctx, request{method: http.MethodPost, path: pathf("/api/v1/projects/%s/states/%s/prune-candidates", project, state),
		idempotent: true, body: apitypes.PruneRequest{Keep: keep}}, &out)
	return out.Deleted, err
}

// CreateJobToken mints a download-only token for one version; ttl 0 means
// the server's default (1 h).
func (c *Client) CreateJobToken(ctx context.Context, project, state, ref string, ttl time.Duration) (JobToken, error) {
	var out JobToken
	var body apitypes.JobTokenRequest
	if ttl > 0 {
		body.TTLSeconds = int((ttl + time.Second - 1) / time.Second)
	}
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: pathf("/api/v1/projects/%s/states/%s/versions/%s/job-tokens", project, state, ref),
		body: body}, &out)
}

// CreateUploadToken mints a token that may only upload chunks to and commit
// versions of project/state (for capture agents); ttl 0 means the server's
// default (1 h), at most 6 h.
func (c *Client) CreateUploadToken(ctx context.Context, project, state string, ttl time.Duration) (UploadToken, error) {
	var out UploadToken
	var body apitypes.JobTokenRequest
	if ttl > 0 {
		body.TTLSeconds = int((ttl + time.Second - 1) / time.Second)
	}
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: pathf("/api/v1/projects/%s/states/%s/upload-tokens", project, state),
		body: body}, &out)
}

// ---- tokens

// ListTokens lists tokens (the admin: all, or one user's with user != "").
func (c *Client) ListTokens(ctx context.Context, user string) ([]Token, error) {
	var out []Token
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: "/api/v1/tokens", query: q}, &out)
}

// FindToken returns the live-or-not token name of user (user "": the
// caller's own user), as ListTokens shows it; ErrNotFound when there is
// none. A revoked or expired token is returned too: check Live.
func (c *Client) FindToken(ctx context.Context, user, name string) (Token, error) {
	ts, err := c.ListTokens(ctx, user)
	if err != nil {
		return Token{}, err
	}
	for _, t := range ts {
		if t.Name == name && (user == "" || t.User == user) {
			return t, nil
		}
	}
	return Token{}, fmt.Errorf("token %q of user %q: %w", name, user, ErrNotFound)
}

// CreateToken creates a user token; the secret is in the result only.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (CreatedToken, error) {
	var out CreatedToken
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: "/api/v1/tokens", body: req}, &out)
}

// RevokeToken revokes one of the caller's tokens by name (the admin: the
// only token of that name), and with it every token it minted.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: pathf("/api/v1/tokens/%s", name)}, nil)
}

// RevokeUserToken revokes user's token named name (the admin's call when
// several users have a token of that name).
func (c *Client) RevokeUserToken(ctx context.Context, user, name string) error {
	q := url.Values{}
	q.Set("user", user)
	return c.doJSON(ctx, request{method: http.MethodDelete, path: pathf("/api/v1/tokens/%s", name), query: q}, nil)
}

// ---- scripts

// ListScripts lists a project's scripts.
func (c *Client) ListScripts(ctx context.Context, project string) ([]Script, error) {
	var out []Script
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s/scripts", project)}, &out)
}

// GetScript shows a script.
func (c *Client) GetScript(ctx context.Context, project, name string) (Script, error) {
	var out Script
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s/scripts/%s", project, name)}, &out)
}

// PutScript creates or replaces a script.
func (c *Client) PutScript(ctx context.Context, project, name string, spec ScriptSpec) (Script, error) {
	var out Script
	return out, c.doJSON(ctx, request{method: http.MethodPut, path: pathf("/api/v1/projects/%s/scripts/%s", project, name), body: spec}, &out)
}

// DeleteScript deletes a script and its runs.
func (c *Client) DeleteScript(ctx context.Context, project, name string) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: pathf("/api/v1/projects/%s/scripts/%s", project, name)}, nil)
}

// ListRuns lists a script's runs, newest first (limit 0 = server default).
func (c *Client) ListRuns(ctx context.Context, project, script string, limit int) ([]Run, error) {
	var out []Run
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s/scripts/%s/runs", project, script), query: q}, &out)
}

// CreateRun records the start of a run.
func (c *Client) CreateRun(ctx context.Context, project, script string, variables map[string]string, target string) (Run, error) {
	var out Run
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: pathf("/api/v1/projects/%s/scripts/%s/runs", project, script),
		body: apitypes.CreateRunRequest{Variables: variables, Target: target}}, &out)
}

// GetRun shows a run.
func (c *Client) GetRun(ctx context.Context, project, script, id string) (Run, error) {
	var out Run
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: pathf("/api/v1/projects/%s/scripts/%s/runs/%s", project, script, id)}, &out)
}

// UpdateRun reports a run's progress or result.
func (c *Client) UpdateRun(ctx context.Context, project, script, id string, u RunUpdate) (Run, error) {
	var out Run
	return out, c.doJSON(ctx, request{method: http.MethodPatch, path: pathf("/api/v1/projects/%s/scripts/%s/runs/%s", project, script, id),
		idempotent: true, body: u}, &out)
}

// ---- admin

// CollectGarbage deletes unreferenced chunks older than grace (admin only;
// grace < 0 means the server's default).
func (c *Client) CollectGarbage(ctx context.Context, grace time.Duration, dryRun bool) (GCResult, error) {
	body := apitypes.GCRequest{DryRun: dryRun}
	if grace >= 0 {
		secs := int64(grace / time.Second)
		body.GraceSeconds = &secs
	}
	var out GCResult
	return out, c.doJSON(ctx, request{method: http.MethodPost, path: "/api/v1/admin/gc", idempotent: true, body: body}, &out)
}

// ---- audit

// AuditOptions filter ListAudit.
type AuditOptions struct {
	// Project: that project's record (owners); "" every record (admin).
	Project string
	// Limit: at most this many, newest first (0: the server's default, 100).
	Limit int
}

// ListAudit returns access changes and minted tokens, newest first.
func (c *Client) ListAudit(ctx context.Context, o AuditOptions) ([]AuditEvent, error) {
	var out []AuditEvent
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	p := "/api/v1/audit"
	if o.Project != "" {
		p = pathf("/api/v1/projects/%s/audit", o.Project)
	}
	return out, c.doJSON(ctx, request{method: http.MethodGet, path: p, query: q}, &out)
}
