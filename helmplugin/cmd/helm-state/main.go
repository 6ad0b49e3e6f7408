// Command helm-state is the binary of the `helm state` Helm plugin.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	// Exec/OIDC/GCP auth plugins of kubeconfigs.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"github.com/unikubehq/terraform-provider-unikube/helmplugin/commands"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := commands.NewRoot(os.Stdin, os.Stdout, os.Stderr)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error: "+commands.Explain(err).Error())
	}
	os.Exit(commands.ExitCode(err))
}
