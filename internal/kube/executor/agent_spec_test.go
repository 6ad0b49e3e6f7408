package executor

import (
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// A plan only reads its target: the plan-only agent of a volume gets the
// volume read-only, so no bug of the agent or driver can change the data
// while planning; the restore agent gets it writable.
func TestAgentSpec_APlanMountsTheVolumeReadOnly(t *testing.T) {
	o := Options{Namespace: "ns", Release: "r", AgentImage: "agent:1", PlatformURL: "http://p"}
	tg := discovery.Target{Component: "files", Kind: statepkg.Kind("volume"), URL: "file:///data", PVC: "web-data"}
	for _, tc := range []struct {
		planOnly     bool
		wantReadOnly bool
	}{{true, true}, {false, false}} {
		job, _ := jobs.Build(agentSpec(o, tg, "sha256:00", "tok", tc.planOnly))
		found := false
		for _, c := range job.Spec.Template.Spec.Containers {
			for _, m := range c.VolumeMounts {
				if m.MountPath == jobs.DataMountPath {
					found = true
					if m.ReadOnly != tc.wantReadOnly {
						t.Errorf("planOnly=%v: %s mounted read-only=%v, want %v", tc.planOnly, m.MountPath, m.ReadOnly, tc.wantReadOnly)
					}
				}
			}
		}
		if !found {
			t.Fatalf("planOnly=%v: the volume is not mounted at %s", tc.planOnly, jobs.DataMountPath)
		}
	}
}
