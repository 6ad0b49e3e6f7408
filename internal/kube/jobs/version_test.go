package jobs

import (
	"errors"
	"strings"
	"testing"
)

func TestAgentImageFor_TagsTheClientsVersion(t *testing.T) {
	for v, want := range map[string]string{
		"v1.2.3":       "ghcr.io/unikubehq/unikube-agent:v1.2.3",
		"dev":          "ghcr.io/unikubehq/unikube-agent:dev",
		"v1.2.3+build": "ghcr.io/unikubehq/unikube-agent:v1.2.3_build",
	} {
		if got := AgentImageFor(v); got != want {
			t.Errorf("AgentImageFor(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestVersionMismatchError_NamesBothVersionsAndTheImageToUse(t *testing.T) {
	pe := &PodError{Job: "unikube-db-1", Reason: "pod failed"}
	err := error(&VersionMismatchError{Image: "registry.example/unikube-agent:v1.0.0", Agent: "v1.0.0", Client: "v1.1.0", Err: pe})
	msg := err.Error()
	for _, want := range []string{"registry.example/unikube-agent:v1.0.0", "is version v1.0.0", "this client is version v1.1.0",
		"ghcr.io/unikubehq/unikube-agent:v1.1.0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	var got *PodError
	if !errors.As(err, &got) || got != pe {
		t.Errorf("the Job's failure is not kept: %v", got)
	}
	silent := (&VersionMismatchError{Image: "old", Client: "v1.1.0"}).Error()
	if !strings.Contains(silent, "reports no version") {
		t.Errorf("an agent without a hello line: %q", silent)
	}
}

func TestBuild_TellsTheAgentItsClientsVersion(t *testing.T) {
	job, _ := Build(Spec{Namespace: "ns", Component: "db", AgentImage: "a:v1", ClientVersion: "v1.1.0"})
	found := false
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		if e.Name == EnvClientVersion && e.Value == "v1.1.0" {
			found = true
		}
	}
	if !found {
		t.Fatalf("agent env %v lacks %s=v1.1.0", job.Spec.Template.Spec.Containers[0].Env, EnvClientVersion)
	}
	job, _ = Build(Spec{Namespace: "ns", Component: "db", AgentImage: "a:v1"})
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		if e.Name == EnvClientVersion {
			t.Fatalf("a Job without a client version sets %s", EnvClientVersion)
		}
	}
}
