package jobs

import (
	"context"

	"errors"
	"fmt"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
)

// DefaultAgentRepository is where the project publishes its images: the
// default agent image of a client of version V is
// DefaultAgentRepository/unikube-agent:V.
const DefaultAgentRepository = "ghcr.io/unikubehq"

// AgentImageFor is the published agent image of version v:
// ghcr.io/unikubehq/unikube-agent:v1.2.3 (":dev" for a development build,
// which is not published: such a build must be told its agent image).
func AgentImageFor(v string) string {
	// A tag allows [A-Za-z0-9_.-]; "+" (semver build metadata) is not
	// among them, and Helm's charts replace it by "_" the same way.
	return DefaultAgentRepository + "/unikube-agent:" + strings.ReplaceAll(v, "+", "_")
}

// VersionMismatchError is an agent that reported another version than its
// client's (or none): the two do not work together. The agent refuses on
// its own side too, before it reads or changes anything.
type VersionMismatchError struct {
	Image  string // the agent image the Job ran
	Agent  string // the version it reported; "" if it reported none
	Client string
	// Err is the failure of the Job (its log tail), when it failed.
	Err error
}

func (e *VersionMismatchError) Error() string {
	agent := "reports no version (it is older than this client)"
	if e.Agent != "" {
		agent = "is version " + e.Agent
	}
	return fmt.Sprintf("the agent (image %s) %s, but this client is version %s: client and agent must be the same version; "+
		"use the agent image of version %s (%s, or that tag in your own registry)", e.Image, agent, e.Client, e.Client, AgentImageFor(e.Client))
}

func (e *VersionMismatchError) Unwrap() error { return e.Err }

// checkAgent compares the version the agent of a finished Job reported
// with the client's: on its first log line, which Run saw while following
// the log or reads now. runErr is the Job's failure, if any. It returns a
// *VersionMismatchError, or nil when the versions match or the log cannot
// tell (then runErr stands).
func checkAgent(ctx context.Context, cs kubernetes.Interface, ns string, s Spec, res *Result, runErr error) error {
	agent := res.AgentVersion
	if agent == "" {
		pod := res.Pod
		var pe *PodError
		if pod == "" && errors.As(runErr, &pe) {
			pod = pe.Pod
		}
		if pod == "" {
			return nil // no pod ran: nothing was said, nothing was done
		}
		head, err := logHead(context.WithoutCancel(ctx), cs, ns, pod)
		if err != nil {
			// The log is gone or unreadable: the Job's own outcome stands
			// (the agent still refused a client of another version).
			return nil //nolint:nilerr // not knowing is not a mismatch
		}
		if len(head) == 0 || head[0] == "" {
			return nil
		}
		if l, err := agentproto.Parse([]byte(head[0])); err == nil && l.Type == agentproto.TypeHello && l.Agent != nil {
			agent = l.Agent.Version
		}
		res.AgentVersion = agent
	}
	if buildinfo.Match(s.ClientVersion, agent) {
		return nil
	}
	img := s.AgentImage
	return &VersionMismatchError{Image: img, Agent: agent, Client: s.ClientVersion, Err: runErr}
}
