package executor

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func podErr(t *testing.T, agentErr string) *jobs.PodError {
	t.Helper()
	b := agentproto.Line{Type: agentproto.TypeError, Error: agentErr, Unchanged: true}.Marshal()
	return &jobs.PodError{Namespace: "dev", Job: "unikube-db-1", Pod: "unikube-db-1-x", Reason: "container agent exited 1",
		LogTail: []string{`{"type":"start"}`, strings.TrimSuffix(string(b), "\n")}, Kept: true}
}

// TestPhraseTargetError_SaysTheCauseOnceAndWhereThePasswordCameFrom
// turns the agent's error into what the user acts on: which Secret and
// key, the server's words once, no repetition of the agent's text.
func TestPhraseTargetError_SaysTheCauseOnceAndWhereThePasswordCameFrom(t *testing.T) {
	tg := discovery.Target{Component: "db", Kind: statepkg.KindPostgres, Workload: quiesce.Workload{Kind: quiesce.StatefulSet, Name: "shop-db"},
		URL: "postgres://postgres@shop-db.dev.svc:5432/app?sslmode=disable", PasswordEnv: "POSTGRES_PASSWORD",
		PasswordRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "shop-db"}, Key: "password"}}
	agent := `plan shop/seed: component "db": connect to shop-db.dev.svc:5432/postgres: failed SASL auth: FATAL: password authentication failed for user "postgres" (SQLSTATE 28P01)`
	err := phraseTargetError(tg, platformURL, podErr(t, agent))
	var ce *CredentialError
	if !errors.As(err, &ce) {
		t.Fatalf("%v: want a *CredentialError", err)
	}
	msg := err.Error()
	want := `postgres at shop-db.dev.svc:5432 refused the password of user postgres (password authentication failed for user "postgres" (SQLSTATE 28P01)); ` +
		`the password comes from Secret shop-db, key password (variable POSTGRES_PASSWORD of StatefulSet/shop-db)`
	if !strings.HasPrefix(msg, want) || strings.Count(msg, "password authentication failed") != 1 || !strings.Contains(msg, "kubectl -n dev logs job/unikube-db-1") {
		t.Errorf("message\n%s\nwant it to start with\n%s\nand name the Job's log once", msg, want)
	}
	var pe *jobs.PodError
	if !errors.As(err, &pe) {
		t.Error("the agent Job's error is not kept")
	}

	lit := tg
	lit.PasswordRef, lit.Password = nil, "x"
	if msg := phraseTargetError(lit, platformURL, podErr(t, "Access denied for user 'root'@'10.0.0.7' (using password: YES)")).Error(); !strings.Contains(msg, "the literal value of variable POSTGRES_PASSWORD of StatefulSet/shop-db") {
		t.Errorf("literal password: %s", msg)
	}

	err = phraseTargetError(tg, platformURL, podErr(t, "connect to shop-db.dev.svc:5999/postgres: dial tcp 10.0.0.7:5999: connect: connection refused"))
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "cannot reach postgres at shop-db.dev.svc:5432 (connection refused)") {
		t.Errorf("closed port: %v", err)
	}

	other := podErr(t, "restore: disk full")
	if got := phraseTargetError(tg, platformURL, other); got != error(other) {
		t.Errorf("another failure was rephrased: %v", got)
	}
}

const platformURL = "http://unikube-platform.unikube.svc:8080"

// The agent failing to reach the platform is not the target being
// unreachable: the user must not be sent to check the database's Service.
func TestPhraseTargetError_ThePlatformUnreachableIsNotTheTarget(t *testing.T) {
	tg := discovery.Target{Component: "db", Kind: statepkg.KindPostgres, Workload: quiesce.Workload{Kind: quiesce.StatefulSet, Name: "shop-db"},
		URL: "postgres://postgres@shop-db.dev.svc:5432/app?sslmode=disable"}
	for _, agent := range []string{
		`manifest of shop/seed@sha256:00: Get "http://unikube-platform.unikube.svc:8080/api/v1/projects/shop/states/seed/versions/sha256:00": dial tcp: lookup unikube-platform.unikube.svc on 10.96.0.10:53: no such host`,
		`manifest of shop/seed@sha256:00: Get "http://unikube-platform.unikube.svc:8080/api/v1/projects/shop/states/seed/versions/sha256:00": dial tcp 10.96.3.4:8080: connect: connection refused`,
	} {
		pe := podErr(t, agent)
		err := phraseTargetError(tg, platformURL, pe)
		var ue *UnreachableError
		if errors.As(err, &ue) {
			t.Errorf("the agent could not reach the platform, but the error blames the target: %v", err)
		}
	}
}

// TestRefusedError_SaysNothingWasChangedOnce: a refusal says so, once.
func TestRefusedError_SaysNothingWasChangedOnce(t *testing.T) {
	for _, inner := range []string{"preflight failed", "plan shop/seed (nothing was changed): bad rule"} {
		msg := (&RefusedError{Err: errors.New(inner)}).Error()
		if strings.Count(msg, Unchanged) != 1 {
			t.Errorf("%q: want %q once", msg, Unchanged)
		}
	}
}
