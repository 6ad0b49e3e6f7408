// Command terraform-provider-unikube is the Terraform provider for Unikube
// State: named states, state applies and cluster scripts kept on a Unikube
// platform server.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/provider"
)

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "set to true to run the provider with support for debuggers like delve")
	flag.Parse()

	opts := providerserver.ServeOpts{
		Address: "registry.terraform.io/unikubehq/unikube",
		Debug:   debug,
	}
	if err := providerserver.Serve(context.Background(), provider.New(buildinfo.Get().Version), opts); err != nil {
		log.Fatal(err.Error())
	}
}
