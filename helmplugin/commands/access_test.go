package commands

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// as returns a copy of the world acting with token.
func (w *world) as(token string) *world {
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	env[client.EnvToken] = token
	return &world{srv: w.srv, admin: w.admin, env: env}
}

func TestCommands_ProjectsAndAccessAgainstTheRealPlatform(t *testing.T) {
	w := newWorld(t)
	olga := w.as(w.srv.UserToken(t, "laptop", "olga", "platform"))

	// Olga creates the project and owns it.
	if out, errOut, code := olga.run(t, "", "project", "create", "payments", "--description", "Payment service"); code != 0 || out != "created project payments\n" {
		t.Fatalf("project create: %d %q %q", code, out, errOut)
	}
	if out, _, code := olga.run(t, "", "project", "list"); code != 0 || !strings.Contains(out, "payments") || strings.Contains(out, "shop") {
		t.Fatalf("project list shows only olga's projects: %q", out)
	}
	for _, a := range [][]string{
		{"access", "grant", "payments", "group:payments-devs", "applier"},
		{"access", "grant", "payments", "user:alice", "maintainer"},
	} {
		if out, errOut, code := olga.run(t, "", a...); code != 0 || !strings.HasPrefix(out, "granted ") {
			t.Fatalf("%v: %d %q %q", a, code, out, errOut)
		}
	}
	if _, _, code := olga.run(t, "", "access", "revoke", "payments", "user:alice"); code != 0 {
		t.Fatal("revoke failed")
	}
	var view projectView
	out, _, _ := olga.run(t, "", "project", "show", "payments", "-o", "json")
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("project show -o json: %v %q", err, out)
	}
	grants := map[string]string{}
	for _, g := range view.Grants {
		grants[g.Subject] = g.Role
	}
	if view.Description != "Payment service" || len(grants) != 2 || grants["user:olga"] != "owner" || grants["group:payments-devs"] != "applier" {
		t.Fatalf("project show: %+v", view)
	}

	// State grants add to the project's; access list shows both scopes.
	if _, err := w.admin.CreateState(context.Background(), "payments", "ledger", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, code := olga.run(t, "", "access", "grant", "payments/ledger", "group:qa", "viewer"); code != 0 {
		t.Fatal("state grant failed")
	}
	out, _, code := olga.run(t, "", "access", "list", "payments/ledger")
	if code != 0 || !strings.Contains(out, "payments/ledger  group:qa") || !strings.Contains(out, "payments         group:payments-devs") {
		t.Fatalf("access list of a state: %q", out)
	}

	// Someone without the owner role is told which role and who has it.
	dev := w.as(w.srv.UserToken(t, "dev", "dan", "payments-devs"))
	_, errOut, code := dev.run(t, "", "access", "grant", "payments", "user:dan", "owner")
	if code != 1 || !strings.Contains(errOut, "needs the owner role on project payments") || !strings.Contains(errOut, "it can be done by user:olga") {
		t.Fatalf("grant without owner: %d %q", code, errOut)
	}

	// Bad input is a usage error that names what is wrong.
	if _, errOut, code := olga.run(t, "", "access", "grant", "Payments!", "group:x", "viewer"); code != 2 || !strings.Contains(errOut, `scope "Payments!"`) {
		t.Errorf("bad scope: %d %q", code, errOut)
	}
	if _, errOut, code := olga.run(t, "", "access", "grant", "payments", "team:x", "viewer"); code != 1 || !strings.Contains(errOut, "invalid subject") {
		t.Errorf("bad subject: %d %q", code, errOut)
	}

	// Deleting the project is the owner's; then it is gone.
	if _, errOut, code := dev.run(t, "", "project", "delete", "payments"); code != 1 || !strings.Contains(errOut, "needs the owner role on project payments") {
		t.Errorf("project delete without owner: %d %q", code, errOut)
	}
	// The owner reads who changed access; an applier may not.
	out, errOut, code = olga.run(t, "", "audit", "payments")
	if code != 0 || !strings.Contains(out, "user:olga  grant.delete") || !strings.Contains(out, "payments/ledger  group:qa") || !strings.Contains(out, "project.create") {
		t.Fatalf("audit: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := dev.run(t, "", "audit", "payments"); code != 1 || !strings.Contains(errOut, "access denied") {
		t.Errorf("audit by an applier: %d %q", code, errOut)
	}
	if out, errOut, code := olga.run(t, "", "project", "delete", "payments"); code != 0 || out != "deleted project payments\n" {
		t.Fatalf("project delete: %d %q %q", code, out, errOut)
	}
	if _, err := w.admin.GetProject(context.Background(), "payments"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("project after delete: %v", err)
	}
}

func TestCommands_DeleteStateOrVersionNeedsOwner(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.admin.PutGrant(ctx, "shop", "", "group:shop-devs", client.RoleApplier); err != nil {
		t.Fatal(err)
	}
	if _, err := w.admin.PutGrant(ctx, "shop", "seed", "user:olga", client.RoleOwner); err != nil {
		t.Fatal(err)
	}
	dev := w.as(w.srv.UserToken(t, "dev", "dan", "shop-devs"))
	_, errOut, code := dev.run(t, "", "delete", "shop/seed:v1")
	if code != 1 || !strings.Contains(errOut, "deleting a version of shop/seed needs the owner role on state shop/seed: it can be done by user:olga") {
		t.Fatalf("delete without owner: %d %q", code, errOut)
	}
	_, errOut, code = dev.run(t, "", "delete", "shop/seed")
	if code != 1 || !strings.Contains(errOut, "deleting state shop/seed needs the owner role") {
		t.Fatalf("delete state without owner: %d %q", code, errOut)
	}

	olga := w.as(w.srv.UserToken(t, "laptop", "olga"))
	v1, err := w.admin.GetVersion(ctx, "shop", "seed", "v1")
	if err != nil {
		t.Fatal(err)
	}
	// One version, by digest.
	out, errOut, code := olga.run(t, "", "delete", "shop/seed@"+v1.Digest)
	if code != 0 || out != "deleted shop/seed:v1 ("+shortDigest(v1.Digest)+")\n" {
		t.Fatalf("delete a version: %d %q %q", code, out, errOut)
	}
	if _, err := w.admin.GetVersion(ctx, "shop", "seed", "v1"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("v1 after delete: %v", err)
	}
	if vs, err := w.admin.ListVersions(ctx, "shop", "seed", client.ListVersionsOptions{}); err != nil || len(vs) != 1 {
		t.Fatalf("the candidate must stay: %v %v", vs, err)
	}
	if _, errOut, code := olga.run(t, "", "delete", "shop/seed:nope"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("delete a missing version: %d %q", code, errOut)
	}
	// The whole state.
	var d client.Deleted
	out, _, code = olga.run(t, "", "delete", "shop/seed", "-o", "json")
	if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil || d.State != "seed" || d.Version != nil {
		t.Fatalf("delete the state: %d %v %q", code, err, out)
	}
	if _, err := w.admin.GetState(ctx, "shop", "seed"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("state after delete: %v", err)
	}
}

func TestCommands_TokensSecretShownOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	// The admin makes a CI token; -o json carries the secret for automation.
	var created client.CreatedToken
	out, errOut, code := w.run(t, "", "token", "create", "deploy", "--user", "ci-bot", "--group", "shop-devs", "--ttl", "1h", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); code != 0 || err != nil || !strings.HasPrefix(created.Secret, "uks_") || created.ExpiresAt == nil {
		t.Fatalf("token create -o json: %d %v %q %q", code, err, out, errOut)
	}
	who, err := w.srv.Client(t, created.Secret).Whoami(ctx)
	if err != nil || who.User != "ci-bot" || len(who.Groups) != 1 || who.Groups[0] != "shop-devs" {
		t.Fatalf("the new token: %+v %v", who, err)
	}

	// In a table, stdout holds only the secret (for a pipe), stderr says what it is.
	ci := w.as(created.Secret)
	out, errOut, code = ci.run(t, "", "token", "create", "nightly")
	if code != 0 || !strings.HasPrefix(out, "uks_") || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "created token nightly for user ci-bot") {
		t.Fatalf("token create: %d %q %q", code, out, errOut)
	}
	nightly := strings.TrimSpace(out)

	// Lists never show secrets.
	out, _, code = w.run(t, "", "token", "list", "--user", "ci-bot")
	if code != 0 || !strings.Contains(out, "deploy") || !strings.Contains(out, "nightly") || strings.Contains(out, "uks_") {
		t.Fatalf("token list: %q", out)
	}
	if out, _, _ := w.run(t, "", "token", "list", "-o", "json"); strings.Contains(out, "uks_") {
		t.Fatalf("token list -o json shows a secret: %q", out)
	}

	// Revoking deploy revokes nightly, which it created.
	if out, errOut, code := w.run(t, "", "token", "revoke", "deploy", "--user", "ci-bot"); code != 0 || out != "revoked token deploy\n" {
		t.Fatalf("token revoke: %d %q %q", code, out, errOut)
	}
	for name, secret := range map[string]string{"deploy": created.Secret, "nightly": nightly} {
		if _, err := w.srv.Client(t, secret).Whoami(ctx); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("%s after revoke: %v", name, err)
		}
	}
	out, _, _ = w.run(t, "", "token", "list", "--user", "ci-bot")
	if strings.Count(out, "revoked") != 2 {
		t.Errorf("token list after revoke: %q", out)
	}
	// The name is free again.
	if _, errOut, code := w.run(t, "", "token", "create", "deploy", "--user", "ci-bot"); code != 0 {
		t.Errorf("a new token under a revoked one's name: %q", errOut)
	}
	// The admin's record shows the tokens' lives, never a secret.
	out, _, code = w.run(t, "", "audit")
	if code != 0 || !strings.Contains(out, "token.create") || !strings.Contains(out, "token.revoke") || !strings.Contains(out, "token:ci-bot:deploy") || strings.Contains(out, "uks_") {
		t.Errorf("audit: %q", out)
	}
	// A user may not mint for another user.
	if _, errOut, code := w.as(w.srv.UserToken(t, "x", "dan")).run(t, "", "token", "create", "y", "--user", "olga"); code != 1 || !strings.Contains(errOut, "only for your own user") {
		t.Errorf("token for another user: %d %q", code, errOut)
	}
}
