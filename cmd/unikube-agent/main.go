// Command unikube-agent is the in-cluster data mover. This placeholder only
// prints its version; the Kubernetes executor issue replaces it.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sleep" {
		// Lets a test keep an agent pod running without a shell in the image.
		select {}
	}
	fmt.Println("unikube-agent", version)
}
