// Package apitypes declares the platform API's wire types once: the JSON
// bodies the server (internal/platform/api and its store) writes and reads,
// the client (internal/client) sends and decodes, and api/openapi.json
// describes. A type's name is its schema's name in the OpenAPI document; a
// test in internal/platform/api holds the two to the same fields.
//
// The package has no dependencies beyond the standard library, so any
// front end may import it.
package apitypes

import (
	"encoding/json"
	"time"
)

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	// Missing lists the chunks a commit needs uploaded first (409).
	Missing []string `json:"missing,omitempty"`
}

// ---- projects, states and grants

// Project is a namespace for states and scripts.
type Project struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
}

// State is a named state: project/name.
type State struct {
	Project     string    `json:"project"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
}

// NameDescription is the body that creates a project or a state.
type NameDescription struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// DescriptionUpdate is the body of PATCH on a project or state; a nil
// Description keeps it.
type DescriptionUpdate struct {
	Description *string `json:"description"`
}

// Roles, strongest first.
const (
	RoleOwner      = "owner"
	RoleMaintainer = "maintainer"
	RoleApplier    = "applier"
	RoleViewer     = "viewer"
)

// Grant gives a subject a role on a project (State empty) or on one state.
type Grant struct {
	Project string `json:"project"`
	State   string `json:"state,omitempty"`
	Subject string `json:"subject"`
	Role    string `json:"role"`
	// TokenUser binds a token:NAME (or token:USER:NAME) grant to the user
	// owning the token: only that user's token of that name matches it.
	TokenUser string    `json:"token_user,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// GrantRequest is the body of PUT .../grants/{subject}.
type GrantRequest struct {
	Role string `json:"role"`
}

// AuditEvent records who changed what access, when. Events outlive what
// they name (a deleted project's events stay).
type AuditEvent struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // the caller: user:NAME, admin, token:NAME
	Action string    `json:"action"` // e.g. grant.put, token.create
	// Project and State are the scope ("" for tokens of no project).
	Project string `json:"project,omitempty"`
	State   string `json:"state,omitempty"`
	// Subject is whom it concerns: a grant's subject, or a token as
	// token:USER:NAME.
	Subject string `json:"subject,omitempty"`
	// Detail: the role granted, a token's groups and expiry, a job
	// token's version digest. Never a secret.
	Detail string `json:"detail,omitempty"`
}

// ---- versions

// ComponentSummary is what version metadata tells about a component
// without its chunk list or file index.
type ComponentSummary struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Format string `json:"format"`
	Size   int64  `json:"size"`
	Chunks int    `json:"chunks"`
	Files  int    `json:"files,omitempty"`
}

// Version is one immutable version of a named state under a tag.
type Version struct {
	Project    string             `json:"project"`
	State      string             `json:"state"`
	Tag        string             `json:"tag"`
	Digest     string             `json:"digest"`
	Revision   string             `json:"revision"`
	Message    string             `json:"message"`
	CreatedAt  time.Time          `json:"created_at"`
	TaggedAt   time.Time          `json:"tagged_at"`
	CreatedBy  string             `json:"created_by"`
	Size       int64              `json:"size"`
	Candidate  bool               `json:"candidate"`
	Components []ComponentSummary `json:"components"`
}

// CreateVersionRequest commits a version: the manifest (internal/statepkg's
// Manifest, kept raw so the server hashes the bytes it got) plus the tag
// expression naming it (a literal tag, @random or @new-candidate).
type CreateVersionRequest struct {
	Tag      string          `json:"tag"`
	Manifest json.RawMessage `json:"manifest"`
}

// RetagRequest names the new tag of a version.
type RetagRequest struct {
	Tag string `json:"tag"`
}

// PruneRequest says how many of the newest candidates to keep.
type PruneRequest struct {
	Keep int `json:"keep"`
}

// PruneResponse lists the deleted candidates.
type PruneResponse struct {
	Deleted []Version `json:"deleted"`
}

