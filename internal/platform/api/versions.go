package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.need(r, project, state, auth.RoleViewer)
	}
	if err == nil {
		err = s.stateExists(r.Context(), project, state)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	vs, err := s.st.ListVersions(r.Context(), project, state)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch r.URL.Query().Get("candidates") {
	case "only", "true":
		vs = filterVersions(vs, true)
	case "exclude", "false":
		vs = filterVersions(vs, false)
	}
	writeJSON(w, http.StatusOK, vs)
}

func filterVersions(vs []store.Version, candidate bool) []store.Version {
	out := []store.Version{}
	for _, v := range vs {
		if v.Candidate == candidate {
			out = append(out, v)
		}
	}
	return out
}

// readVersion resolves {ref} for a reader: viewers and up, or a job token
// for its own version.
func (s *Server) readVersion(r *http.Request, want auth.Role) (store.Version, error) {
	project, state, err := names(r)
	if err != nil {
		return store.Version{}, err
	}
	p := principalFrom(r.Context())
	isJob, err := jobScope(p, project, state)
	if err != nil {
		return store.Version{}, err
	}
	if !isJob {
		if _, err := s.need(r, project, state, want); err != nil {
			return store.Version{}, err
		}
	}
	v, err := s.resolve(r.Context(), project, state, r.PathValue("ref"))
	if err != nil {
		return v, err
	}
	if isJob && v.Digest != p.Token.VersionDigest {
		return store.Version{}, errf(http.StatusForbidden, "forbidden: this job token is scoped to version %s", p.Token.VersionDigest)
	}
	return v, nil
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	v, err := s.readVersion(r, auth.RoleViewer)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// getManifest returns the manifest bytes exactly as stored (canonical), so
// the caller can check their digest against the version's.
func (s *Server) getManifest(w http.ResponseWriter, r *http.Request) {
	v, err := s.readVersion(r, auth.RoleApplier)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.st.Manifest(r.Context(), v.Digest)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Content-Digest", v.Digest)
	w.Header().Set("X-Unikube-Digest", v.Digest)
	w.Header().Set("X-Unikube-Tag", v.Tag)
	_, _ = w.Write(body)
}

func (s *Server) createVersion(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	var p auth.Principal
	if err == nil {
		p, err = s.needUploader(r, project, state)
	}
	var req apitypes.CreateVersionRequest
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	if err == nil {
		err = s.stateExists(r.Context(), project, state)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, created, err := s.commit(r.Context(), p, project, state, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.metrics.commits.Inc()
	}
	writeJSON(w, status, v)
}

// commit validates the manifest, checks every chunk is stored and may be
// named by the caller (committable), and records the version. Committing the
// same manifest under the same tag again returns the existing version (a
// retried commit is harmless).
func (s *Server) commit(ctx context.Context, p auth.Principal, project, state string, req apitypes.CreateVersionRequest) (store.Version, bool, error) {
	if len(req.Manifest) == 0 {
		return store.Version{}, false, errf(http.StatusBadRequest, "manifest is required")
	}
	m, err := statepkg.DecodeManifest(req.Manifest)
	if err != nil {
		return store.Version{}, false, errf(http.StatusBadRequest, "manifest: %v", err)
	}
	if m.State != "" && m.State != project+"/"+state {
		return store.Version{}, false, errf(http.StatusBadRequest, "manifest is for state %s, not %s/%s", m.State, project, state)
	}
	canonical, err := m.Encode()
	if err != nil {
		return store.Version{}, false, errf(http.StatusBadRequest, "manifest: %v", err)
	}
	digest := statepkg.ManifestDigest(canonical)
	if req.Tag == "" {
		req.Tag = statepkg.ExprRandom
	}
	expr, err := statepkg.ParseTagExpr(req.Tag)
	if err != nil {
		return store.Version{}, false, errf(http.StatusBadRequest, "tag: %v", err)
	}
	var chunks []string
	seen := map[string]bool{}
	var size int64
	comps := make([]store.ComponentSummary, 0, len(m.Components))
	for _, c := range m.Components {
		size += c.Size
		comps = append(comps, store.ComponentSummary{Name: c.Name, Kind: string(c.Kind), Format: c.Format, Size: c.Size, Chunks: len(c.Chunks), Files: len(c.Files)})
		for _, ch := range c.Chunks {
			if !seen[ch.Digest] {
				seen[ch.Digest] = true
				chunks = append(chunks, ch.Digest)
			}
		}
	}
	now := s.cfg.Now().UTC()
	v := store.Version{Project: project, State: state, Digest: digest, Revision: m.Revision, Message: m.Message,
		CreatedAt: now, TaggedAt: now, CreatedBy: p.Name(), Size: size, Components: comps}
	// A chunk this state does not hold, and no version the caller may read
	// references, is missing as much as one the blob store lacks: the
	// caller uploads it, proving they have its bytes. One message for both,
	// so a commit never tells whether another project stores a chunk.
	// Which chunks the caller may name is decided before taking the commit
	// lock (it needs database connections of its own, which on SQLite would
	// wait behind writers waiting for the lock); that they are stored is
	// checked under it, so garbage collection cannot delete them meanwhile.
	held, err := s.committable(ctx, p, project, state, chunks)
	if err != nil {
		return store.Version{}, false, err
	}
	var unheld, stored []string
	for _, c := range chunks {
		if held[c] {
			stored = append(stored, c)
		} else {
			unheld = append(unheld, c)
		}
	}
	check := func(ctx context.Context) error {
		lost, err := s.missingChunks(ctx, stored)
		if err != nil {
			return err
		}
		missing := append(append([]string{}, unheld...), lost...)
		if len(missing) > 0 {
			sort.Strings(missing)
			return &httpError{status: http.StatusConflict, missing: missing,
				msg: fmt.Sprintf("%d of %d chunks named by the manifest are not uploaded to %s/%s: upload them and commit again", len(missing), len(chunks), project, state)}
		}
		return nil
	}
	switch expr.Kind {
	case statepkg.TagLiteral:
		v.Tag = expr.Literal
		v.Candidate = statepkg.IsCandidate(v.Tag)
		err := s.st.CommitVersion(ctx, v, canonical, chunks, check)
		if errors.Is(err, store.ErrExists) {
			old, gerr := s.st.GetVersion(ctx, project, state, v.Tag)
			if gerr == nil && old.Digest == digest {
				return old, false, nil
			}
			return store.Version{}, false, errf(http.StatusConflict, "tag %q of %s/%s already names another version (%s): tags are immutable; use retag or another tag", v.Tag, project, state, old.Digest)
		}
		return v, err == nil, err
	case statepkg.TagRandom, statepkg.TagNewCandidate:
		cand := expr.Kind == statepkg.TagNewCandidate
		for range 5 {
			tag, err := statepkg.NewRandomTag(nil, cand, func(t string) bool {
				ok, err := s.st.TagExists(ctx, project, state, t)
				return err != nil || ok
			})
			if err != nil {
				return store.Version{}, false, err
			}
			v.Tag, v.Candidate = tag, cand
			err = s.st.CommitVersion(ctx, v, canonical, chunks, check)
			if errors.Is(err, store.ErrExists) {
				continue // lost a race for the random tag; draw another
			}
			return v, err == nil, err
		}
		return store.Version{}, false, errf(http.StatusConflict, "could not find a free random tag; try again")
	default:
		return store.Version{}, false, errf(http.StatusBadRequest, "tag %q selects an existing version; to create one use a literal tag, %s or %s",
			req.Tag, statepkg.ExprRandom, statepkg.ExprNewCandidate)
	}
}

// missingChunks checks which chunks the blob store lacks, a few at a time
// (each check is a round trip on S3).
func (s *Server) missingChunks(ctx context.Context, chunks []string) ([]string, error) {
	var mu sync.Mutex
	missing := []string{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, c := range chunks {
		g.Go(func() error {
			ok, err := s.blobs.Has(gctx, c)
			if err != nil {
				return fmt.Errorf("check chunk %s: %w", c, err)
			}
			if !ok {
				mu.Lock()
				missing = append(missing, c)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Strings(missing)
	return missing, nil
}

func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.need(r, project, state, auth.RoleOwner)
	}
	var v store.Version
	if err == nil {
		v, err = s.resolve(r.Context(), project, state, r.PathValue("ref"))
	}
	if err == nil {
		err = s.st.DeleteVersion(r.Context(), project, state, v.Tag, s.cfg.Now())
		s.authn.ForgetRoles() // job tokens of the version end with it
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) promoteVersion(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.need(r, project, state, auth.RoleMaintainer)
	}
	var v store.Version
	if err == nil {
		v, err = s.resolve(r.Context(), project, state, r.PathValue("ref"))
	}
	var to string
	if err == nil {
		to, err = statepkg.PromoteTag(v.Tag)
		if err != nil {
			err = errf(http.StatusBadRequest, "promote: %v", err)
		}
	}
	if err == nil {
		v, err = s.st.Retag(r.Context(), project, state, v.Tag, to, false, s.cfg.Now())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) retagVersion(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.need(r, project, state, auth.RoleMaintainer)
	}
	var req apitypes.RetagRequest
	if err == nil {
		err = s.decodeJSON(w, r, &req)
	}
	if err == nil {
		if verr := statepkg.ValidateTag(req.Tag); verr != nil {
			err = errf(http.StatusBadRequest, "tag: %v", verr)
		}
	}
	var v store.Version
	if err == nil {
		v, err = s.resolve(r.Context(), project, state, r.PathValue("ref"))
	}
	if err == nil && v.Tag != req.Tag {
		v, err = s.st.Retag(r.Context(), project, state, v.Tag, req.Tag, statepkg.IsCandidate(req.Tag), s.cfg.Now())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) pruneCandidates(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	if err == nil {
		_, err = s.need(r, project, state, auth.RoleMaintainer)
	}
	var req apitypes.PruneRequest
	if err == nil && r.ContentLength != 0 {
		err = s.decodeJSON(w, r, &req)
	}
	if err == nil && req.Keep < 0 {
		err = errf(http.StatusBadRequest, "keep must be >= 0")
	}
	if err == nil {
		err = s.stateExists(r.Context(), project, state)
	}
	var deleted []store.Version
	if err == nil {
		deleted, err = s.st.PruneCandidates(r.Context(), project, state, req.Keep, s.cfg.Now())
		s.authn.ForgetRoles() // job tokens of the pruned versions end with them
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apitypes.PruneResponse{Deleted: deleted})
}

func (s *Server) createJobToken(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	var p auth.Principal
	if err == nil {
		p, err = s.need(r, project, state, auth.RoleApplier)
	}
	var ttl time.Duration
	if err == nil {
		ttl, err = s.scopedTokenTTL(w, r)
	}
	var v store.Version
	if err == nil {
		v, err = s.resolve(r.Context(), project, state, r.PathValue("ref"))
	}
	var secret string
	var t store.Token
	if err == nil {
		secret, t, err = s.mintScopedToken(r.Context(), p, store.Token{Token: apitypes.Token{Kind: store.TokenJob, Project: project, State: state, VersionDigest: v.Digest}}, ttl)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r.Context(), p, store.AuditEvent{Action: store.AuditJobTokenCreate, Project: project, State: state, Subject: t.Name, Detail: "tag=" + v.Tag + " " + tokenDetail(t)})
	writeJSON(w, http.StatusCreated, apitypes.JobTokenResponse{Token: secret, Name: t.Name, Project: project, State: state, Tag: v.Tag, Digest: v.Digest, ExpiresAt: *t.ExpiresAt})
}
