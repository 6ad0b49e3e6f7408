// Package platform is the Unikube State platform server, split by job:
//
//	api/          HTTP handlers under /api/v1, the route table and the OpenAPI document it generates
//	auth/         bearer tokens (stored as sha256), principals, roles owner > maintainer > applier > viewer
//	store/        metadata in SQLite (default) or PostgreSQL, with versioned migrations
//	blob/         chunk bytes on the filesystem (temp + fsync + rename) or in an S3 bucket
//	gc/           garbage collection of chunks no version references
//	server/       assembly: stores, admin-token bootstrap, graceful serving (used by cmd/unikube-platform)
//	platformtest/ the real server on a loopback listener for tests (SQLite+fs, or PostgreSQL+S3)
//
// The typed client is internal/client; the API is described in
// api/openapi.json.
package platform
