// Command oidcprovider is the OpenID Connect provider the tests log in
// with: zitadel/oidc's OpenID Provider (package op) and its example
// storage, login pages and device authorization pages, with users and
// clients from a JSON file. Two test hooks are added: an ID token's
// "groups" claim from the user's current groups, and an admin endpoint that
// changes a user's groups while the provider runs (what an administrator
// does at a company's identity provider).
//
//	oidcprovider --config FILE --listen 127.0.0.1:PORT
//
// The admin endpoint (PUT /admin/users/NAME/groups, a JSON list) needs
// "Authorization: Bearer $OIDCPROVIDER_ADMIN_TOKEN".
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Config is the JSON file of --config.
type Config struct {
	Users   []User   `json:"users"`
	Clients []Client `json:"clients"`
}

// User is a person who can log in; ID and username are the same.
type User struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Email    string   `json:"email"`
	Groups   []string `json:"groups"`
}

// Client is a public (native) client: device authorization, authorization
// code with PKCE on a loopback redirect, refresh tokens.
type Client struct {
	ID                  string   `json:"id"`
	RedirectURIs        []string `json:"redirect_uris"`
	IDTokenLifetimeSecs int      `json:"id_token_lifetime_seconds"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "oidcprovider:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:9998", "address to listen on; the issuer is http://ADDRESS")
	configFile := flag.String("config", "", "JSON file of users and clients")
	flag.Parse()
	b, err := os.ReadFile(*configFile)
	if err != nil {
		return fmt.Errorf("read --config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("parse %s: %w", *configFile, err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	issuer := "http://" + *listen
	users := &userStore{users: map[string]*storage.User{}, groups: map[string][]string{}}
	for _, u := range cfg.Users {
		users.users[u.Name] = &storage.User{ID: u.Name, Username: u.Name, Password: u.Password, FirstName: u.Name, LastName: "Test",
			Email: u.Email, EmailVerified: true, PreferredLanguage: language.English}
		users.groups[u.Name] = u.Groups
	}
	clients := map[string]*storage.Client{}
	lifetimes := map[string]time.Duration{}
	for _, c := range cfg.Clients {
		clients[c.ID] = storage.NativeClient(c.ID, c.RedirectURIs...)
		lifetimes[c.ID] = time.Duration(c.IDTokenLifetimeSecs) * time.Second
	}
	st := &testStorage{Storage: storage.NewStorageWithClients(users, clients), users: users, lifetimes: lifetimes}
	router := exampleop.SetupServer(issuer, st, logger, false)
	adminToken := os.Getenv("OIDCPROVIDER_ADMIN_TOKEN")
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /admin/users/{name}/groups", func(w http.ResponseWriter, r *http.Request) {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if adminToken == "" || subtle.ConstantTimeCompare([]byte(got), []byte(adminToken)) != 1 {
			http.Error(w, "admin token required", http.StatusUnauthorized)
			return
		}
		var groups []string
		if err := json.NewDecoder(r.Body).Decode(&groups); err != nil {
			http.Error(w, "want a JSON list of group names: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !users.setGroups(r.PathValue("name"), groups) {
			http.Error(w, "no such user", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", router)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	logger.Info("oidcprovider listening", "issuer", issuer)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// userStore is the example storage's UserStore with groups that change.
type userStore struct {
	mu     sync.Mutex
	users  map[string]*storage.User
	groups map[string][]string
}

func (u *userStore) GetUserByID(id string) *storage.User { return u.GetUserByUsername(id) }

func (u *userStore) GetUserByUsername(name string) *storage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.users[name]
}

func (u *userStore) ExampleClientID() string { return "" }

func (u *userStore) groupsOf(name string) ([]string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.users[name]
	return append([]string{}, u.groups[name]...), ok
}

func (u *userStore) setGroups(name string, groups []string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.users[name]; !ok {
		return false
	}
	u.groups[name] = groups
	return true
}

// testStorage adds the groups claim and the clients' grant types and
// lifetimes to the example storage.
type testStorage struct {
	*storage.Storage
	users     *userStore
	lifetimes map[string]time.Duration
}

func (s *testStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return &testClient{Client: c, lifetime: s.lifetimes[id]}, nil
}

// CreateAccessAndRefreshTokens gives a device flow's refresh token its
// client: the example storage records the client only for code flows, and
// a refresh by a client the token does not name is refused.
func (s *testStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	if d, ok := req.(*op.DeviceAuthorizationState); ok && current == "" {
		req = &storage.AuthRequest{ApplicationID: d.ClientID, UserID: d.Subject, Scopes: d.Scopes}
	}
	return s.Storage.CreateAccessAndRefreshTokens(ctx, req, current)
}

func (s *testStorage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, userID, clientID string, scopes []string) error {
	if err := s.Storage.SetUserinfoFromScopes(ctx, info, userID, clientID, scopes); err != nil {
		return err
	}
	s.addGroups(info, userID)
	return nil
}

func (s *testStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(info, subject)
	return nil
}

func (s *testStorage) addGroups(info *oidc.UserInfo, user string) {
	if groups, ok := s.users.groupsOf(user); ok {
		info.AppendClaims("groups", groups)
	}
}

// testClient is a native client that may also use the device flow, and
// whose ID tokens carry the user's claims and live as configured.
type testClient struct {
	op.Client
	lifetime time.Duration
}

func (c *testClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
}

func (c *testClient) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c *testClient) IDTokenLifetime() time.Duration {
	if c.lifetime > 0 {
		return c.lifetime
	}
	return c.Client.IDTokenLifetime()
}
