// Command quickstart runs the README's quickstart (see package quickstart):
//
//	quickstart up     build, start the platform, find or start a cluster,
//	                  install the plugin and the shop chart, seed it with
//	                  terraform, show what landed
//	quickstart down   undo all of it
//
// Environment: KUBECONFIG (a reachable cluster is used, otherwise the local
// one is started), QUICKSTART_DIR (default .quickstart), QUICKSTART_NAMESPACE,
// QUICKSTART_RELEASE, QUICKSTART_PORT (default 18080, or the next free one when another
// checkout holds it), QUICKSTART_PLATFORM_URL_IN_CLUSTER, QUICKSTART_AGENT_IMAGE,
// QUICKSTART_KEEP_CLUSTER=1 (down leaves the cluster running).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/unikubehq/terraform-provider-unikube/test/quickstart"
)

func main() {
	os.Exit(run())
}

func run() int {
	if len(os.Args) != 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: quickstart up|down")
		return 2
	}
	cfg, err := quickstart.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Args[1] == "down" {
		err = quickstart.Down(ctx, cfg)
	} else {
		_, err = quickstart.Up(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "\nquickstart", os.Args[1]+":", err)
		return 1
	}
	return 0
}
