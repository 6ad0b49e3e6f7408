package helmplugin

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
)

// TestPluginAccess_ProjectGrantsTokensAndAuditThroughHelm manages access
// the way a platform team does, through the real Helm 3 and Helm 4 with the
// plugin installed from its release archive: a project, a group's grant, a
// CI token whose secret comes out once as JSON, the record of it all, and a
// delete refused to someone without the owner role, naming who has it.
func TestPluginAccess_ProjectGrantsTokensAndAuditThroughHelm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	helms := Binaries(t)
	dist := t.TempDir()
	archiveURL := release(t, dist) + "/" + filepath.Base(BuildRelease(ctx, t, dist))
	srv := platformtest.Start(t)
	admin := srv.Admin(t)

	for _, h := range helms {
		t.Run(h.Name, func(t *testing.T) {
			project := "pay-" + h.Name
			olgaToken := srv.UserToken(t, "laptop-"+h.Name, "olga", "platform")
			olga := newUser(t, h, Toolbox(t), client.EnvEndpoint+"="+srv.URL, client.EnvToken+"="+olgaToken)
			if out, code := olga.install(ctx, t, archiveURL); code != 0 {
				t.Fatalf("install: %d\n%s", code, out)
			}
			olga.ok(ctx, t, "state", "project", "create", project, "--description", "payments")
			olga.ok(ctx, t, "state", "access", "grant", project, "group:payments-devs", "applier")
			if out := olga.ok(ctx, t, "state", "access", "list", project); !strings.Contains(out, "group:payments-devs") || !strings.Contains(out, "user:olga") {
				t.Errorf("access list:\n%s", out)
			}

			// The admin's CI token: the secret once, as JSON for a pipeline.
			adm := newUser(t, h, Toolbox(t), client.EnvEndpoint+"="+srv.URL, client.EnvToken+"="+srv.AdminToken)
			if out, code := adm.install(ctx, t, archiveURL); code != 0 {
				t.Fatalf("install: %d\n%s", code, out)
			}
			var tok client.CreatedToken
			out := adm.ok(ctx, t, "state", "token", "create", "ci-"+h.Name, "--user", "ci-bot", "--group", "payments-devs", "--ttl", "1h", "-o", "json")
			if err := json.Unmarshal([]byte(out), &tok); err != nil || !strings.HasPrefix(tok.Secret, "uks_") {
				t.Fatalf("token create -o json: %v\n%s", err, out)
			}
			if _, err := srv.Client(t, tok.Secret).GetProject(ctx, project); err != nil {
				t.Fatalf("the CI token through the group's grant: %v", err)
			}
			if out := adm.ok(ctx, t, "state", "token", "list", "--user", "ci-bot"); strings.Contains(out, "uks_") || !strings.Contains(out, "ci-"+h.Name) {
				t.Errorf("token list:\n%s", out)
			}

			// The CI token may apply, not delete: the message names who may.
			ci := newUser(t, h, Toolbox(t), client.EnvEndpoint+"="+srv.URL, client.EnvToken+"="+tok.Secret)
			if out, code := ci.install(ctx, t, archiveURL); code != 0 {
				t.Fatalf("install: %d\n%s", code, out)
			}
			if _, err := admin.CreateState(ctx, project, "ledger", ""); err != nil {
				t.Fatal(err)
			}
			out, code := ci.run(ctx, t, "state", "delete", project+"/ledger")
			if code != 1 || !strings.Contains(out, "needs the owner role on state "+project+"/ledger: it can be done by user:olga") {
				t.Errorf("delete without owner: exit %d\n%s", code, out)
			}

			adm.ok(ctx, t, "state", "token", "revoke", "ci-"+h.Name, "--user", "ci-bot")
			if _, err := srv.Client(t, tok.Secret).Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
				t.Errorf("revoked token: %v", err)
			}
			if out := olga.ok(ctx, t, "state", "audit", project); !strings.Contains(out, "grant.put") || !strings.Contains(out, "project.create") {
				t.Errorf("audit:\n%s", out)
			}
			olga.ok(ctx, t, "state", "delete", project+"/ledger")
			olga.ok(ctx, t, "state", "project", "delete", project)
		})
	}
}
