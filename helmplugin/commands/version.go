package commands

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
)

type versionInfo struct {
	buildinfo.Info
	Go string `json:"go"`
}

func newVersionCmd(s *Settings) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin version (its commit and build date too)",
		Long: `Print the plugin's version, the commit it was built from and when.

The agent image the plugin uses by default is the one of its own version
(see --agent-image): the plugin and its agent must be the same version.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Info: buildinfo.Get(), Go: runtime.Version()}
			return s.Print(v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "helm-state %s, %s\n", v.Info, v.Go)
				return err
			})
		},
	}
}
