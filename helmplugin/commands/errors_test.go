package commands

import (
	"fmt"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
)

// TestExplain_AgentOfAnotherVersionNamesTheFlagAndTheVariable: the core
// error names both versions; the plugin adds how its user picks the image.
func TestExplain_AgentOfAnotherVersionNamesTheFlagAndTheVariable(t *testing.T) {
	err := fmt.Errorf("apply shop/seed:v1 to ns: component db: %w", &jobs.VersionMismatchError{Image: "ghcr.io/unikubehq/unikube-agent:v1.0.0", Agent: "v1.0.0", Client: "v1.1.0"})
	msg := Explain(err).Error()
	for _, want := range []string{"is version v1.0.0", "this client is version v1.1.0", "--agent-image", "UNIKUBE_AGENT_IMAGE", "ghcr.io/unikubehq/unikube-agent:v1.1.0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	other := fmt.Errorf("something else")
	if Explain(other) != other || Explain(nil) != nil {
		t.Error("Explain changed an error that is not a version mismatch")
	}
}
