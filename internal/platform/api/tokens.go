package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

// CreateTokenRequest creates a user token. The admin may name any user and
// groups; a user creates tokens for themself with a subset of their groups.
type CreateTokenRequest struct {
	Name       string   `json:"name"`
	User       string   `json:"user,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	TTLSeconds int64    `json:"ttl_seconds,omitempty"`
}

// CreateTokenResponse carries the secret, shown only in this response.
type CreateTokenResponse struct {
	store.Token
	Secret string `json:"token"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p.IsJob() {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: a job token cannot list tokens"))
		return
	}
	user := p.Token.User
	if p.IsAdmin() {
		user = r.URL.Query().Get("user")
	}
	ts, err := s.st.ListTokens(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !p.IsAdmin() && user == "" { // a token without a user sees only itself
		ts = []store.Token{p.Token}
	}
	writeJSON(w, http.StatusOK, ts)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p.IsJob() {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: a job token cannot create tokens"))
		return
	}
	var req CreateTokenRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := auth.ValidatePrincipalName(req.Name); err != nil {
		s.fail(w, r, errf(http.StatusBadRequest, "token name: %v", err))
		return
	}
	if !p.IsAdmin() {
		if req.User == "" {
			req.User = p.Token.User
		}
		if req.User != p.Token.User || p.Token.User == "" {
			s.fail(w, r, errf(http.StatusForbidden, "forbidden: you may create tokens only for your own user"))
			return
		}
		for _, g := range req.Groups {
			if !slices.Contains(p.Token.Groups, g) {
				s.fail(w, r, errf(http.StatusForbidden, "forbidden: you are not in group %q", g))
				return
			}
		}
	}
	if req.User == "" {
		s.fail(w, r, errf(http.StatusBadRequest, "user is required: a token acts as a user (subject user:NAME)"))
		return
	}
	if err := auth.ValidatePrincipalName(req.User); err != nil {
		s.fail(w, r, errf(http.StatusBadRequest, "user: %v", err))
		return
	}
	for _, g := range req.Groups {
		if err := auth.ValidatePrincipalName(g); err != nil {
			s.fail(w, r, errf(http.StatusBadRequest, "group: %v", err))
			return
		}
	}
	if req.TTLSeconds < 0 {
		s.fail(w, r, errf(http.StatusBadRequest, "ttl_seconds must be >= 0 (0 = no expiry)"))
		return
	}
	secret, hash, err := auth.NewSecret()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.cfg.Now().UTC()
	t := store.Token{ID: auth.NewID(), Name: req.Name, Hash: hash, Kind: store.TokenUser, User: req.User, Groups: req.Groups,
		CreatedAt: now, CreatedBy: p.Name()}
	if req.TTLSeconds > 0 {
		exp := now.Add(time.Duration(req.TTLSeconds) * time.Second)
		t.ExpiresAt = &exp
	}
	if err := s.st.CreateToken(r.Context(), t); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, CreateTokenResponse{Token: t, Secret: secret})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	name := r.PathValue("name")
	if err := auth.ValidatePrincipalName(name); err != nil {
		s.fail(w, r, errf(http.StatusBadRequest, "token name: %v", err))
		return
	}
	if p.IsJob() {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: a job token cannot revoke tokens"))
		return
	}
	t, err := s.st.TokenByName(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !p.IsAdmin() && (t.User == "" || t.User != p.Token.User) && t.ID != p.Token.ID {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: you may revoke only your own tokens"))
		return
	}
	if err := s.st.RevokeToken(r.Context(), name, s.cfg.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	s.authn.Forget(t.Hash)
	w.WriteHeader(http.StatusNoContent)
}
