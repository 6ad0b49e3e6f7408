package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/store"
)

// Token exchange lifetimes: CI systems' OIDC tokens live minutes, an apply
// may take longer, so the platform token gets its own short lifetime.
const (
	DefaultExchangeTTL = time.Hour
	MaxExchangeTTL     = 12 * time.Hour
)

func (s *Server) oidcSettings(w http.ResponseWriter, r *http.Request) {
	if s.cfg.OIDC == nil {
		s.fail(w, r, errf(http.StatusNotFound, "this platform has no single sign-on (no --oidc-issuer): log in with a platform token"))
		return
	}
	writeJSON(w, http.StatusOK, apitypes.OIDCSettings{Issuer: s.cfg.OIDC.Issuer(), ClientID: s.cfg.OIDC.ClientID()})
}

func (s *Server) exchangeToken(w http.ResponseWriter, r *http.Request) {
	var req apitypes.TokenExchangeRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	switch req.SubjectTokenType {
	case "", apitypes.TokenTypeJWT, apitypes.TokenTypeIDToken, apitypes.TokenTypeAccessToken:
	default:
		s.fail(w, r, errf(http.StatusBadRequest, "subject_token_type %q: want %s, %s or %s", req.SubjectTokenType, apitypes.TokenTypeJWT, apitypes.TokenTypeIDToken, apitypes.TokenTypeAccessToken))
		return
	}
	if req.SubjectToken == "" {
		s.fail(w, r, errf(http.StatusBadRequest, "subject_token is required: the OIDC token to exchange"))
		return
	}
	maxTTL := s.cfg.OIDCExchangeTTL
	ttl := maxTTL
	if req.TTLSeconds < 0 || time.Duration(req.TTLSeconds)*time.Second > maxTTL {
		s.fail(w, r, errf(http.StatusBadRequest, "ttl_seconds must be between 1 and %d (0: the default)", int64(maxTTL.Seconds())))
		return
	}
	if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	id, err := s.authn.VerifyOIDC(r.Context(), req.SubjectToken)
	if errors.Is(err, auth.ErrUnauthenticated) {
		s.metrics.authFailed.Inc()
		writeError(w, http.StatusUnauthorized, "unauthorized: "+err.Error())
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	secret, t, err := s.storeOIDCToken(r.Context(), id, ttl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if h, ok := r.Context().Value(holderKey{}).(*principalHolder); ok {
		p := auth.Principal{Token: t}
		h.p = &p
	}
	writeJSON(w, http.StatusCreated, apitypes.TokenExchangeResponse{
		AccessToken: secret, IssuedTokenType: apitypes.TokenTypeAccessToken, TokenType: "Bearer",
		ExpiresIn: int64(ttl.Seconds()), ExpiresAt: *t.ExpiresAt, User: t.User, Groups: t.Groups,
	})
}

// storeOIDCToken stores a user token for a verified identity, living ttl.
func (s *Server) storeOIDCToken(ctx context.Context, id auth.Identity, ttl time.Duration) (string, store.Token, error) {
	secret, hash, err := auth.NewSecret()
	if err != nil {
		return "", store.Token{}, err
	}
	now := s.cfg.Now().UTC()
	exp := now.Add(ttl)
	tid := auth.NewID()
	t := store.Token{Token: apitypes.Token{ID: tid, Name: "oidc-" + tid[:12], Kind: store.TokenUser, User: id.User, Groups: id.Groups,
		CreatedAt: now, CreatedBy: "oidc:" + s.authn.OIDC.Issuer(), ExpiresAt: &exp}, Hash: hash}
	if err := s.st.CreateToken(ctx, t); err != nil {
		return "", t, err
	}
	s.audit(ctx, auth.Principal{Token: t}, store.AuditEvent{Action: store.AuditTokenCreate, Subject: "token:" + t.User + ":" + t.Name,
		Detail: strings.TrimSpace(tokenDetail(t) + " oidc-exchange issuer=" + s.authn.OIDC.Issuer())})
	return secret, t, nil
}

// minter returns p as a stored token that may mint others. An OIDC
// principal is not stored, yet what it mints records its minter (a job
// token ends with it): it is stored here as a user token living as long
// as the OIDC token.
func (s *Server) minter(ctx context.Context, p auth.Principal) (auth.Principal, error) {
	if !p.IsOIDC() {
		return p, nil
	}
	// It lives like an exchanged token: an in-cluster apply outlasts ID
	// tokens of a few minutes, and the OIDC token could be exchanged anyway.
	_, t, err := s.storeOIDCToken(ctx, auth.Identity{User: p.Token.User, Groups: p.Token.Groups}, s.cfg.OIDCExchangeTTL)
	return auth.Principal{Token: t}, err
}
