package api

import "net/http"

// route is one API operation. The table drives both the mux and the OpenAPI
// document, so the document cannot miss a route.
type route struct {
	method, pattern string
	op, summary     string
	role            string // who may call it, for the document
	auth            bool
	handler         http.HandlerFunc
	req             string // request schema name ("" = none, "#chunk" = zstd bytes)
	resp            string // response schema ("[]X" = array of X, "#chunk" = zstd bytes, "" = no body)
	status          int    // success status
	query           []param
}

type param struct{ name, typ, desc string }

const (
	base       = "/api/v1"
	projectP   = base + "/projects/{project}"
	stateP     = projectP + "/states/{state}"
	versionP   = stateP + "/versions/{ref}"
	scriptP    = projectP + "/scripts/{script}"
	roleAny    = "any valid token"
	roleNone   = "no token needed"
	roleView   = "viewer"
	roleApply  = "applier"
	roleMaint  = "maintainer"
	roleOwner  = "owner"
	roleAdmin  = "admin token"
	roleApplyJ = "applier, or a job token issued for this version"
)

func (s *Server) routes() []route {
	return []route{
		{method: "GET", pattern: "/healthz", op: "healthz", summary: "Liveness: the process serves HTTP.", role: roleNone, handler: s.healthz, resp: "Status", status: 200},
		{method: "GET", pattern: "/readyz", op: "readyz", summary: "Readiness: the database and blob store answer (details only in the server log).", role: roleNone, handler: s.readyz, resp: "Status", status: 200},
		{method: "GET", pattern: "/metrics", op: "metrics", summary: "Prometheus metrics (also served without a token on --metrics-listen when set).", role: roleAdmin, auth: true, handler: s.serveMetrics, resp: "#metrics", status: 200},
		{method: "GET", pattern: base + "/openapi.json", op: "openapi", summary: "This OpenAPI document.", role: roleNone, handler: s.serveOpenAPI, resp: "Object", status: 200},
		{method: "GET", pattern: base + "/whoami", op: "whoami", summary: "Describe the caller's token.", role: roleAny, auth: true, handler: s.whoami, resp: "Whoami", status: 200},

		{method: "GET", pattern: base + "/oidc", op: "oidcSettings", summary: "The OpenID Connect provider and client to log in with (helm state login --sso); 404 when the platform has no single sign-on.", role: roleNone, handler: s.oidcSettings, resp: "OIDCSettings", status: 200},
		{method: "POST", pattern: base + "/token-exchange", op: "exchangeToken", summary: "Exchange an OpenID Connect token of the trusted provider (a CI system's workload identity token, an ID token) for a short-lived platform token acting as user:NAME with its group:G (RFC 8693 field names). 401 says why a token is refused (issuer, audience, expiry, signature); 401 too when the platform trusts no provider.", role: "a valid OIDC token in the body", handler: s.exchangeToken, req: "TokenExchangeRequest", resp: "TokenExchangeResponse", status: 201},

		{method: "GET", pattern: base + "/projects", op: "listProjects", summary: "List the projects the caller has a grant in.", role: roleAny, auth: true, handler: s.listProjects, resp: "[]Project", status: 200},
		{method: "POST", pattern: base + "/projects", op: "createProject", summary: "Create a project; the creator becomes its owner.", role: roleAny, auth: true, handler: s.createProject, req: "NameDescription", resp: "Project", status: 201},
		{method: "GET", pattern: projectP, op: "getProject", summary: "Show a project.", role: roleView, auth: true, handler: s.getProject, resp: "Project", status: 200},
		{method: "PATCH", pattern: projectP, op: "updateProject", summary: "Change a project's description.", role: roleMaint, auth: true, handler: s.updateProject, req: "DescriptionUpdate", resp: "Project", status: 200},
		{method: "DELETE", pattern: projectP, op: "deleteProject", summary: "Delete a project with its states, versions, grants and scripts.", role: roleOwner, auth: true, handler: s.deleteProject, status: 204},
		{method: "GET", pattern: projectP + "/grants", op: "listProjectGrants", summary: "List the grants on a project.", role: roleView, auth: true, handler: s.listGrants, resp: "[]Grant", status: 200},
		{method: "PUT", pattern: projectP + "/grants/{subject}", op: "putProjectGrant", summary: "Grant a subject a role on a project (replaces its grant).", role: roleOwner, auth: true, handler: s.putGrant, req: "GrantRequest", resp: "Grant", status: 200},
		{method: "DELETE", pattern: projectP + "/grants/{subject}", op: "deleteProjectGrant", summary: "Remove a subject's grant on a project.", role: roleOwner, auth: true, handler: s.deleteGrant, status: 204},

		{method: "GET", pattern: projectP + "/states", op: "listStates", summary: "List a project's named states.", role: roleView + " (or a grant on the state)", auth: true, handler: s.listStates, resp: "[]State", status: 200},
		{method: "POST", pattern: projectP + "/states", op: "createState", summary: "Create a named state.", role: roleMaint, auth: true, handler: s.createState, req: "NameDescription", resp: "State", status: 201},
		{method: "GET", pattern: stateP, op: "getState", summary: "Show a named state.", role: roleView, auth: true, handler: s.getState, resp: "State", status: 200},
		{method: "PATCH", pattern: stateP, op: "updateState", summary: "Change a state's description.", role: roleMaint, auth: true, handler: s.updateState, req: "DescriptionUpdate", resp: "State", status: 200},
		{method: "DELETE", pattern: stateP, op: "deleteState", summary: "Delete a named state with its versions and grants.", role: roleOwner, auth: true, handler: s.deleteState, status: 204},
		{method: "GET", pattern: stateP + "/grants", op: "listStateGrants", summary: "List the grants on a state (they add to the project's).", role: roleView, auth: true, handler: s.listGrants, resp: "[]Grant", status: 200},
		{method: "PUT", pattern: stateP + "/grants/{subject}", op: "putStateGrant", summary: "Grant a subject a role on a state.", role: roleOwner, auth: true, handler: s.putGrant, req: "GrantRequest", resp: "Grant", status: 200},
		{method: "DELETE", pattern: stateP + "/grants/{subject}", op: "deleteStateGrant", summary: "Remove a subject's grant on a state.", role: roleOwner, auth: true, handler: s.deleteGrant, status: 204},

		{method: "GET", pattern: stateP + "/versions", op: "listVersions", summary: "List a state's versions, newest first.", role: roleView, auth: true, handler: s.listVersions, resp: "[]Version", status: 200,
			query: []param{{"candidates", "string", "only|exclude: filter candidates"}}},
		{method: "POST", pattern: stateP + "/versions", op: "createVersion", summary: "Commit a version. The manifest may name only chunks uploaded to this state or referenced by a version the caller may read (applier or higher on its state); 409 with `missing` lists the others, and chunks the blob store lacks, to upload first. Knowing a digest grants nothing. The same manifest under the same tag again returns the existing version (200).", role: roleMaint + ", or an upload token for this state", auth: true, handler: s.createVersion, req: "CreateVersionRequest", resp: "Version", status: 201},
		{method: "GET", pattern: versionP, op: "getVersion", summary: "Resolve a tag expression (@latest, @candidate, a tag, sha256:...) to a version.", role: roleView + "; or a job token for its version", auth: true, handler: s.getVersion, resp: "Version", status: 200},
		{method: "DELETE", pattern: versionP, op: "deleteVersion", summary: "Delete a version (its chunks go at the next garbage collection).", role: roleOwner, auth: true, handler: s.deleteVersion, status: 204},
		{method: "GET", pattern: versionP + "/manifest", op: "getManifest", summary: "Download a version's canonical manifest (its sha256 is the version digest).", role: roleApplyJ, auth: true, handler: s.getManifest, resp: "Manifest", status: 200},
		{method: "POST", pattern: versionP + "/promote", op: "promoteVersion", summary: "Promote a candidate: drop the [cand]- prefix; it becomes @latest.", role: roleMaint, auth: true, handler: s.promoteVersion, resp: "Version", status: 200},
		{method: "POST", pattern: versionP + "/retag", op: "retagVersion", summary: "Rename a version's tag.", role: roleMaint, auth: true, handler: s.retagVersion, req: "RetagRequest", resp: "Version", status: 200},
		{method: "POST", pattern: versionP + "/job-tokens", op: "createJobToken", summary: "Mint a short-lived (default 1 h, at most 6 h), download-only token for this version (for in-cluster agents). It stops working when the minting token is revoked or expires, loses applier here, or the version is deleted.", role: roleApply, auth: true, handler: s.createJobToken, req: "JobTokenRequest", resp: "JobTokenResponse", status: 201},
		{method: "POST", pattern: stateP + "/upload-tokens", op: "createUploadToken", summary: "Mint a short-lived (default 1 h, at most 6 h) upload token for this state (for capture agents): it may only HEAD and PUT chunks and commit versions here; it cannot download, read other states or mint tokens. It stops working when the minting token is revoked or expires or loses maintainer here.", role: roleMaint, auth: true, handler: s.createUploadToken, req: "JobTokenRequest", resp: "UploadTokenResponse", status: 201},
		{method: "POST", pattern: stateP + "/prune-candidates", op: "pruneCandidates", summary: "Delete candidate versions except the newest `keep`.", role: roleMaint, auth: true, handler: s.pruneCandidates, req: "PruneRequest", resp: "PruneResponse", status: 200},

		{method: "HEAD", pattern: stateP + "/chunks/{digest}", op: "headChunk", summary: "May the caller use this stored chunk here? 200 yes, 404 no, never more: maintainers learn whether a commit to this state may name it without uploading it (it was uploaded to the state, or a version they may read references it, and it is stored); readers whether they can download it. Whether another project stores it is never said.", role: roleMaint + " or an upload token for this state; or " + roleApplyJ, auth: true, handler: s.headChunk, status: 200},
		{method: "PUT", pattern: stateP + "/chunks/{digest}", op: "putChunk", summary: "Upload a chunk's zstd bytes; verified against the digest (400 and nothing stored on mismatch), even when the blob store has them already (stored once). The upload proves the state holds the chunk, so commits to it may name it. Idempotent: 201 new to this state, 200 uploaded to it before. 507 when it would take the project past its upload quota (--project-upload-quota).", role: roleMaint + ", or an upload token for this state", auth: true, handler: s.putChunk, req: "#chunk", status: 201,
			query: []param{{"read_back", "boolean", "true: the state's maintainers may download this chunk before a version references it (a capture's component descriptions)"}}},
		{method: "GET", pattern: stateP + "/chunks/{digest}", op: "getChunk", summary: "Download a chunk's zstd bytes; supports Range for resuming.", role: roleApplyJ + "; a chunk no version references yet: maintainer, if it was uploaded to this state with read_back=true", auth: true, handler: s.getChunk, resp: "#chunk", status: 200},

		{method: "POST", pattern: stateP + "/chunks:batch", op: "getChunkBatch", summary: "Download many chunks in one response (at most 1024 digests). " +
			"The body streams one frame per requested digest, in request order: `<digest> <n>\\n` then the chunk's n zstd bytes (as getChunk sends them), " +
			"or `<digest> missing\\n` for a chunk a version references but the blob store lacks. A response cut off before its last frame: request the rest again. " +
			"404 with `missing` lists requested chunks that are not part of a version the caller may read; nothing is sent then. Maintainers may also fetch chunks uploaded to this state with read_back=true.", role: roleApplyJ, auth: true, handler: s.getChunkBatch, req: "BatchRequest", resp: "#batch", status: 200},

		{method: "GET", pattern: base + "/tokens", op: "listTokens", summary: "List tokens (the admin sees all, ?user= filters; a user sees their own). Secrets are never shown.", role: roleAny, auth: true, handler: s.listTokens, resp: "[]Token", status: 200,
			query: []param{{"user", "string", "admin only: only this user's tokens"}}},
		{method: "POST", pattern: base + "/tokens", op: "createToken", summary: "Create a user token; the secret is in this response only. Names are unique per user. The new token expires no later than the token creating it and is revoked with it.", role: roleAny + " (own user and groups; the admin for anyone)", auth: true, handler: s.createToken, req: "CreateTokenRequest", resp: "CreateTokenResponse", status: 201},
		{method: "DELETE", pattern: base + "/tokens/{name}", op: "revokeToken", summary: "Revoke one of your tokens; it and every token it minted (recursively) stop working at once. The last admin token cannot be revoked (409).", role: "the token's user, or the admin", auth: true, handler: s.revokeToken, status: 204,
			query: []param{{"user", "string", "admin only: whose token of that name (needed when several users have one)"}}},

		{method: "GET", pattern: projectP + "/scripts", op: "listScripts", summary: "List a project's cluster scripts.", role: roleView, auth: true, handler: s.listScripts, resp: "[]Script", status: 200},
		{method: "GET", pattern: scriptP, op: "getScript", summary: "Show a script.", role: roleView, auth: true, handler: s.getScript, resp: "Script", status: 200},
		{method: "PUT", pattern: scriptP, op: "putScript", summary: "Create (201) or replace (200) a script.", role: roleMaint, auth: true, handler: s.putScript, req: "ScriptRequest", resp: "Script", status: 201},
		{method: "DELETE", pattern: scriptP, op: "deleteScript", summary: "Delete a script and its runs.", role: roleOwner, auth: true, handler: s.deleteScript, status: 204},
		{method: "GET", pattern: scriptP + "/runs", op: "listRuns", summary: "List a script's runs, newest first.", role: roleView, auth: true, handler: s.listRuns, resp: "[]Run", status: 200,
			query: []param{{"limit", "integer", "at most this many (1-1000, default 50)"}}},
		{method: "POST", pattern: scriptP + "/runs", op: "createRun", summary: "Record the start of a run (sensitive variable values are not stored); the answer carries the sensitive defaults the Job needs.", role: roleApply, auth: true, handler: s.createRun, req: "CreateRunRequest", resp: "CreatedRun", status: 201},
		{method: "GET", pattern: scriptP + "/runs/{run}", op: "getRun", summary: "Show a run: status, times, exit code; log tail and stack trace for appliers and above.", role: roleView, auth: true, handler: s.getRun, resp: "Run", status: 200},
		{method: "PATCH", pattern: scriptP + "/runs/{run}", op: "updateRun", summary: "Report a run's progress or result.", role: roleApply, auth: true, handler: s.updateRun, req: "UpdateRunRequest", resp: "Run", status: 200},

		{method: "GET", pattern: projectP + "/audit", op: "listProjectAudit", summary: "The project's access record, newest first: projects created and deleted, grants put and removed on it and its states, job and upload tokens minted, with who and when.", role: roleOwner, auth: true, handler: s.projectAudit, resp: "[]AuditEvent", status: 200,
			query: []param{{"limit", "integer", "at most this many (1-1000, default 100)"}}},
		{method: "GET", pattern: base + "/audit", op: "listAudit", summary: "Every access record, newest first, including tokens created and revoked.", role: roleAdmin, auth: true, handler: s.allAudit, resp: "[]AuditEvent", status: 200,
			query: []param{{"limit", "integer", "at most this many (1-1000, default 100)"}, {"project", "string", "only this project's"}}},

		{method: "POST", pattern: base + "/admin/gc", op: "collectGarbage", summary: "Delete chunks no version references. Chunks stored or uploaded (by the time recorded in the database) within the grace period are kept for in-flight uploads. Works in short locked steps: commits and uploads go on meanwhile.", role: roleAdmin, auth: true, handler: s.runGC, req: "GCRequest", resp: "GCResult", status: 200},
	}
}
