package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
)

// Environment variables of an OpenID Connect token to exchange for a
// platform token (CI workload identity): the token itself, or a file
// holding it (read at each use, so a file the CI system refreshes works).
const (
	EnvOIDCToken     = "UNIKUBE_OIDC_TOKEN"
	EnvOIDCTokenFile = "UNIKUBE_OIDC_TOKEN_FILE"
)

// ExchangeOIDCToken trades an OpenID Connect token of the provider the
// platform trusts for a platform token living ttl (0: the server's
// default). The client's own token is not sent.
func (c *Client) ExchangeOIDCToken(ctx context.Context, oidcToken string, ttl time.Duration) (ExchangedToken, error) {
	var out ExchangedToken
	oidcToken = strings.TrimSpace(oidcToken)
	if oidcToken == "" {
		return out, errors.New("no OIDC token to exchange")
	}
	anon := c.WithToken("")
	err := anon.doJSON(ctx, request{method: http.MethodPost, path: "/api/v1/token-exchange", idempotent: true,
		body: apitypes.TokenExchangeRequest{SubjectToken: oidcToken, SubjectTokenType: apitypes.TokenTypeJWT, TTLSeconds: int64(ttl / time.Second)}}, &out)
	if err != nil {
		return out, fmt.Errorf("exchange the OIDC token for a platform token: %w", err)
	}
	return out, nil
}

// WithOIDCToken exchanges an OIDC token and returns a client using the
// platform token it got.
func (c *Client) WithOIDCToken(ctx context.Context, oidcToken string) (*Client, error) {
	t, err := c.ExchangeOIDCToken(ctx, oidcToken, 0)
	if err != nil {
		return nil, err
	}
	return c.WithToken(t.AccessToken), nil
}

// OIDCTokenFromEnv returns the OIDC token in UNIKUBE_OIDC_TOKEN, else the
// content of the file UNIKUBE_OIDC_TOKEN_FILE names; "" when neither is set.
func OIDCTokenFromEnv(getenv func(string) string) (string, error) {
	if t := strings.TrimSpace(getenv(EnvOIDCToken)); t != "" {
		return t, nil
	}
	return ReadOIDCTokenFile(getenv(EnvOIDCTokenFile))
}

// ReadOIDCTokenFile reads an OIDC token from a file ("" for no file).
func ReadOIDCTokenFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the OIDC token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("the OIDC token file %s is empty", path)
	}
	return t, nil
}

// OIDCSettings asks the platform which OpenID Connect provider and client
// to log in with; a 404 (*Error) when it has no single sign-on.
func (c *Client) OIDCSettings(ctx context.Context) (OIDCSettings, error) {
	var out OIDCSettings
	return out, c.WithToken("").doJSON(ctx, request{method: http.MethodGet, path: "/api/v1/oidc"}, &out)
}
