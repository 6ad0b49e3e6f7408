// Command helm-state-docs writes manual/helm-plugin.md, the command
// reference of `helm state`, from the cobra command tree:
//
//	go run ./helmplugin/cmd/helm-state-docs > manual/helm-plugin.md
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/unikubehq/terraform-provider-unikube/helmplugin/commands"
)

const intro = `# helm state — command reference

The Helm plugin of Unikube State (generated from the command tree by
` + "`go run ./helmplugin/cmd/helm-state-docs`" + `; do not edit by hand).

Install (Helm 3 and Helm 4, from a release archive or the git repository, no Go needed) and shell
completion: [helm-plugin-install.md](helm-plugin-install.md).

Environment: Helm's own (` + "`HELM_NAMESPACE`, `HELM_KUBECONTEXT`, `HELM_KUBEAPISERVER`, `KUBECONFIG`, `HELM_DEBUG`" + `;
flags ` + "`--namespace`, `--kube-context`, `--kubeconfig`, `--debug`" + `), and the platform's:
` + "`UNIKUBE_ENDPOINT`, `UNIKUBE_TOKEN`" + ` or the login file written by ` + "`helm state login`" + `
(` + "`$HELM_CONFIG_HOME/state/login.json`" + `, mode 0600; ` + "`UNIKUBE_CONFIG`" + ` overrides the path).
The login's token is sent only to the login's endpoint: an ` + "`--endpoint` or `UNIKUBE_ENDPOINT`" + ` naming another
platform needs its own login or ` + "`UNIKUBE_TOKEN`" + `.
` + "`UNIKUBE_CLUSTER_ENDPOINT`" + ` is the platform as pods reach it, ` + "`UNIKUBE_AGENT_IMAGE`" + ` the agent image
(default ` + "`ghcr.io/unikubehq/unikube-agent:<plugin version>`" + `: plugin and agent must be the same version, see
[platform.md](platform.md#versions)),
` + "`UNIKUBE_UPLOAD_TOKEN`" + ` the token capture Jobs upload with (default: a short-lived upload token that may only upload to and commit versions of the one state, revoked afterwards).

A platform whose TLS certificate a private CA signed: ` + "`--ca-file PATH`" + ` or ` + "`UNIKUBE_CA_FILE`" + ` (the CA's PEM
certificate, trusted besides the system's roots; verification is never turned off). Agent Jobs get the
same bundle from a ConfigMap ` + "`unikube-ca-<hash>`" + ` the command creates in the namespace, or from the ConfigMap
` + "`--ca-configmap NAME`" + ` / ` + "`UNIKUBE_CA_CONFIGMAP`" + ` names (key ` + "`ca.crt`" + `). For ` + "`helm state install|upgrade`" + ` set
` + "`UNIKUBE_CA_FILE`" + `: after ` + "`install`" + `, ` + "`--ca-file`" + ` is Helm's own flag (a chart repository's CA); the seed Jobs
get the bundle from a ConfigMap ` + "`<release>-unikube-ca`" + ` of the release.

Exit codes: 0 success, 1 failure, 2 usage error.

`

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	root := commands.NewRoot(strings.NewReader(""), io.Discard, io.Discard)
	root.DisableAutoGenTag = true
	fmt.Fprint(w, intro)
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if c.Hidden || c.Name() == "help" {
			return nil
		}
		c.DisableAutoGenTag = true
		if c != root {
			var b bytes.Buffer
			if err := doc.GenMarkdownCustom(c, &b, func(s string) string { return "#" + strings.TrimSuffix(s, ".md") }); err != nil {
				return err
			}
			// One file: drop the per-command "SEE ALSO" blocks.
			text, _, _ := strings.Cut(b.String(), "### SEE ALSO")
			text = strings.ReplaceAll(text, "## state ", "## helm state ")
			text = strings.ReplaceAll(text, "```\nstate ", "```\nhelm state ")
			fmt.Fprintln(w, strings.TrimSpace(text))
			fmt.Fprintln(w)
		}
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}
