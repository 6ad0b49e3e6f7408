// Package commands is the `helm state` plugin's command tree (cobra). Each
// command translates flags into calls of internal/ (platform client,
// Kubernetes executor, records) and prints the result.
package commands

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"helm.sh/helm/v4/pkg/cli"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
)

// NewRoot builds the command tree. getenv is os.Getenv in the binary.
func NewRoot(in io.Reader, out, errOut io.Writer) *cobra.Command {
	s := &Settings{Helm: cli.New(), In: in, Out: out, Err: errOut, Getenv: os.Getenv}
	if f, ok := errOut.(*os.File); ok {
		s.errTTY = isatty.IsTerminal(f.Fd()) && os.Getenv("TERM") != "dumb"
	}
	root := &cobra.Command{
		Use: "state",
		// Usage lines, completion and docs say "helm state ...".
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "helm state"},
		Short:       "Apply, capture and roll back data states of Helm releases",
		Long: `helm state applies a named state (PostgreSQL, MySQL, Redis, volumes) of the
Unikube State platform to the services of a Helm release, captures new
versions from a release, and keeps a history of applies per release.

References: project/state (= :@latest), project/state:TAG, project/state:@candidate,
project/state@sha256:<hex>.

The platform is found through --endpoint, UNIKUBE_ENDPOINT/UNIKUBE_TOKEN (or an
OIDC token to exchange in UNIKUBE_OIDC_TOKEN or UNIKUBE_OIDC_TOKEN_FILE) or the
login file written by "helm state login" (a token, or single sign-on with --sso).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return validOutput(s.Output)
		},
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &UsageError{Err: err}
	})
	pf := root.PersistentFlags()
	s.Helm.AddFlags(pf)
	pf.StringVarP(&s.Output, "output", "o", OutputTable, "output format: table, json or yaml")
	pf.StringVar(&s.Endpoint, "endpoint", "", "platform URL (default: UNIKUBE_ENDPOINT or the login)")
	pf.StringVar(&s.PlatformURL, "platform-url", os.Getenv("UNIKUBE_CLUSTER_ENDPOINT"), "platform URL as pods in the cluster reach it (default: the endpoint; env UNIKUBE_CLUSTER_ENDPOINT)")
	pf.StringVar(&s.AgentImage, "agent-image", os.Getenv("UNIKUBE_AGENT_IMAGE"), "agent image for the in-cluster Jobs (env UNIKUBE_AGENT_IMAGE; default "+executor.DefaultAgentRepository+"/unikube-agent:<this plugin's version>, which the agent must match)")
	pf.StringVar(&s.CAFile, "ca-file", os.Getenv("UNIKUBE_CA_FILE"), "PEM file of a private CA that signed the platform's certificate, trusted besides the system's; agent Jobs get it too (env UNIKUBE_CA_FILE)")
	pf.StringVar(&s.CAConfigMap, "ca-configmap", os.Getenv("UNIKUBE_CA_CONFIGMAP"), "ConfigMap in the namespace whose key ca.crt the agent Jobs trust instead of the --ca-file bundle (env UNIKUBE_CA_CONFIGMAP)")

	root.AddCommand(
		newVersionCmd(s),
		newScriptCmd(s),
	)
	for _, add := range extraCommands {
		root.AddCommand(add(s))
	}
	// helm state <TAB>: Helm runs plugin.complete, which asks this tree;
	// a completion script of our own would complete a command "state"
	// that no shell runs (helm completion covers plugins).
	root.CompletionOptions.DisableDefaultCmd = true
	addCompletions(root, s)
	// Unknown subcommands are usage errors too.
	root.Args = args(cobra.NoArgs)
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return root
}

// extraCommands are the data commands (apply, capture, ...), registered
// from their own files.
var extraCommands = []func(*Settings) *cobra.Command{
	newApplyCmd, newHistoryCmd, newRollbackCmd, newCaptureCmd, newDiffCmd, newInstallCmd, newUpgradeCmd, newPostRenderCmd,
	newLoginCmd, newListCmd, newShowCmd, newVersionsCmd, newPromoteCmd, newRetagCmd, newPruneCmd,
	newDeleteCmd, newProjectCmd, newAccessCmd, newTokenCmd, newAuditCmd,
}
