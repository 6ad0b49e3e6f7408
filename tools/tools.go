//go:build generate

// Package tools pins the documentation generator in its own module, so its
// dependencies never enter the provider's go.mod.
package tools

import (
	// Documentation generation.
	_ "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs"
)

// Format the Terraform examples the docs embed.
//go:generate terraform fmt -recursive ../examples/

// Generate docs/ (index, resources, data sources) from the provider schema,
// templates/ and examples/.
//go:generate go run github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs generate --provider-dir .. --provider-name unikube --rendered-website-dir docs
