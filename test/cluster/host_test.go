package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRuncWrapper_RewritesNegativeOOMScoreAdj(t *testing.T) {
	if _, err := exec.LookPath("sed"); err != nil {
		t.Skip("sed not installed")
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"negative on create", `{"process":{"oomScoreAdj":-998,"args":["x"]}}`, `{"process":{"oomScoreAdj":0,"args":["x"]}}`},
		{"positive kept", `{"process":{"oomScoreAdj":1000}}`, `{"process":{"oomScoreAdj":1000}}`},
		{"absent kept", `{"process":{"args":["x"]}}`, `{"process":{"args":["x"]}}`},
	}
	dir := t.TempDir()
	// A stand-in for /usr/sbin/runc, so the test needs no runc.
	wrapper := strings.Replace(runcWrapper, "exec /usr/sbin/runc", "exit 0 #", 1)
	script := filepath.Join(dir, "runc")
	if err := os.WriteFile(script, []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bundle := t.TempDir()
			cfgPath := filepath.Join(bundle, "config.json")
			procPath := filepath.Join(bundle, "process.json")
			for _, p := range []string{cfgPath, procPath} {
				if err := os.WriteFile(p, []byte(tc.in), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{
				{"--root", "/run/x", "create", "--bundle", bundle, "id"},
				{"--root", "/run/x", "exec", "--process", procPath, "--detach", "id"},
			} {
				if out, err := exec.Command(script, args...).CombinedOutput(); err != nil {
					t.Fatalf("wrapper %v: %v %s", args, err, out)
				}
			}
			for _, p := range []string{cfgPath, procPath} {
				b, _ := os.ReadFile(p)
				if string(b) != tc.want {
					t.Errorf("%s = %s, want %s", filepath.Base(p), b, tc.want)
				}
			}
		})
	}
}

func TestUnescapeMount_DecodesOctalEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/var/lib/a`, `/var/lib/a`},
		{`/var/lib/with\040space`, `/var/lib/with space`},
		{`/tab\011x`, "/tab\tx"},
	}
	for _, tc := range tests {
		if got := unescapeMount(tc.in); got != tc.want {
			t.Errorf("unescapeMount(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDefaultConfig_ReadsEnvironment(t *testing.T) {
	t.Setenv("UNIKUBE_K8S_VERSION", "v1.30.9")
	t.Setenv("UNIKUBE_TOOLS_DIR", "/tmp/tools-x")
	t.Setenv("UNIKUBE_CLUSTER_DIR", "/tmp/state-x")
	c := DefaultConfig()
	if c.KubernetesVersion != "v1.30.9" || c.ToolsDir != "/tmp/tools-x" || c.StateDir != "/tmp/state-x" {
		t.Fatalf("DefaultConfig() = %+v", c)
	}
	if got := c.k8sBin("kubelet"); got != "/tmp/tools-x/k8s-v1.30.9/bin/kubelet" {
		t.Errorf("k8sBin = %s", got)
	}
}
