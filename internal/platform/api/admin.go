package api

import (
	"context"
	"net/http"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/gc"
)

func (s *Server) runGC(w http.ResponseWriter, r *http.Request) {
	if err := needAdmin(r); err != nil {
		s.fail(w, r, err)
		return
	}
	var req apitypes.GCRequest
	if r.ContentLength != 0 {
		if err := s.decodeJSON(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	grace := s.cfg.GCGrace
	if req.GraceSeconds != nil {
		if *req.GraceSeconds < 0 {
			s.fail(w, r, errf(http.StatusBadRequest, "grace_seconds must be >= 0"))
			return
		}
		grace = time.Duration(*req.GraceSeconds) * time.Second
	}
	res, err := gc.Run(r.Context(), s.st, s.blobs, gc.Options{Grace: grace, DryRun: req.DryRun, Now: s.cfg.Now})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.gcDeleted.Add(float64(res.Deleted))
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz checks the metadata and blob stores answer.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	// The errors stay in the server log: they can name hosts, users and
	// paths, and /readyz answers anyone.
	if err := s.st.Ping(ctx); err != nil {
		s.log.Error("readiness: database does not answer", "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, "database not ready: see the server log")
		return
	}
	if err := s.blobs.Ping(ctx); err != nil {
		s.log.Error("readiness: blob store does not answer", "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, "blob store not ready: see the server log")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
