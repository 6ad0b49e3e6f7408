package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p.IsScoped() {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: a %s token cannot list tokens", p.Token.Kind))
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
	if p.IsScoped() {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: a %s token cannot create tokens", p.Token.Kind))
		return
	}
	var req apitypes.CreateTokenRequest
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
	p, err := s.minter(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	secret, hash, err := auth.NewSecret()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.cfg.Now().UTC()
	t := store.Token{Token: apitypes.Token{ID: auth.NewID(), Name: req.Name, Kind: store.TokenUser, User: req.User, Groups: req.Groups,
		CreatedAt: now, CreatedBy: p.Name(), ParentID: p.Token.ID}, Hash: hash}
	if req.TTLSeconds > 0 {
		exp := now.Add(time.Duration(req.TTLSeconds) * time.Second)
		t.ExpiresAt = &exp
	}
	t.ExpiresAt = capExpiry(t.ExpiresAt, p.Token.ExpiresAt)
	if err := s.st.CreateToken(r.Context(), t); errors.Is(err, store.ErrExists) {
		// Names are unique per user: this tells only about req.User's own tokens.
		s.fail(w, r, errf(http.StatusConflict, "user %s already has a token named %q: pick another name or revoke that one", req.User, req.Name))
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r.Context(), p, store.AuditEvent{Action: store.AuditTokenCreate, Subject: "token:" + t.User + ":" + t.Name, Detail: tokenDetail(t)})
	writeJSON(w, http.StatusCreated, apitypes.CreateTokenResponse{Token: t.Token, Secret: secret})
}

// capExpiry returns the earlier of a child token's expiry and its parent's
// (nil: no expiry), so a token never mints one that outlives it.
func capExpiry(child, parent *time.Time) *time.Time {
	if parent == nil || (child != nil && child.Before(*parent)) {
		return child
	}
	p := *parent
	return &p
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	name := r.PathValue("name")
	if err := auth.ValidatePrincipalName(name); err != nil {
		s.fail(w, r, errf(http.StatusBadRequest, "token name: %v", err))
		return
	}
	if p.IsScoped() {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: a %s token cannot revoke tokens", p.Token.Kind))
		return
	}
	t, err := s.tokenToRevoke(r, p, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !p.IsAdmin() && (t.User == "" || t.User != p.Token.User) && t.ID != p.Token.ID {
		s.fail(w, r, errf(http.StatusForbidden, "forbidden: you may revoke only your own tokens"))
		return
	}
	// Revokes the tokens it minted too, recursively.
	_, err = s.st.RevokeToken(r.Context(), t.ID, s.cfg.Now())
	s.authn.ForgetTokens()
	if errors.Is(err, store.ErrLastAdmin) {
		s.fail(w, r, errf(http.StatusConflict, "%v", err))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r.Context(), p, store.AuditEvent{Action: store.AuditTokenRevoke, Project: t.Project, State: t.State, Subject: "token:" + t.User + ":" + t.Name})
	w.WriteHeader(http.StatusNoContent)
}

// tokenToRevoke finds the token {name} names: the caller's own user's token
// of that name (or the caller itself); for the admin the token of ?user=,
// or the only token of that name.
func (s *Server) tokenToRevoke(r *http.Request, p auth.Principal, name string) (store.Token, error) {
	if !p.IsAdmin() {
		if p.Token.User == "" && p.Token.Name == name {
			return p.Token, nil
		}
		return s.st.TokenByName(r.Context(), p.Token.User, name)
	}
	if user, ok := r.URL.Query()["user"]; ok {
		return s.st.TokenByName(r.Context(), strings.Join(user, ""), name)
	}
	ts, err := s.st.TokensNamed(r.Context(), name)
	if err != nil {
		return store.Token{}, err
	}
	switch len(ts) {
	case 0:
		return store.Token{}, errf(http.StatusNotFound, "no token named %q", name)
	case 1:
		return ts[0], nil
	}
	users := make([]string, len(ts))
	for i, t := range ts {
		users[i] = strconv.Quote(t.User)
	}
	return store.Token{}, errf(http.StatusConflict, "several users have a token named %q (%s): add ?user=USER", name, strings.Join(users, ", "))
}

// createUploadToken mints a token for a capture's agent Jobs: it may upload
// chunks to and commit versions of this one state and nothing else (no
// downloads, no other state, no tokens). Like a job token it works only
// while its minter is live and a maintainer here, and never outlives it.
func (s *Server) createUploadToken(w http.ResponseWriter, r *http.Request) {
	project, state, err := names(r)
	var p auth.Principal
	if err == nil {
		p, err = s.need(r, project, state, auth.RoleMaintainer)
	}
	var ttl time.Duration
	if err == nil {
		ttl, err = s.scopedTokenTTL(w, r)
	}
	if err == nil {
		err = s.stateExists(r.Context(), project, state)
	}
	var secret string
	var t store.Token
	if err == nil {
		secret, t, err = s.mintScopedToken(r.Context(), p, store.Token{Token: apitypes.Token{Kind: store.TokenUpload, Project: project, State: state}}, ttl)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r.Context(), p, store.AuditEvent{Action: store.AuditUploadTokenCreate, Project: project, State: state, Subject: t.Name, Detail: tokenDetail(t)})
	writeJSON(w, http.StatusCreated, apitypes.UploadTokenResponse{Token: secret, Name: t.Name, Project: project, State: state, ExpiresAt: *t.ExpiresAt})
}

// scopedTokenTTL reads the lifetime a job or upload token request asks for
// (none: the configured default).
func (s *Server) scopedTokenTTL(w http.ResponseWriter, r *http.Request) (time.Duration, error) {
	var req apitypes.JobTokenRequest
	if r.ContentLength != 0 {
		if err := s.decodeJSON(w, r, &req); err != nil {
			return 0, err
		}
	}
	if req.TTLSeconds == 0 {
		return s.cfg.JobTokenTTL, nil
	}
	ttl := time.Duration(req.TTLSeconds) * time.Second
	if req.TTLSeconds < 0 || ttl > MaxJobTokenTTL {
		return 0, errf(http.StatusBadRequest, "ttl_seconds must be between 1 and %d", int(MaxJobTokenTTL.Seconds()))
	}
	return ttl, nil
}

// mintScopedToken stores t (a job or upload token) as minted by p for ttl
// and returns its secret. The minter is recorded: the token works only
// while the minter is live and keeps its role, and never outlives it.
func (s *Server) mintScopedToken(ctx context.Context, p auth.Principal, t store.Token, ttl time.Duration) (string, store.Token, error) {
	p, err := s.minter(ctx, p)
	if err != nil {
		return "", t, err
	}
	secret, hash, err := auth.NewSecret()
	if err != nil {
		return "", t, err
	}
	now := s.cfg.Now().UTC()
	exp := now.Add(ttl)
	t.ID, t.Hash, t.User, t.CreatedAt, t.CreatedBy = auth.NewID(), hash, p.Token.User, now, p.Name()
	t.ExpiresAt, t.ParentID = capExpiry(&exp, p.Token.ExpiresAt), p.Token.ID
	t.Name = t.Kind + "-" + t.ID
	if err := s.st.CreateToken(ctx, t); err != nil {
		return "", t, err
	}
	// Expired scoped tokens are useless; drop old ones so the table stays small.
	_, _ = s.st.DeleteExpiredJobTokens(ctx, now.Add(-24*time.Hour))
	return secret, t, nil
}
