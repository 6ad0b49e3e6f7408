package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/blob"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
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

// headChunk answers "may I use this stored chunk here?" with 200, else 404,
// never saying more. Uploaders (maintainers) learn whether a commit to this
// state may name it without uploading it (the state holds it, or a version
// they may read references it) and it is stored, so they skip the upload;
// whether another project stores it stays hidden. Readers (appliers, job
// tokens) learn whether they can download it, under the same rules as GET.
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
	p, err := s.needUploader(r, project, state)
	if err != nil {
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
	} else {
		held, err := s.committable(r.Context(), p, project, state, []string{digest})
		if err != nil {
			s.failHead(w, r, err)
			return
		}
		if !held[digest] {
			w.WriteHeader(http.StatusNotFound)
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

// committable returns which of chunks a commit to project/state by p may
// name without uploading them: chunks the state holds (uploaded to it, or
// referenced by one of its versions) and chunks referenced by a version the
// caller may read (applier or higher on that version's state, in any
// project). Anything else must be uploaded, proving the caller has its
// bytes: knowing a digest grants nothing. The admin may name any chunk.
func (s *Server) committable(ctx context.Context, p auth.Principal, project, state string, chunks []string) (map[string]bool, error) {
	if p.IsAdmin() {
		ok := make(map[string]bool, len(chunks))
		for _, c := range chunks {
			ok[c] = true
		}
		return ok, nil
	}
	ok, err := s.st.ChunksHeldBy(ctx, project, state, chunks)
	if err != nil {
		return nil, err
	}
	var rest []string
	for _, c := range chunks {
		if !ok[c] {
			rest = append(rest, c)
		}
	}
	if len(rest) == 0 {
		return ok, nil
	}
	holders, err := s.st.ChunkHolders(ctx, rest)
	if err != nil {
		return nil, err
	}
	readable := map[store.StateRef]bool{}
	for _, c := range rest {
		for _, h := range holders[c] {
			may, seen := readable[h]
			if !seen {
				role, err := s.authn.RoleOn(ctx, p, h.Project, h.State)
				if err != nil {
					return nil, err
				}
				may = role >= auth.RoleApplier
				readable[h] = may
			}
			if may {
				ok[c] = true
				break
			}
		}
	}
	return ok, nil
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
	if len(missing) > 0 && !isJob {
		// As for GET: the state's maintainers may read back what was
		// uploaded to it with read_back=true.
		if _, merr := s.need(r, project, state, auth.RoleMaintainer); merr == nil {
			back, err := s.st.ChunksUploadedForReadBack(r.Context(), project, state, missing)
			if err != nil {
				return err
			}
			rest := missing[:0]
			for _, d := range missing {
				if !back[d] {
					rest = append(rest, d)
				}
			}
			missing = rest
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
// sha256 is the digest, and records the upload for this state: that is how
// a state proves it holds a chunk (see committable). Bytes the blob store
// already has are verified and recorded all the same, not stored twice.
// 201 means the chunk is new to this state, 200 that it was uploaded to it
// before; whether another project stores it is never said.
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
	// Record first, then store: a garbage collection running meanwhile
	// either sees the record and spares the chunk, or deleted it before and
	// the check below stores it again (store.RecordUpload).
	again, err := s.st.RecordUpload(r.Context(), store.Upload{Project: project, State: state, Chunk: digest, Size: int64(len(data)),
		ReadBack: r.URL.Query().Get("read_back") == "true", At: s.cfg.Now()}, s.cfg.ProjectUploadQuota)
	var qe *store.QuotaError
	if errors.As(err, &qe) {
		s.fail(w, r, errf(http.StatusInsufficientStorage, "chunk %s not stored: %v", digest, qe))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stored, err := s.blobs.Has(r.Context(), digest)
	if err == nil && !stored {
		err = s.blobs.Put(r.Context(), digest, data)
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("store chunk %s: %w", digest, err))
		return
	}
	s.metrics.chunkIn.Add(float64(len(data)))
	if again {
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
