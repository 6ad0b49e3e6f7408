package commands

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// The single sign-on of helm state login against a real OpenID Connect
// provider (test/oidcprovider) and the real platform.

const ssoClient = "helm-state"

// ssoWorld is a platform trusting a provider whose ID tokens live a few
// seconds, so every command renews the login (silently) first.
func ssoWorld(t *testing.T) (*world, *testenv.OIDCProvider) {
	t.Helper()
	idp := testenv.StartOIDCProvider(t, testenv.OIDCProviderOptions{
		Users: []testenv.OIDCUser{{Name: "alice", Password: "alice-pw", Groups: []string{"shop-devs"}}},
		Clients: []testenv.OIDCClient{{ID: ssoClient, RedirectURIs: []string{"http://127.0.0.1/callback"},
			IDTokenLifetimeSeconds: 60}}, // less than refreshMargin
	})
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.OIDC = auth.OIDCConfig{Issuer: idp.Issuer, ClientID: ssoClient, UsernameClaim: "preferred_username"}
	}))
	ctx := context.Background()
	admin := srv.Admin(t)
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateState(ctx, "shop", "seed", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutGrant(ctx, "shop", "", "group:shop-devs", client.RoleViewer); err != nil {
		t.Fatal(err)
	}
	// No token in the environment: the login file is what is used.
	w := &world{srv: srv, admin: admin, env: map[string]string{
		client.EnvEndpoint: "", client.EnvToken: "", "UNIKUBE_CONFIG": t.TempDir() + "/state/login.json", "BROWSER": "true",
	}}
	return w, idp
}

// login runs helm state login with args in process and hands each line it
// writes to stderr to onLine (which acts as the user at the provider).
func (w *world) login(t *testing.T, onLine func(line string) error, args ...string) (string, string, int) {
	t.Helper()
	for k, v := range w.env {
		t.Setenv(k, v)
	}
	pr, pw := io.Pipe()
	var out, errb bytes.Buffer
	root := NewRoot(strings.NewReader(""), &out, pw)
	root.SetArgs(append([]string{"login", w.srv.URL}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		errb.WriteString(sc.Text() + "\n")
		if err := onLine(sc.Text()); err != nil {
			t.Errorf("acting as the user: %v", err)
			cancel()
		}
	}
	err := <-done
	if err != nil {
		errb.WriteString("Error: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), ExitCode(err)
}

var userCodeLine = regexp.MustCompile(`code ([A-Z0-9-]+)$`)

func TestCommands_SSOLogin_DeviceFlow_RenewsSilently_FollowsGroups(t *testing.T) {
	w, idp := ssoWorld(t)
	out, errOut, code := w.login(t, func(line string) error {
		if m := userCodeLine.FindStringSubmatch(line); m != nil {
			return idp.ApproveDevice(context.Background(), m[1], "alice", "alice-pw")
		}
		return nil
	}, "--sso")
	if code != 0 || !strings.Contains(out, "as user:alice in groups shop-devs through "+idp.Issuer) {
		t.Fatalf("login --sso: exit %d %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "/device?user_code=") {
		t.Errorf("the device flow did not print the verification URL: %q", errOut)
	}
	path := w.env["UNIKUBE_CONFIG"]
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("login file %s: %v %v, want mode 0600", path, err, fi)
	}
	l := readLoginFile(t, path)
	if l.OIDC == nil || l.OIDC.RefreshToken == "" || l.Token != "" {
		t.Fatalf("login file holds %+v, want a refresh token and no platform token", l)
	}

	// The ID token is due for renewal at once: the command renews it
	// silently, stores the new one, and the group grant lets alice list.
	time.Sleep(1100 * time.Millisecond) // a token issued in the same second could be identical
	if out, errOut, code := w.run(t, "", "list", "shop"); code != 0 || !strings.Contains(out, "shop/seed") {
		t.Fatalf("list as alice through group:shop-devs: exit %d %q %q", code, out, errOut)
	}
	if renewed := readLoginFile(t, path); renewed.OIDC.IDToken == l.OIDC.IDToken {
		t.Error("the ID token was not renewed although it expires within the renewal margin")
	}

	// CI's shape: an OIDC token in a file, exchanged for a platform token;
	// no login file needed.
	tokFile := t.TempDir() + "/oidc-token"
	if err := os.WriteFile(tokFile, []byte(readLoginFile(t, path).OIDC.IDToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ci := &world{srv: w.srv, env: map[string]string{client.EnvEndpoint: w.srv.URL, client.EnvToken: "", client.EnvOIDCTokenFile: tokFile,
		"UNIKUBE_CONFIG": t.TempDir() + "/none.json"}}
	if out, errOut, code := ci.run(t, "", "list", "shop"); code != 0 || !strings.Contains(out, "shop/seed") {
		t.Fatalf("list with %s: exit %d %q %q", client.EnvOIDCTokenFile, code, out, errOut)
	}
	t.Setenv(client.EnvOIDCTokenFile, "")

	// Removed from the group at the provider: gone at the next renewal.
	idp.SetGroups(t, "alice")
	if out, errOut, code := w.run(t, "", "show", "shop/seed"); code == 0 || !strings.Contains(errOut, "access denied") {
		t.Fatalf("show after alice left shop-devs at the provider: exit %d %q %q, want access denied", code, out, errOut)
	}

	// The session ends at the provider (the refresh token is no longer
	// valid): the command says to log in again.
	l = readLoginFile(t, path)
	l.OIDC.RefreshToken = "ended"
	b, _ := json.Marshal(l)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := w.run(t, "", "list", "shop"); code != 2 || !strings.Contains(errOut, "helm state login "+w.srv.URL+" --sso") {
		t.Fatalf("list with an ended session: exit %d %q, want 2 saying to log in again", code, errOut)
	}
}

func TestCommands_SSOLogin_BrowserFlowWithPKCE(t *testing.T) {
	w, idp := ssoWorld(t)
	out, errOut, code := w.login(t, func(line string) error {
		if strings.HasPrefix(line, idp.Issuer+"/auth?") {
			if !strings.Contains(line, "code_challenge_method=S256") || !strings.Contains(line, "redirect_uri=http%3A%2F%2F127.0.0.1%3A") {
				t.Errorf("the authorization URL lacks PKCE or a loopback redirect: %s", line)
			}
			return idp.BrowserLogin(context.Background(), line, "alice", "alice-pw")
		}
		return nil
	}, "--browser")
	if code != 0 || !strings.Contains(out, "as user:alice in groups shop-devs") {
		t.Fatalf("login --browser: exit %d %q %q", code, out, errOut)
	}
	if out, errOut, code := w.run(t, "", "list", "shop"); code != 0 || !strings.Contains(out, "shop/seed") {
		t.Fatalf("list after the browser login: exit %d %q %q", code, out, errOut)
	}
}

// A platform without single sign-on says so; token logins are unchanged.
func TestCommands_SSOLogin_PlatformWithoutSSO(t *testing.T) {
	w := newWorld(t)
	w.env["UNIKUBE_CONFIG"] = t.TempDir() + "/login.json"
	_, errOut, code := w.login(t, func(string) error { return nil }, "--sso")
	if code != 2 || !strings.Contains(errOut, "has no single sign-on") {
		t.Fatalf("login --sso to a platform without OIDC: exit %d %q", code, errOut)
	}
}

func readLoginFile(t *testing.T, path string) Login {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var l Login
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}
