package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
)

// TestAudit_RecordsEveryAccessChange: project create/delete, grants put and
// removed, tokens created and revoked, and job and upload tokens minted are
// each recorded with who, what and when; a project's owners read its
// record, the admin reads everything, others are refused.
func TestAudit_RecordsEveryAccessChange(t *testing.T) {
	onBothBackends(t, func(t *testing.T, srv *platformtest.Server) {
		ctx := context.Background()
		admin := srv.Admin(t)
		olga := srv.Client(t, srv.UserToken(t, "laptop", "olga"))

		must(olga.CreateProject(ctx, "pay", ""))
		must(olga.PutGrant(ctx, "pay", "", "group:devs", client.RoleApplier))
		must(olga.CreateState(ctx, "pay", "ledger", ""))
		must(olga.PutGrant(ctx, "pay", "ledger", "group:qa", client.RoleViewer))
		if err := olga.DeleteGrant(ctx, "pay", "ledger", "group:qa"); err != nil {
			t.Fatal(err)
		}
		m, mem := makeVersion(t, "pay/ledger", "r1", randomBytes(4<<10, 1))
		must3(olga.PushVersion(ctx, "pay", "ledger", "v1", m, mem, client.TransferOptions{}))
		job := must(olga.CreateJobToken(ctx, "pay", "ledger", "v1", 0))
		up := must(olga.CreateUploadToken(ctx, "pay", "ledger", 0))
		ci := must(admin.CreateToken(ctx, client.TokenRequest{Name: "ci", User: "ci-bot", Groups: []string{"devs"}, TTLSeconds: 3600}))
		if err := admin.RevokeUserToken(ctx, "ci-bot", "ci"); err != nil {
			t.Fatal(err)
		}

		// The project's record, newest first, for its owner.
		evs := must(olga.ListAudit(ctx, client.AuditOptions{Project: "pay"}))
		var got []string
		for _, e := range evs {
			if e.Actor != "user:olga" || e.At.IsZero() || e.ID == "" {
				t.Errorf("event without who or when: %+v", e)
			}
			got = append(got, e.Action+" "+e.State+" "+e.Subject+" "+e.Detail)
		}
		want := []string{
			"upload-token.create ledger " + up.Name + " ",
			"job-token.create ledger " + job.Name + " tag=v1 version=" + job.Digest + " ",
			"grant.delete ledger group:qa ",
			"grant.put ledger group:qa role=viewer",
			"grant.put  group:devs role=applier",
			"project.create  user:olga ",
		}
		if len(got) != len(want) {
			t.Fatalf("pay's record:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("event %d: %q, want prefix %q", i, got[i], want[i])
			}
		}
		if limited := must(olga.ListAudit(ctx, client.AuditOptions{Project: "pay", Limit: 2})); len(limited) != 2 || limited[0].Action != "upload-token.create" {
			t.Errorf("limit 2: %+v", limited)
		}

		// Not for an applier, nor the whole record for a user.
		dev := srv.Client(t, srv.UserToken(t, "dev", "dan", "devs"))
		if _, err := dev.ListAudit(ctx, client.AuditOptions{Project: "pay"}); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("an applier reads the record: %v", err)
		}
		if _, err := olga.ListAudit(ctx, client.AuditOptions{}); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("a user reads the whole record: %v", err)
		}

		// The admin sees tokens of no project, and a deleted project's record stays.
		if err := olga.DeleteProject(ctx, "pay"); err != nil {
			t.Fatal(err)
		}
		all := must(admin.ListAudit(ctx, client.AuditOptions{}))
		actions := map[string]string{}
		for _, e := range all {
			actions[e.Action] += e.Subject + ";"
		}
		if !strings.Contains(actions["token.create"], "token:ci-bot:ci;") || !strings.Contains(actions["token.revoke"], "token:ci-bot:ci;") ||
			actions["project.delete"] != ";" || !strings.Contains(actions["token.create"], "token:dan:dev;") {
			t.Errorf("the admin's record: %v", actions)
		}
		for _, e := range all {
			if e.Action == "token.create" && e.Subject == "token:ci-bot:ci" && (!strings.Contains(e.Detail, "groups=devs") || !strings.Contains(e.Detail, "expires=")) {
				t.Errorf("token event detail: %+v", e)
			}
			if strings.Contains(e.Detail, ci.Secret) || strings.Contains(e.Detail, "uks_") {
				t.Fatalf("a secret in the record: %+v", e)
			}
		}
		if _, err := admin.ListAudit(ctx, client.AuditOptions{Limit: 5000}); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("limit 5000: %v", err)
		}
	})
}

// TestTokens_RevokedTokensNameCanBeTakenAgain: a revoked token gives up its
// name, so automation can replace a token under the same name; a live one
// keeps it.
func TestTokens_RevokedTokensNameCanBeTakenAgain(t *testing.T) {
	onBothBackends(t, func(t *testing.T, srv *platformtest.Server) {
		ctx := context.Background()
		admin := srv.Admin(t)
		old := must(admin.CreateToken(ctx, client.TokenRequest{Name: "deploy", User: "ci-bot"}))
		if _, err := admin.CreateToken(ctx, client.TokenRequest{Name: "deploy", User: "ci-bot"}); !errors.Is(err, client.ErrConflict) {
			t.Fatalf("a second live token of one name: %v", err)
		}
		if err := admin.RevokeUserToken(ctx, "ci-bot", "deploy"); err != nil {
			t.Fatal(err)
		}
		fresh := must(admin.CreateToken(ctx, client.TokenRequest{Name: "deploy", User: "ci-bot"}))
		if _, err := srv.Client(t, old.Secret).Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("the revoked token: %v", err)
		}
		if who, err := srv.Client(t, fresh.Secret).Whoami(ctx); err != nil || who.User != "ci-bot" {
			t.Errorf("the new token: %+v %v", who, err)
		}
		if got := must(admin.FindToken(ctx, "ci-bot", "deploy")); got.ID != fresh.ID || !got.Live(got.CreatedAt) {
			t.Errorf("the name finds %+v, want the new token %s", got, fresh.ID)
		}
	})
}

// TestAudit_ReusedProjectNameDoesNotShowTheOldProjectsRecord: any user may
// create a project, so whoever takes a deleted project's name must not read
// its former owner's record (grantees, token names, version digests); the
// admin still does.
func TestAudit_ReusedProjectNameDoesNotShowTheOldProjectsRecord(t *testing.T) {
	onBothBackends(t, func(t *testing.T, srv *platformtest.Server) {
		ctx := context.Background()
		olga := srv.Client(t, srv.UserToken(t, "laptop", "olga"))
		must(olga.CreateProject(ctx, "pay", ""))
		must(olga.PutGrant(ctx, "pay", "", "group:secret-team", client.RoleApplier))
		if err := olga.DeleteProject(ctx, "pay"); err != nil {
			t.Fatal(err)
		}

		mallory := srv.Client(t, srv.UserToken(t, "laptop", "mallory"))
		must(mallory.CreateProject(ctx, "pay", ""))
		for _, e := range must(mallory.ListAudit(ctx, client.AuditOptions{Project: "pay"})) {
			if e.Actor != "user:mallory" {
				t.Errorf("the new owner reads the deleted project's record: %+v", e)
			}
		}
		old := 0
		for _, e := range must(srv.Admin(t).ListAudit(ctx, client.AuditOptions{})) {
			if e.Actor == "user:olga" && e.Project == "pay" {
				old++
			}
		}
		if old != 3 {
			t.Errorf("the admin sees %d of olga's 3 events on pay", old)
		}
	})
}
