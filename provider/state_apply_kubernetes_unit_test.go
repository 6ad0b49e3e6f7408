package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestConnection_BlockOverridesTheProviderDefaultAsAWhole(t *testing.T) {
	def := KubernetesConfig{ConfigPath: "/etc/kube/default", ConfigContext: "ci"}
	direct := KubernetesConfig{Host: "https://k8s:6443", Token: "provider-token", ClusterCACertificate: "PEM"}
	cases := []struct {
		name  string
		block kubernetesTargetModel
		def   KubernetesConfig
		check func(t *testing.T, host, token, kubeconfig, context string)
	}{
		{"provider default", kubernetesTargetModel{}, def, func(t *testing.T, host, token, kc, ctx string) {
			if kc != "/etc/kube/default" || ctx != "ci" || host != "" {
				t.Errorf("got %q %q %q", host, kc, ctx)
			}
		}},
		{"provider direct", kubernetesTargetModel{}, direct, func(t *testing.T, host, token, kc, ctx string) {
			if host != "https://k8s:6443" || token != "provider-token" || kc != "" {
				t.Errorf("got %q %q %q", host, token, kc)
			}
		}},
		{"block context keeps the default kubeconfig", kubernetesTargetModel{ConfigContext: types.StringValue("dev")}, def,
			func(t *testing.T, host, token, kc, ctx string) {
				if kc != "/etc/kube/default" || ctx != "dev" {
					t.Errorf("got %q %q", kc, ctx)
				}
			}},
		{"block host never takes the provider's token", kubernetesTargetModel{Host: types.StringValue("https://other:6443")}, direct,
			func(t *testing.T, host, token, kc, ctx string) {
				if host != "https://other:6443" || token != "" {
					t.Errorf("got %q %q", host, token)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := connection(tc.block, tc.def)
			tc.check(t, c.Host, c.Token, c.Kubeconfig, c.Context)
		})
	}
}
