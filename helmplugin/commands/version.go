package commands

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
)

type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
}

func newVersionCmd(s *Settings) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin version",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Version: Version, Go: runtime.Version()}
			return s.Print(v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "helm-state %s (%s)\n", v.Version, v.Go)
				return err
			})
		},
	}
}
