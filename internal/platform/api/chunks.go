package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// chunkDigest reads and validates the {digest} path value.
func chunkDigest(r *http.Request) (string, error) {
	d := r.PathValue("digest")
	if _, err := statepkg.ParseDigest(d); err != nil {
		return "", errf(http.StatusBadRequest, "chunk digest: %v", err)
	}
	return d, nil
}

// headChunk answers "is this chunk stored?". Uploaders (maintainers) learn
// whether the blob store has it, so they skip it; readers (appliers, job
// tokens) learn whether it is readable, under the same rules as GET.
func (s *Server) headChunk(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	var digest string
	if err == nil {
		digest, err = chunkDigest(r)
	}
	if err != nil {
		s.failHead(w, r, err)
		return
	}
	if _, err := s.needUploader(r, project, state); err != nil {
		var he *httpError
		if !errors.As(err, &he) || he.status != http.StatusForbidden {
			s.failHead(w, r, err)
			return
		}
		// Not an uploader: answer as a reader would see it.
		if err := s.readableChunk(r, project, state, digest); err != nil {
			s.failHead(w, r, err)
			return
		}
	}
	ok, err := s.blobs.Has(r.Context(), digest)
	if err != nil {
		s.failHead(w, r, err)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// readableChunk checks the caller may read the chunk of project/state:
// applier or higher and the chunk in one of the state's versions, a
// maintainer and the chunk uploaded to this state with read_back=true (a
// capture reads its component descriptions back before committing them;
// whoever may upload to the state may read what was uploaded to it), or a
// job token whose version contains it.
func (s *Server) readableChunk(r *http.Request, project, state, digest string) error {
	isJob, err := s.mayReadChunks(r, project, state)
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	var ok bool
	switch {
	case isJob:
		ok, err = s.st.ChunkInManifest(r.Context(), p.Token.VersionDigest, digest)
	case p.IsAdmin():
		ok = true
	default:
		ok, err = s.st.ChunkInState(r.Context(), project, state, digest)
		if err == nil && !ok {
			if _, merr := s.need(r, project, state, auth.RoleMaintainer); merr == nil {
				ok, err = s.st.ChunkUploadedTo(r.Context(), project, state, digest)
			}
		}
	}
	if err != nil {
		return err
	}
	if !ok {
		return errf(http.StatusNotFound, "chunk %s is not part of any version of %s/%s you may read", digest, project, state)
	}
	return nil
}

// readableChunks is readableChunk for a batch: one query for all digests.
// Digests the caller may not read make a 404 listing them.
func (s *Server) readableChunks(r *http.Request, project, state string, digests []string) error {
	isJob, err := s.mayReadChunks(r, project, state)
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	if p.IsAdmin() && !isJob {
		return nil
	}
	uniq := distinct(digests)
	var found map[string]bool
	if isJob {
		found, err = s.st.ChunksInManifest(r.Context(), p.Token.VersionDigest, uniq)
	} else {
		found, err = s.st.ChunksInState(r.Context(), project, state, uniq)
	}
	if err != nil {
		return err
	}
	var missing []string
	for _, d := range uniq {
		if !found[d] {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &httpError{status: http.StatusNotFound, missing: missing,
		msg: fmt.Sprintf("%d of the requested chunks are not part of any version of %s/%s you may read (listed in missing), e.g. %s", len(missing), project, state, missing[0])}
}

// mayReadChunks checks the caller may read chunks of project/state at all:
// applier or higher, or a job token scoped to it. It reports whether the
// caller is a job token (whose reads are limited to its version).
func (s *Server) mayReadChunks(r *http.Request, project, state string) (isJob bool, err error) {
	isJob, err = jobScope(principalFrom(r.Context()), project, state)
	if err != nil || isJob {
		return isJob, err
	}
	_, err = s.need(r, project, state, auth.RoleApplier)
	return false, err
}

// distinct returns digests without repeats, in first-seen order.
func distinct(digests []string) []string {
	seen := make(map[string]bool, len(digests))
	out := make([]string, 0, len(digests))
	for _, d := range digests {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// failHead writes an error status without a body (HEAD has none).
func (s *Server) failHead(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		if he.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="unikube"`)
		}
		w.Header().Set("X-Unikube-Error", he.msg)
		w.WriteHeader(he.status)
	default:
		s.fail(w, r, err)
	}
}

// putChunk stores a chunk after checking its bytes decompress to data whose
// sha256 is the digest. Storing a chunk that is already there succeeds.
func (s *Server) putChunk(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	var digest string
	if err == nil {
		digest, err = chunkDigest(r)
	}
	if err == nil {
		_, err = s.needUploader(r, project, state)
	}
	if err == nil {
		err = s.stateExists(r.Context(), project, state)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// A chunk is at most MaxChunkSize uncompressed; zstd adds a little on
	// incompressible data. Bounding reads here keeps memory per upload small.
	limit := min(s.cfg.MaxBodyBytes, statepkg.MaxChunkSize+statepkg.MaxChunkSize/64+4096)
	if r.ContentLength > limit {
		s.fail(w, r, &http.MaxBytesError{Limit: limit})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, r, err)
			return
		}
		s.fail(w, r, errf(http.StatusBadRequest, "reading chunk body: %v", err))
		return
	}
	if _, err := s.codec.DecodeChunk(digest, data); err != nil {
		s.metrics.badChunks.Inc()
		s.fail(w, r, errf(http.StatusBadRequest, "chunk rejected, nothing stored: %v", err))
		return
	}
	existed, err := s.blobs.Has(r.Context(), digest)
	if err == nil && !existed {
		err = s.blobs.Put(r.Context(), digest, data)
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("store chunk %s: %w", digest, err))
		return
	}
	if r.URL.Query().Get("read_back") == "true" {
		if err := s.st.RecordUpload(r.Context(), project, state, digest, s.cfg.Now()); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.metrics.chunkIn.Add(float64(len(data)))
	if existed {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// getChunk serves a chunk's compressed bytes with Range support. Callers
// need applier on the state and the chunk must belong to one of its versions
// (a job token: to its version), so a digest never opens another state's data.
func (s *Server) getChunk(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		s.headChunk(w, r)
		return
	}
	project, state, err := names(r)
	var digest string
	if err == nil {
		digest, err = chunkDigest(r)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.readableChunk(r, project, state, digest); err != nil {
		s.fail(w, r, err)
		return
	}
	obj, err := s.blobs.Open(r.Context(), digest)
	if errors.Is(err, blob.ErrNotFound) {
		s.fail(w, r, errf(http.StatusNotFound, "chunk %s is referenced but not stored: the blob store lost it; re-upload the version", digest))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer obj.Close()
	s.metrics.chunkOut.Inc()
	h := w.Header()
	h.Set("Content-Type", "application/zstd")
	h.Set("ETag", `"`+digest+`"`)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	var content io.ReadSeeker = obj
	// Hand the *os.File itself to ServeContent so the copy can use sendfile.
	if f, ok := obj.(interface{ File() *os.File }); ok {
		content = f.File()
	}
	http.ServeContent(w, r, "", obj.Info().ModTime, content)
}
