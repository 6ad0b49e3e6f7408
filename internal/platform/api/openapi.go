package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
)

// OpenAPI returns the OpenAPI 3.1 document of the API, generated from the
// route table. api/openapi.json is a copy a test keeps identical.
func OpenAPI() []byte {
	s := &Server{}
	b, err := json.MarshalIndent(buildOpenAPI(s.routes()), "", "  ")
	if err != nil {
		panic(fmt.Sprintf("openapi: %v", err)) // static data; cannot fail
	}
	return append(b, '\n')
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.openapi)
}

type obj = map[string]any

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

var paramDocs = map[string]obj{
	"project": {"description": "Project name: a lowercase DNS label.", "schema": obj{"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"}},
	"state":   {"description": "State name: a lowercase DNS label.", "schema": obj{"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"}},
	"ref":     {"description": "A read tag expression: @latest, @candidate, a literal tag (URL-escaped, e.g. %5Bcand%5D-x), or sha256:<hex>.", "schema": obj{"type": "string"}},
	"digest":  {"description": "Chunk digest: sha256 of the uncompressed bytes, sha256:<64 lowercase hex>.", "schema": obj{"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}},
	"subject": {"description": "user:NAME, group:NAME, token:USER:NAME (USER's token NAME) or token:NAME (the granter's own token NAME; the admin must name the user).", "schema": obj{"type": "string"}},
	"name":    {"description": "Token name.", "schema": obj{"type": "string"}},
	"script":  {"description": "Script name: a lowercase DNS label.", "schema": obj{"type": "string"}},
	"run":     {"description": "Run id.", "schema": obj{"type": "string"}},
}

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func schemaFor(name string) obj {
	if a, ok := strings.CutPrefix(name, "[]"); ok {
		return obj{"type": "array", "items": ref(a)}
	}
	return ref(name)
}

func content(name string) obj {
	switch name {
	case "#metrics":
		return obj{"text/plain": obj{"schema": obj{"type": "string", "description": "Prometheus text exposition format."}}}
	case "#chunk":
		return obj{"application/zstd": obj{"schema": obj{"type": "string", "format": "binary"}}}
	case "#batch":
		return obj{BatchContentType: obj{"schema": obj{"type": "string", "format": "binary",
			"description": "Frames `<digest> <n>\\n<n bytes>` or `<digest> missing\\n`, one per requested digest, in request order."}}}
	}
	return obj{"application/json": obj{"schema": schemaFor(name)}}
}

func buildOpenAPI(routes []route) obj {
	paths := obj{}
	for _, rt := range routes {
		item, _ := paths[rt.pattern].(obj)
		if item == nil {
			item = obj{}
			paths[rt.pattern] = item
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.pattern, -1) {
			p := obj{"name": m[1], "in": "path", "required": true}
			for k, v := range paramDocs[m[1]] {
				p[k] = v
			}
			params = append(params, p)
		}
		for _, q := range rt.query {
			params = append(params, obj{"name": q.name, "in": "query", "required": false, "description": q.desc, "schema": obj{"type": q.typ}})
		}
		op := obj{
			"operationId": rt.op,
			"summary":     rt.summary,
			"description": "Access: " + rt.role + ".",
			"tags":        []string{tagOf(rt.pattern)},
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if !rt.auth {
			op["security"] = []any{}
		}
		if rt.req != "" {
			op["requestBody"] = obj{"required": rt.req != "JobTokenRequest" && rt.req != "PruneRequest" && rt.req != "GCRequest", "content": content(rt.req)}
		}
		ok := obj{"description": http.StatusText(rt.status)}
		if rt.resp != "" && rt.method != "HEAD" {
			ok["content"] = content(rt.resp)
		}
		resps := obj{strconv.Itoa(rt.status): ok}
		if rt.op == "putChunk" {
			resps["200"] = obj{"description": "Already uploaded to this state before"}
		}
		if rt.op == "createVersion" {
			resps["200"] = obj{"description": "The same manifest is already committed under this tag", "content": content("Version")}
		}
		if rt.op == "getChunk" {
			resps["206"] = obj{"description": "Partial content (Range)", "content": content("#chunk")}
		}
		errResp := func(desc string) obj { return obj{"description": desc, "content": content("Error")} }
		if rt.auth {
			resps["401"] = errResp("Missing, unknown, revoked or expired token")
			resps["403"] = errResp("The caller lacks the role this needs")
		}
		if rt.pattern != "/healthz" && rt.pattern != "/readyz" && rt.op != "openapi" && rt.op != "whoami" && rt.op != "metrics" {
			resps["400"] = errResp("Invalid name, tag, digest or body")
			resps["404"] = errResp("No such project, state, version, chunk, script, run or token")
		}
		if rt.req != "" {
			resps["413"] = errResp("Body larger than --max-body-bytes")
		}
		switch rt.op {
		case "createVersion":
			resps["409"] = errResp("Chunks missing (listed in `missing`: not uploaded to this state, not in a version the caller may read, or not stored) or the tag names another version")
		case "createProject", "createState", "createToken", "retagVersion", "promoteVersion":
			resps["409"] = errResp("Name or tag already taken")
		case "putChunk":
			resps["507"] = errResp("The upload would take the project past its upload quota (--project-upload-quota); nothing stored")
		case "revokeToken":
			resps["409"] = errResp("The last admin token (rotate it instead), or several users' tokens have this name (add ?user=)")
		case "readyz":
			resps["503"] = errResp("Not ready")
		}
		op["responses"] = resps
		item[strings.ToLower(rt.method)] = op
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":       "Unikube State platform API",
			"version":     "1.0.0",
			"description": "Named states (versioned packages of application data), their access grants, tokens and cluster scripts. Roles: owner > maintainer > applier > viewer, per project and per state (a state grant adds to the project grant). Authenticate with `Authorization: Bearer TOKEN`.",
		},
		"servers":    []any{obj{"url": "/"}},
		"security":   []any{obj{"bearer": []string{}}},
		"paths":      paths,
		"components": obj{"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer"}}, "schemas": schemas()},
	}
}

