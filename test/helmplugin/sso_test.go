package helmplugin

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/auth"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestPluginSSOLogin_DeviceFlowThroughHelm: `helm state login --sso`, run
// by the real helm CLIs with the released plugin, logs in at a real OpenID
// Connect provider with the device flow, keeps the login under Helm's own
// config directory (HELM_CONFIG_HOME) with 0600, and the next command uses
// it through a group grant.
func TestPluginSSOLogin_DeviceFlowThroughHelm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	helms := Binaries(t)
	idp := testenv.StartOIDCProvider(t, testenv.OIDCProviderOptions{
		Users:   []testenv.OIDCUser{{Name: "alice", Password: "alice-pw", Groups: []string{"shop-devs"}}},
		Clients: []testenv.OIDCClient{{ID: "helm-state"}},
	})
	dist := t.TempDir()
	archiveURL := release(t, dist) + "/" + filepath.Base(BuildRelease(ctx, t, dist))
	srv := platformtest.Start(t, platformtest.WithOptions(func(o *platformtest.Options) {
		o.OIDC = auth.OIDCConfig{Issuer: idp.Issuer, ClientID: "helm-state", UsernameClaim: "preferred_username"}
	}))
	admin := srv.Admin(t)
	seedState(ctx, t, admin)
	if _, err := admin.PutGrant(ctx, "shop", "", "group:shop-devs", client.RoleViewer); err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile(`code ([A-Z0-9-]+)$`)

	for _, h := range helms {
		t.Run(h.Name, func(t *testing.T) {
			u := newUser(t, h, Toolbox(t))
			if out, code := u.install(ctx, t, archiveURL); code != 0 {
				t.Fatalf("install: %d\n%s", code, out)
			}
			c := exec.CommandContext(ctx, u.helm.Bin, "state", "login", srv.URL, "--sso")
			c.Env = u.env
			stderr, err := c.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			c.Stdout = &out
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if m := code.FindStringSubmatch(sc.Text()); m != nil {
					if err := idp.ApproveDevice(ctx, m[1], "alice", "alice-pw"); err != nil {
						t.Error(err)
					}
				}
			}
			if err := c.Wait(); err != nil || !strings.Contains(out.String(), "as user:alice in groups shop-devs") {
				t.Fatalf("helm state login --sso: %v\n%s", err, out.String())
			}
			path := filepath.Join(u.home, "config", "state", "login.json")
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("the login under HELM_CONFIG_HOME: %v %v, want a 0600 file", err, fi)
			}
			b, _ := os.ReadFile(path)
			var l struct {
				OIDC struct {
					RefreshToken string `json:"refresh_token"`
				} `json:"oidc"`
			}
			if err := json.Unmarshal(b, &l); err != nil || l.OIDC.RefreshToken == "" {
				t.Fatalf("login file without a refresh token: %v", err)
			}
			if out := u.ok(ctx, t, "state", "list", "shop"); !strings.Contains(out, "shop/seed") {
				t.Errorf("helm state list after the login:\n%s", out)
			}
		})
	}
}
