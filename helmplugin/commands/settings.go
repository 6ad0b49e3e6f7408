package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/helmpath"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// Settings are what every command shares: Helm's environment (namespace,
// kube context, kubeconfig, debug), the platform login, the output format
// and the streams. Commands get them from the root; nothing is global.
type Settings struct {
	Helm *cli.EnvSettings
	In   io.Reader
	Out  io.Writer
	Err  io.Writer
	// Getenv reads the environment (os.Getenv; tests may replace it).
	Getenv func(string) string
	// Output is -o: table, json or yaml.
	Output string
	// Endpoint/PlatformURL: --endpoint overrides UNIKUBE_ENDPOINT and the
	// login file; --platform-url is the platform as pods in the cluster
	// reach it (default: the endpoint).
	Endpoint    string
	PlatformURL string
	AgentImage  string
	// CAFile (--ca-file, UNIKUBE_CA_FILE): PEM certificates of a private
	// CA the platform's certificate chains to, trusted besides the
	// system's; the agent Jobs get the same bundle, or the ConfigMap
	// CAConfigMap (--ca-configmap) names.
	CAFile      string
	CAConfigMap string
	// errTTY says whether Err is a terminal (progress bars there).
	errTTY bool
}

// Login is what `helm state login` stores (0600): a platform token, or a
// single sign-on login (OIDC) whose refresh token renews its ID token.
type Login struct {
	Endpoint string     `json:"endpoint"`
	Token    string     `json:"token,omitempty"`
	OIDC     *OIDCLogin `json:"oidc,omitempty"`
}

// LoginPath is where the login is kept: $HELM_CONFIG_HOME/state/login.json
// (helm's config home honours XDG_CONFIG_HOME), or UNIKUBE_CONFIG.
func (s *Settings) LoginPath() string {
	if p := s.Getenv("UNIKUBE_CONFIG"); p != "" {
		return p
	}
	return helmpath.ConfigPath("state", "login.json")
}

func (s *Settings) readLogin() (Login, error) {
	var l Login
	b, err := os.ReadFile(s.LoginPath())
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("read login %s: %w", s.LoginPath(), err)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("login file %s is damaged: run helm state login again: %w", s.LoginPath(), err)
	}
	return l, nil
}

func (s *Settings) writeLogin(l Login) error {
	p := s.LoginPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	b, _ := json.MarshalIndent(l, "", "  ")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write login: %w", err)
	}
	return os.Rename(tmp, p)
}

// Logger writes debug logs to stderr when HELM_DEBUG/--debug is set and
// warnings otherwise.
func (s *Settings) Logger() *slog.Logger {
	lvl := slog.LevelWarn
	if s.Helm != nil && s.Helm.Debug {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: lvl}))
}

// Platform returns a client of the platform: --endpoint, UNIKUBE_ENDPOINT
// or the login file; the token from UNIKUBE_TOKEN, else an OIDC token in
// UNIKUBE_OIDC_TOKEN(_FILE) exchanged for a platform token, else the login
// file (its single sign-on renewed silently when due).
func (s *Settings) Platform() (*client.Client, error) {
	l, err := s.readLogin()
	if err != nil {
		return nil, err
	}
	endpoint := firstNonEmpty(s.Endpoint, s.Getenv(client.EnvEndpoint), l.Endpoint)
	token := s.Getenv(client.EnvToken)
	if endpoint == "" {
		return nil, usageErrorf("no platform endpoint: run helm state login ENDPOINT, or set %s", client.EnvEndpoint)
	}
	oidcToken := ""
	if token == "" {
		if oidcToken, err = client.OIDCTokenFromEnv(s.Getenv); err != nil {
			return nil, &UsageError{Err: err}
		}
	}
	if token == "" && oidcToken == "" && (l.Token != "" || l.OIDC != nil) {
		// The login's token belongs to the login's platform: another
		// endpoint (a flag, an environment a checkout set, a TAB
		// completion) must not receive it.
		if !sameEndpoint(endpoint, l.Endpoint) {
			return nil, usageErrorf("the login is for %s, not %s: run helm state login %s, or set %s for it", l.Endpoint, endpoint, endpoint, client.EnvToken)
		}
		token = l.Token
		if l.OIDC != nil {
			if token, err = s.ssoToken(context.Background(), &l); err != nil {
				return nil, err
			}
		}
	}
	if token == "" && oidcToken == "" {
		return nil, usageErrorf("no platform token: run helm state login, or set %s (or %s / %s for an OIDC token)", client.EnvToken, client.EnvOIDCToken, client.EnvOIDCTokenFile)
	}
	var logger *slog.Logger
	if s.Helm != nil && s.Helm.Debug {
		logger = s.Logger()
	}
	ca, err := s.caCertificate()
	if err != nil {
		return nil, err
	}
	pc, err := client.New(client.Config{Endpoint: endpoint, Token: token, Logger: logger, UserAgent: "helm-state/" + buildinfo.Get().Version,
		CACertificate: ca, Getenv: func(string) string { return "" }})
	if err != nil || oidcToken == "" {
		return pc, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if pc, err = pc.WithOIDCToken(ctx, oidcToken); err != nil {
		return nil, platformErr("log in with the OIDC token of "+client.EnvOIDCToken+"/"+client.EnvOIDCTokenFile, err)
	}
	return pc, nil
}

// caCertificate reads --ca-file (default UNIKUBE_CA_FILE), else takes the
// PEM in UNIKUBE_CA_CERTIFICATE; nil when neither is set.
func (s *Settings) caCertificate() ([]byte, error) {
	if s.CAFile == "" {
		if pem := s.Getenv(client.EnvCACertificate); pem != "" {
			return []byte(pem), nil
		}
		return nil, nil
	}
	b, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, usageErrorf("--ca-file (%s): %v", client.EnvCAFile, err)
	}
	return b, nil
}

// Kube returns a clientset and REST config for Helm's current context and
// namespace (--kubeconfig, --kube-context, HELM_KUBEAPISERVER, ...).
func (s *Settings) Kube() (kubernetes.Interface, *rest.Config, error) {
	rc, err := s.Helm.RESTClientGetter().ToRESTConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes config (check --kubeconfig/--kube-context): %w", err)
	}
	// An apply makes dozens of permission checks and watches; client-go's
	// default of 5 requests/s cost seconds. Helm's --burst-limit/HELM_QPS win.
	if rc.QPS == 0 {
		rc.QPS = 50
		rc.Burst = max(rc.Burst, 100)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, rc, nil
}

// Namespace is Helm's namespace (--namespace, HELM_NAMESPACE, kubeconfig).
func (s *Settings) Namespace() string { return s.Helm.Namespace() }

// Print writes v as JSON or YAML per -o, or calls table for -o table.
func (s *Settings) Print(v any, table func(w io.Writer) error) error {
	return printOut(s.Out, s.Output, v, table)
}

// Context returns a context cancelled by SIGINT/SIGTERM (set by the root).
func (s *Settings) Context(cmd interface{ Context() context.Context }) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// sameEndpoint says whether two platform URLs name the same server and
// path (scheme and host case-insensitively, a trailing slash aside).
func sameEndpoint(a, b string) bool {
	ua, err1 := url.Parse(strings.TrimRight(a, "/"))
	ub, err2 := url.Parse(strings.TrimRight(b, "/"))
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) && ua.Path == ub.Path
}