func tagOf(pattern string) string {
	switch {
	case strings.Contains(pattern, "/chunks"):
		return "chunks"
	case strings.Contains(pattern, "/runs"):
		return "runs"
	case strings.Contains(pattern, "/scripts"):
		return "scripts"
	case strings.Contains(pattern, "/grants"):
		return "grants"
	case strings.Contains(pattern, "/versions"), strings.Contains(pattern, "prune-candidates"):
		return "versions"
	case strings.Contains(pattern, "/states"):
		return "states"
	case strings.Contains(pattern, "/projects"):
		return "projects"
	case strings.Contains(pattern, "/tokens"), strings.Contains(pattern, "whoami"):
		return "tokens"
	case strings.Contains(pattern, "/admin"):
		return "admin"
	}
	return "health"
}

func str(desc string) obj  { return obj{"type": "string", "description": desc} }
func ts(desc string) obj   { return obj{"type": "string", "format": "date-time", "description": desc} }
func i64(desc string) obj  { return obj{"type": "integer", "format": "int64", "description": desc} }
func boolean(d string) obj { return obj{"type": "boolean", "description": d} }
func strs(desc string) obj {
	return obj{"type": "array", "items": obj{"type": "string"}, "description": desc}
}

func object(required []string, props obj) obj {
	o := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func schemas() obj {
	role := obj{"type": "string", "enum": []string{"owner", "maintainer", "applier", "viewer"}}
	return obj{
		"Error":  object([]string{"error"}, obj{"error": str("What went wrong and what to do."), "missing": strs("For a commit: the chunk digests to upload first.")}),
		"Status": object([]string{"status"}, obj{"status": str("ok or ready")}),
		"Object": obj{"type": "object"},
		"Whoami": object([]string{"name", "kind", "admin", "subjects"}, obj{"name": str("How the caller appears in created_by fields."), "kind": obj{"type": "string", "enum": []string{"admin", "user", "job"}},
			"user": str(""), "groups": strs(""), "admin": boolean(""), "subjects": strs("Grant subjects the caller matches.")}),
		"NameDescription":   object([]string{"name"}, obj{"name": str("Lowercase DNS label."), "description": str("")}),
		"DescriptionUpdate": object(nil, obj{"description": str("New description; absent keeps it.")}),
		"Project":           object([]string{"name"}, obj{"name": str(""), "description": str(""), "created_at": ts(""), "created_by": str("")}),
		"State":             object([]string{"project", "name"}, obj{"project": str(""), "name": str(""), "description": str(""), "created_at": ts(""), "created_by": str("")}),
		"GrantRequest":      object([]string{"role"}, obj{"role": role}),
		"Grant": object([]string{"project", "subject", "role"}, obj{"project": str(""), "state": str("Empty for a project grant."), "subject": str("user:NAME, group:NAME, token:NAME or token:USER:NAME"),
			"role": role, "token_user": str("Token grants: the user owning the token; only that user's token of that name matches."), "created_at": ts(""), "created_by": str("")}),
		"AuditEvent": object([]string{"id", "at", "actor", "action"}, obj{"id": str(""), "at": ts(""), "actor": str("Who: user:NAME, admin or token:NAME."),
			"action":  obj{"type": "string", "enum": []string{"project.create", "project.delete", "grant.put", "grant.delete", "token.create", "token.revoke", "job-token.create", "upload-token.create"}},
			"project": str("Scope; empty for tokens of no project."), "state": str(""), "subject": str("Whom it concerns: a grant's subject, a token as token:USER:NAME, a job or upload token's name."),
			"detail": str("role=ROLE for grants; groups, expiry and version for tokens. Never a secret.")}),
		"ComponentSummary": object([]string{"name", "kind"}, obj{"name": str(""), "kind": obj{"type": "string", "enum": []string{"postgres", "mysql", "redis", "volume", "kubernetes", "script"}},
			"format": str(""), "size": i64("Uncompressed bytes."), "chunks": obj{"type": "integer"}, "files": obj{"type": "integer"}}),
		"Version": object([]string{"project", "state", "tag", "digest"}, obj{"project": str(""), "state": str(""), "tag": str("Unique within the state; [cand]- prefix marks a candidate."),
			"digest": str("sha256 of the canonical manifest: the version's identity."), "revision": str("Free label, e.g. the app version."), "message": str(""),
			"created_at": ts(""), "tagged_at": ts("When the tag was set or promoted; @latest is the newest by this."), "created_by": str(""),
			"size": i64("Sum of uncompressed component sizes."), "candidate": boolean(""), "components": obj{"type": "array", "items": ref("ComponentSummary")}}),
		"Manifest": obj{"type": "object", "description": "The package manifest (schemaVersion 1): components with their chunk lists and file indexes. See internal/statepkg.",
			"required": []string{"schemaVersion", "components"}, "properties": obj{"schemaVersion": obj{"type": "integer", "const": 1}, "state": str("project/name"),
				"revision": str(""), "message": str(""), "createdAt": ts(""), "components": obj{"type": "array", "items": obj{"type": "object"}},
				"release": obj{"type": "object", "description": "The Helm release a capture came from: name, namespace, revision, chart, values, defaultValues and overridden keys (part of the digest)."}}},
		"CreateVersionRequest": object([]string{"manifest"}, obj{"tag": str("A literal tag, @random (default) or @new-candidate."), "manifest": ref("Manifest")}),
		"BatchRequest": object([]string{"digests"}, obj{"digests": obj{"type": "array", "minItems": 1, "maxItems": MaxBatchChunks,
			"items": obj{"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}, "description": "Chunk digests to download, in the order the frames should come; repeats allowed."}}),
		"RetagRequest":    object([]string{"tag"}, obj{"tag": str("The new literal tag.")}),
		"PruneRequest":    object(nil, obj{"keep": obj{"type": "integer", "minimum": 0, "description": "Newest candidates to keep (default 0)."}}),
		"PruneResponse":   object([]string{"deleted"}, obj{"deleted": obj{"type": "array", "items": ref("Version")}}),
		"JobTokenRequest": object(nil, obj{"ttl_seconds": obj{"type": "integer", "minimum": 1, "maximum": 21600, "description": "Lifetime (default 3600); capped at the minting token's expiry."}}),
		"UploadTokenResponse": object([]string{"token", "name", "project", "state", "expires_at"}, obj{"token": str("The secret, shown once."), "name": str(""), "project": str(""), "state": str(""),
			"expires_at": ts("")}),
		"JobTokenResponse": object([]string{"token", "name", "digest", "expires_at"}, obj{"token": str("The secret, shown once."), "name": str(""), "project": str(""), "state": str(""),
			"tag": str(""), "digest": str(""), "expires_at": ts("")}),
		"Token": object([]string{"id", "name", "kind"}, obj{"id": str(""), "name": str("Unique per user; the subject token:USER:NAME."), "kind": obj{"type": "string", "enum": []string{"admin", "user", "job", "upload", "oidc"}, "description": "oidc: the caller authenticated with an OpenID Connect token (whoami only; never stored)."},
			"user": str("The user the token acts as (subject user:NAME)."), "groups": strs("Groups the token acts in (subjects group:NAME)."),
			"project": str("Job and upload tokens: scope."), "state": str("Job and upload tokens: scope."), "version_digest": str("Job tokens: the one version they may download."),
			"created_at": ts(""), "created_by": str(""), "expires_at": ts("Never later than the parent's."), "revoked_at": ts(""),
			"parent_id": str("The token that created this one; revoking it revokes this one.")}),
		"OIDCSettings": object([]string{"issuer", "client_id"}, obj{"issuer": str("The provider's issuer URL (its discovery document is under it)."), "client_id": str("The public client for interactive logins (device flow, code flow with PKCE).")}),
		"TokenExchangeRequest": object([]string{"subject_token"}, obj{"subject_token": str("An OpenID Connect token (ID token, JWT access token, CI workload identity token) of the provider the platform trusts (--oidc-issuer), for one of its audiences (--oidc-client-id, --oidc-audiences)."),
			"subject_token_type": obj{"type": "string", "enum": []string{apitypes.TokenTypeJWT, apitypes.TokenTypeIDToken, apitypes.TokenTypeAccessToken}, "description": "Optional (RFC 8693); all are verified the same way."},
			"ttl_seconds":        obj{"type": "integer", "minimum": 0, "description": "Lifetime of the platform token (0: the server's --oidc-exchange-ttl, also the maximum)."}}),
		"TokenExchangeResponse": object([]string{"access_token", "issued_token_type", "token_type", "expires_in", "expires_at", "user"}, obj{"access_token": str("The platform token, shown once."),
			"issued_token_type": str(apitypes.TokenTypeAccessToken), "token_type": str("Bearer"), "expires_in": obj{"type": "integer", "description": "Seconds."}, "expires_at": ts(""),
			"user": str("The user the token acts as (from --oidc-username-claim)."), "groups": strs("Its groups (from --oidc-groups-claim), frozen for the token's life.")}),
		"CreateTokenRequest": object([]string{"name"}, obj{"name": str("Token name, unique per user."), "user": str("Admin: any user; others: themselves (default)."), "groups": strs(""),
			"ttl_seconds": obj{"type": "integer", "minimum": 0, "description": "0 = no expiry of its own; never later than the creating token's expiry."}}),
		"CreateTokenResponse": obj{"allOf": []any{ref("Token"), object([]string{"token"}, obj{"token": str("The secret, shown only here.")})}},
		"Variable": object([]string{"name"}, obj{"name": str("Environment variable name."),
			"default":  str("Value used when a run does not set the variable. A sensitive variable's default is sealed at rest with the server's secret key and never returned."),
			"required": boolean(""), "sensitive": boolean("Values are never stored in run records; a default is never returned."),
			"default_set": boolean("The variable has a default (for a sensitive one, without showing it). In a PUT, default_set without a default keeps the stored default.")}),
		"Credential": object([]string{"secret"}, obj{"secret": str("Kubernetes Secret name in the target namespace."), "keys": strs("Keys exposed to the script.")}),
		"ScriptRequest": object([]string{"interpreter", "body"}, obj{"description": str(""), "image": str("Container image the script runs in."),
			"interpreter": obj{"type": "string", "enum": []string{"sh", "bash", "python"}}, "body": str("Script source."),
			"variables": obj{"type": "array", "items": ref("Variable")}, "service_account": str(""), "credentials": obj{"type": "array", "items": ref("Credential")}}),
		"Script": object([]string{"project", "name", "interpreter", "body"}, obj{"project": str(""), "name": str(""), "description": str(""), "image": str(""),
			"interpreter": obj{"type": "string", "enum": []string{"sh", "bash", "python"}}, "body": str(""), "variables": obj{"type": "array", "items": ref("Variable")},
			"service_account": str(""), "credentials": obj{"type": "array", "items": ref("Credential")}, "author": str(""), "created_at": ts(""), "modified_at": ts("")}),
		"CreateRunRequest": object(nil, obj{"variables": obj{"type": "object", "additionalProperties": obj{"type": "string"}}, "target": str("Where it runs, e.g. context/namespace.")}),
		"UpdateRunRequest": object(nil, obj{"status": obj{"type": "string", "enum": []string{"pending", "running", "succeeded", "failed"}}, "started_at": ts(""), "finished_at": ts(""),
			"exit_code": obj{"type": "integer"}, "log_tail": str("Last lines of the log (kept up to 64 KiB)."), "stack_trace": str("On failure: the stack trace or last error lines.")}),
		"Run": object([]string{"id", "project", "script", "status"}, obj{"id": str(""), "project": str(""), "script": str(""),
			"status": obj{"type": "string", "enum": []string{"pending", "running", "succeeded", "failed"}}, "variables": obj{"type": "object", "additionalProperties": obj{"type": "string"}},
			"target": str(""), "created_at": ts(""), "created_by": str(""), "started_at": ts(""), "finished_at": ts(""), "exit_code": obj{"type": "integer"},
			"log_tail": str("Last lines of the log, sensitive values masked; shown to appliers and above only."), "stack_trace": str("Shown to appliers and above only.")}),
		"CreatedRun": obj{"allOf": []any{ref("Run"), object(nil, obj{"sensitive_defaults": obj{"type": "object", "additionalProperties": obj{"type": "string"},
			"description": "The defaults of sensitive variables the request did not set, for the applier starting the run only; never stored in the run."}})}},
		"GCRequest": object(nil, obj{"grace_seconds": obj{"type": "integer", "minimum": 0, "description": "Keep unreferenced chunks younger than this (default: the server's, 1 h)."}, "dry_run": boolean("")}),
		"GCResult": object(nil, obj{"scanned": obj{"type": "integer"}, "referenced": obj{"type": "integer"}, "young": obj{"type": "integer"},
			"deleted": obj{"type": "integer"}, "deleted_bytes": i64(""), "dry_run": boolean("")}),
	}
}