// BatchRequest is the body of a batch chunk download.
type BatchRequest struct {
	Digests []string `json:"digests"`
}

// ---- tokens

// Token kinds.
const (
	TokenAdmin = "admin" // superuser, bootstrap
	TokenUser  = "user"  // acts as a user with groups
	TokenJob   = "job"   // download-only, one version, short-lived
	// TokenUpload may upload chunks to and commit versions of one state
	// (capture agents), nothing else; short-lived.
	TokenUpload = "upload"
)

// Token is an API token as the API shows it: never its secret.
type Token struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Kind          string     `json:"kind"`
	User          string     `json:"user,omitempty"`
	Groups        []string   `json:"groups,omitempty"`
	Project       string     `json:"project,omitempty"`
	State         string     `json:"state,omitempty"`
	VersionDigest string     `json:"version_digest,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	CreatedBy     string     `json:"created_by"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	// ParentID is the token that minted this one ("" for the bootstrap
	// admin token and tokens older than this field): revoking it revokes
	// this one.
	ParentID string `json:"parent_id,omitempty"`
}

// Live reports whether the token is neither revoked nor expired at now.
func (t Token) Live(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// CreateTokenRequest creates a user token. The admin may name any user and
// groups; a user creates tokens for themself with a subset of their groups.
// The new token never outlives the token creating it.
type CreateTokenRequest struct {
	Name       string   `json:"name"`
	User       string   `json:"user,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	TTLSeconds int64    `json:"ttl_seconds,omitempty"`
}

// CreateTokenResponse is a new token with its secret, shown only here.
type CreateTokenResponse struct {
	Token
	Secret string `json:"token"`
}

// JobTokenRequest asks for a job or upload token; TTLSeconds 0 means the
// default (1 h), at most 6 h.
type JobTokenRequest struct {
	TTLSeconds int `json:"ttl_seconds,omitempty"`
}

// JobTokenResponse carries a download-only token for one version, shown
// once.
type JobTokenResponse struct {
	Token     string    `json:"token"`
	Name      string    `json:"name"`
	Project   string    `json:"project"`
	State     string    `json:"state"`
	Tag       string    `json:"tag"`
	Digest    string    `json:"digest"`
	ExpiresAt time.Time `json:"expires_at"`
}

// UploadTokenResponse carries an upload token, shown once: it may upload
// chunks to and commit versions of one state, and nothing else (capture
// agents).
type UploadTokenResponse struct {
	Token     string    `json:"token"`
	Name      string    `json:"name"`
	Project   string    `json:"project"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Whoami describes the caller.
type Whoami struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	User     string   `json:"user,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Admin    bool     `json:"admin"`
	Subjects []string `json:"subjects"`
}

// ---- OpenID Connect

// Token types of RFC 8693 the token exchange speaks.
const (
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// TokenExchangeRequest trades an OpenID Connect token (an ID token, a
// JWT access token, a CI system's workload identity token) of the trusted
// provider for a short-lived platform token. Field names follow RFC 8693.
type TokenExchangeRequest struct {
	SubjectToken string `json:"subject_token"`
	// SubjectTokenType is optional: TokenTypeJWT, TokenTypeIDToken or
	// TokenTypeAccessToken (all verified the same way).
	SubjectTokenType string `json:"subject_token_type,omitempty"`
	// TTLSeconds asks for a lifetime (default and maximum: the server's
	// --oidc-exchange-ttl).
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// TokenExchangeResponse carries the platform token, shown only here.
type TokenExchangeResponse struct {
	AccessToken     string    `json:"access_token"`
	IssuedTokenType string    `json:"issued_token_type"`
	TokenType       string    `json:"token_type"`
	ExpiresIn       int64     `json:"expires_in"`
	ExpiresAt       time.Time `json:"expires_at"`
	User            string    `json:"user"`
	Groups          []string  `json:"groups,omitempty"`
}

// OIDCSettings tells clients which provider and client to log in with.
type OIDCSettings struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
}

// ---- scripts and runs

// Variable is a script input. The platform never returns a sensitive
// variable's default, only DefaultSet; sending DefaultSet without a
// Default keeps the stored one.
type Variable struct {
	Name       string `json:"name"`
	Default    string `json:"default,omitempty"`
	Required   bool   `json:"required,omitempty"`
	Sensitive  bool   `json:"sensitive,omitempty"`
	DefaultSet bool   `json:"default_set,omitempty"`
}

// Credential references a Kubernetes Secret and the keys the script gets
// from it. Raw secret values are never stored.
type Credential struct {
	Secret string   `json:"secret"`
	Keys   []string `json:"keys,omitempty"`
}

// ScriptRequest is the body of PUT .../scripts/{script}: the content of a
// script.
type ScriptRequest struct {
	Description    string       `json:"description"`
	Image          string       `json:"image"`
	Interpreter    string       `json:"interpreter"`
	Body           string       `json:"body"`
	Variables      []Variable   `json:"variables"`
	ServiceAccount string       `json:"service_account"`
	Credentials    []Credential `json:"credentials"`
}

// Script is a cluster script kept on the platform.
type Script struct {
	Project        string       `json:"project"`
	Name           string       `json:"name"`
	Description    string       `json:"description"`
	Image          string       `json:"image"`
	Interpreter    string       `json:"interpreter"`
	Body           string       `json:"body"`
	Variables      []Variable   `json:"variables"`
	ServiceAccount string       `json:"service_account,omitempty"`
	Credentials    []Credential `json:"credentials"`
	Author         string       `json:"author"`
	CreatedAt      time.Time    `json:"created_at"`
	ModifiedAt     time.Time    `json:"modified_at"`
}

// Run statuses.
const (
	RunPending   = "pending"
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Run is one execution of a script, reported by whoever runs it.
type Run struct {
	ID         string            `json:"id"`
	Project    string            `json:"project"`
	Script     string            `json:"script"`
	Status     string            `json:"status"`
	Variables  map[string]string `json:"variables"`
	Target     string            `json:"target,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	CreatedBy  string            `json:"created_by"`
	StartedAt  *time.Time        `json:"started_at,omitempty"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
	ExitCode   *int              `json:"exit_code,omitempty"`
	LogTail    string            `json:"log_tail,omitempty"`
	StackTrace string            `json:"stack_trace,omitempty"`
	// SensitiveDefaults is set only in the answer to createRun (the
	// CreatedRun schema), for the applier starting the run: the defaults
	// of sensitive variables the run did not set, which its Job needs.
	// The run record never holds them.
	SensitiveDefaults map[string]string `json:"sensitive_defaults,omitempty"`
}

// CreateRunRequest starts a run record; Target says where it runs
// (e.g. "context/namespace").
type CreateRunRequest struct {
	Variables map[string]string `json:"variables"`
	Target    string            `json:"target"`
}

// UpdateRunRequest reports a run's progress; absent (nil) fields keep
// their value.
type UpdateRunRequest struct {
	Status     string     `json:"status,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	LogTail    *string    `json:"log_tail,omitempty"`
	StackTrace *string    `json:"stack_trace,omitempty"`
}

// ---- admin

// GCRequest tunes a garbage collection; zero values mean the server's
// grace period and a real run.
type GCRequest struct {
	GraceSeconds *int64 `json:"grace_seconds,omitempty"`
	DryRun       bool   `json:"dry_run"`
}

// GCResult reports what a garbage collection found and did.
type GCResult struct {
	Scanned      int   `json:"scanned"`
	Referenced   int   `json:"referenced"`
	Young        int   `json:"young"`
	Deleted      int   `json:"deleted"`
	DeletedBytes int64 `json:"deleted_bytes"`
	DryRun       bool  `json:"dry_run"`
}
