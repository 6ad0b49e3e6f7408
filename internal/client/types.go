package client

import "github.com/unikubehq/terraform-provider-unikube/internal/apitypes"

// The API's JSON bodies are declared once, in internal/apitypes (the
// server and api/openapi.json use the same types); these are the names
// the client's callers know them by.
type (
	Project          = apitypes.Project
	State            = apitypes.State
	Grant            = apitypes.Grant
	ComponentSummary = apitypes.ComponentSummary
	Version          = apitypes.Version
	// Token is an API token (its secret is only in CreatedToken/JobToken).
	Token = apitypes.Token
	// TokenRequest creates a user token.
	TokenRequest = apitypes.CreateTokenRequest
	// CreatedToken is a new token with its secret, shown once.
	CreatedToken = apitypes.CreateTokenResponse
	// JobToken is a download-only token for one version.
	JobToken = apitypes.JobTokenResponse
	// UploadToken may upload chunks to and commit versions of one state.
	UploadToken = apitypes.UploadTokenResponse
	Whoami      = apitypes.Whoami
	Variable    = apitypes.Variable
	Credential  = apitypes.Credential
	// ScriptSpec is the content of a script.
	ScriptSpec = apitypes.ScriptRequest
	Script     = apitypes.Script
	Run        = apitypes.Run
	// RunUpdate reports a run's progress; nil fields are left unchanged.
	RunUpdate  = apitypes.UpdateRunRequest
	GCResult   = apitypes.GCResult
	AuditEvent = apitypes.AuditEvent
	// ExchangedToken is a platform token the platform issued for an OIDC
	// token.
	ExchangedToken = apitypes.TokenExchangeResponse
	// OIDCSettings are the provider and client a platform's users log in
	// with.
	OIDCSettings = apitypes.OIDCSettings
)

// Roles.
const (
	RoleOwner      = apitypes.RoleOwner
	RoleMaintainer = apitypes.RoleMaintainer
	RoleApplier    = apitypes.RoleApplier
	RoleViewer     = apitypes.RoleViewer
)

// Run statuses.
const (
	RunPending   = apitypes.RunPending
	RunRunning   = apitypes.RunRunning
	RunSucceeded = apitypes.RunSucceeded
	RunFailed    = apitypes.RunFailed
)
