package commands

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
)

// Exit codes of helm-state.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError is a mistake in how the command was called (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitCode maps an error returned by the root command to the exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailure
}

// args wraps a cobra positional-args check so its error is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &UsageError{Err: fmt.Errorf("%w (see helm state %s --help)", err, cmd.Name())}
		}
		return nil
	}
}

// Explain adds to err what the user of the plugin can do about it: for an
// agent of another version, the flag and variable that choose the image;
// for components the release does not place, the --map flags that do.
func Explain(err error) error {
	var (
		vm       *jobs.VersionMismatchError
		unplaced *discovery.MappingError
		explicit *discovery.ExplicitMappingError
	)
	switch {
	case errors.As(err, &vm):
		return fmt.Errorf("%w\nSet --agent-image (or UNIKUBE_AGENT_IMAGE) to the unikube-agent image of version %s, e.g. %s", err, vm.Client, jobs.AgentImageFor(vm.Client))
	case errors.As(err, &unplaced):
		return fmt.Errorf("%w\n%s", err, mapHint(unplaced))
	case errors.As(err, &explicit):
		return fmt.Errorf("--map %s=%s: %w", explicit.Component, explicit.Target, err)
	}
	return err
}

// mapHint says which --map flags place the components e names.
func mapHint(e *discovery.MappingError) string {
	flags := make([]string, len(e.Unplaced))
	for i, u := range e.Unplaced {
		flags[i] = "--map " + u.Component + "=" + strings.ReplaceAll(u.Target(), " or ", "|")
	}
	return "Pass " + strings.Join(flags, " ")
}
