package main

import (
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/platformtest"
)

// TestAgent_ReportsItsVersionFirstAndRefusesAClientOfAnother: every data
// command starts with a hello line naming the agent's version; a client of
// another version is refused before the agent reads the platform or the
// target (the error line says unchanged), one of the same version is
// served.
func TestAgent_ReportsItsVersionFirstAndRefusesAClientOfAnother(t *testing.T) {
	plat := platformtest.Start(t)
	self := buildinfo.Get().Version
	args := []string{"restore", "--platform", plat.URL, "--state", "shop/seed", "--component", "db", "--version", "v1", "--target", "file:///tmp/x"}
	for _, cmd := range []string{"restore", "capture", "fetch"} {
		t.Run(cmd, func(t *testing.T) {
			a := append([]string{cmd}, args[1:]...)
			lines, code, stderr := agent(t, []string{agentproto.EnvClientVersion + "=v9.9.9", "UNIKUBE_TOKEN=uks_secret"}, a...)
			if code != 1 || len(lines) != 2 {
				t.Fatalf("exit %d, lines %+v, stderr %s; want exit 1 with a hello and an error line", code, lines, stderr)
			}
			if lines[0].Type != "hello" || lines[0].Agent == nil || lines[0].Agent.Version != self {
				t.Fatalf("first line %+v, want hello with version %s", lines[0], self)
			}
			last := lines[1]
			if last.Type != "error" || !last.Unchanged || !strings.Contains(last.Error, "this agent is version "+self+" but its client is version v9.9.9") ||
				!strings.Contains(last.Error, "agent image tagged v9.9.9") {
				t.Fatalf("error line %+v, want an unchanged refusal naming both versions", last)
			}
		})
	}
	t.Run("same version", func(t *testing.T) {
		// Served: it goes on to the platform (and fails there on the token).
		lines, code, _ := agent(t, []string{agentproto.EnvClientVersion + "=" + self, "UNIKUBE_TOKEN=uks_secret"}, args...)
		if code != 1 || len(lines) < 2 || lines[0].Type != "hello" || !strings.Contains(lines[len(lines)-1].Error, "manifest of shop/seed@v1") {
			t.Fatalf("exit %d, lines %+v; want the hello, then the platform's refusal of the token", code, lines)
		}
	})
}
