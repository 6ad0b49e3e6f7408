package commands

// This file belongs to the cluster-scripts work (issue 9), which replaces
// its contents with `helm state script run|list|show|runs|logs`. Keep the
// constructor's name and signature: the root registers newScriptCmd(s).
//
// What a command here can use from *Settings (stable, in this package):
//   - s.Platform() (*client.Client, error): the platform client (endpoint
//     from --endpoint / UNIKUBE_ENDPOINT / login file, token from
//     UNIKUBE_TOKEN / login file); its errors are user-facing already.
//   - s.Kube() (kubernetes.Interface, *rest.Config, error) and
//     s.Namespace(): Helm's kube context and namespace.
//   - s.PlatformURL (platform as pods reach it; "" = the client's endpoint)
//     and s.AgentImage ("" = executor.DefaultAgentImage).
//   - s.Print(v, func(w io.Writer) error): -o table|json|yaml (the table
//     func gets a tabwriter; row(w, cols...) writes one row).
//   - s.Logger() (slog to stderr, debug with --debug/HELM_DEBUG),
//     s.Out/s.Err, s.Context(cmd).
//   - usageErrorf(...) for exit code 2, args(cobra.ExactArgs(n)) for
//     positional checks that exit 2; any other error exits 1.

import "github.com/spf13/cobra"

func newScriptCmd(s *Settings) *cobra.Command {
	_ = s
	return &cobra.Command{
		Use:   "script",
		Short: "Run cluster scripts kept on the platform (not built yet)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("helm state script is not built yet")
		},
	}
}
