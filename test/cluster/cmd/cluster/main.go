// Command cluster starts and stops the project's local single-node
// Kubernetes (see test/cluster/README.md).
//
//	cluster up       build what is missing, start, wait until ready
//	cluster down     stop everything up started and remove its traces
//	cluster status   show each component and the node
//	cluster build    only build etcd, Kubernetes and CoreDNS into the tools dir (a CI cache step)
//	cluster images   build the image tars (and push them to the cluster's registry when it runs)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg := cluster.DefaultConfig()
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.StringVar(&cfg.KubernetesVersion, "kubernetes-version", cfg.KubernetesVersion, "Kubernetes version to build and run (env UNIKUBE_K8S_VERSION)")
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "where the running cluster keeps its state (env UNIKUBE_CLUSTER_DIR)")
	fs.StringVar(&cfg.ToolsDir, "tools-dir", cfg.ToolsDir, "cache of built binaries and image tars (env UNIKUBE_TOOLS_DIR)")
	verbose := fs.Bool("v", false, "debug logging")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: cluster [flags] up|down|status|build|images [image...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch fs.Arg(0) {
	case "up":
		info, err := cluster.Up(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster up:", err)
			return 1
		}
		state := "started"
		if info.Reused {
			state = "already running"
		}
		fmt.Printf("Kubernetes %s %s in %s, API server %s\nkubeconfig: %s\nexport KUBECONFIG=%s\n",
			info.Version, state, info.Took.Round(100_000_000), info.Server, info.Kubeconfig, info.Kubeconfig)
	case "down":
		// Wait a while for test processes still using the cluster, then go ahead.
		lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		if os.Geteuid() == 0 {
			if unlock, err := cluster.LockExclusive(lctx, cfg); err != nil {
				cfg.Log.Warn("test processes still use the cluster; stopping it anyway", "err", err)
			} else {
				defer unlock()
			}
		}
		cancel()
		if err := cluster.Down(ctx, cfg); err != nil {
			fmt.Fprintln(os.Stderr, "cluster down:", err)
			return 1
		}
		fmt.Println("cluster stopped and cleaned up")
	case "status":
		s, err := cluster.Status(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster status:", err)
			return 1
		}
		fmt.Print(s)
	case "build":
		start := time.Now()
		if err := cluster.EnsureBinaries(ctx, cfg); err != nil {
			fmt.Fprintln(os.Stderr, "cluster build:", err)
			return 1
		}
		fmt.Printf("etcd %s, Kubernetes %s and CoreDNS %s built in %s\n", cfg.EtcdVersion, cfg.KubernetesVersion, cfg.CoreDNSVersion, time.Since(start).Round(time.Second))
	case "images":
		imgs, reg, err := cluster.PushImages(ctx, cfg, fs.Args()[1:]...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster images:", err)
			return 1
		}
		for _, img := range imgs {
			ref := img.Ref
			if reg != nil {
				ref = reg.Ref(img.Repo)
			}
			fmt.Printf("%-40s %s\n", ref, img.Tar)
		}
	default:
		fs.Usage()
		return 2
	}
	return 0
}
