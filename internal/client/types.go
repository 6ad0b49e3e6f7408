package client

import "time"

// These mirror the API's JSON (api/openapi.json).

// Project is a namespace for states and scripts.
type Project struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
}

// State is a named state.
type State struct {
	Project     string    `json:"project"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
}

// Grant gives a subject a role on a project or state.
type Grant struct {
	Project string `json:"project"`
	State   string `json:"state,omitempty"`
	Subject string `json:"subject"`
	Role    string `json:"role"`
	// TokenUser: for a token grant, the user owning the token it binds to.
	TokenUser string    `json:"token_user,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// Roles.
const (
	RoleOwner      = "owner"
	RoleMaintainer = "maintainer"
	RoleApplier    = "applier"
	RoleViewer     = "viewer"
)

// ComponentSummary describes a component without its chunks.
type ComponentSummary struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Format string `json:"format"`
	Size   int64  `json:"size"`
	Chunks int    `json:"chunks"`
	Files  int    `json:"files,omitempty"`
}

// Version is one immutable version of a named state.
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

// Token is an API token (its secret is only in CreatedToken/JobToken).
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
	// ParentID is the token that created this one; revoking it revokes this.
	ParentID string `json:"parent_id,omitempty"`
}

// TokenRequest creates a user token.
type TokenRequest struct {
	Name       string   `json:"name"`
	User       string   `json:"user,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	TTLSeconds int64    `json:"ttl_seconds,omitempty"`
}

// CreatedToken is a new token with its secret, shown once.
type CreatedToken struct {
	Token
	Secret string `json:"token"`
}

// JobToken is a download-only token for one version.
type JobToken struct {
	Token     string    `json:"token"`
	Name      string    `json:"name"`
	Project   string    `json:"project"`
	State     string    `json:"state"`
	Tag       string    `json:"tag"`
	Digest    string    `json:"digest"`
	ExpiresAt time.Time `json:"expires_at"`
}

// UploadToken may upload chunks to and commit versions of one state, and
// nothing else (capture agents).
type UploadToken struct {
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

// Credential references a Kubernetes Secret and keys.
type Credential struct {
	Secret string   `json:"secret"`
	Keys   []string `json:"keys,omitempty"`
}

// ScriptSpec is the content of a script.
type ScriptSpec struct {
	Description    string       `json:"description"`
	Image          string       `json:"image"`
	Interpreter    string       `json:"interpreter"`
	Body           string       `json:"body"`
	Variables      []Variable   `json:"variables"`
	ServiceAccount string       `json:"service_account"`
	Credentials    []Credential `json:"credentials"`
}

// Script is a stored cluster script.
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

// Run is one execution of a script.
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
	// SensitiveDefaults is set only in the answer to CreateRun: the
	// defaults of sensitive variables the run did not set, which the Job
	// needs. The run record never holds them.
	SensitiveDefaults map[string]string `json:"sensitive_defaults,omitempty"`
}

// RunUpdate reports a run's progress; nil fields are left unchanged.
type RunUpdate struct {
	Status     string     `json:"status,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	LogTail    *string    `json:"log_tail,omitempty"`
	StackTrace *string    `json:"stack_trace,omitempty"`
}

// GCResult reports a garbage collection.
type GCResult struct {
	Scanned      int   `json:"scanned"`
	Referenced   int   `json:"referenced"`
	Young        int   `json:"young"`
	Deleted      int   `json:"deleted"`
	DeletedBytes int64 `json:"deleted_bytes"`
	DryRun       bool  `json:"dry_run"`
}

// AuditEvent records who changed what access, when.
type AuditEvent struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Project string    `json:"project,omitempty"`
	State   string    `json:"state,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}
