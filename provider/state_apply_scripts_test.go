package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

// diagRecorder serves the provider and keeps the text of every diagnostic
// an apply returned: what Terraform shows the user. ExpectError can only
// say what a diagnostic contains; the recorder lets a test say what it
// must not contain (a secret).
type diagRecorder struct {
	mu    sync.Mutex
	diags []string
}

func (d *diagRecorder) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"unikube": func() (tfprotov6.ProviderServer, error) {
			srv, err := providerserver.NewProtocol6WithError(New("test")())()
			if err != nil {
				return nil, err
			}
			return recordingServer{ProviderServer: srv, rec: d}, nil
		},
	}
}

// text is every recorded diagnostic so far.
func (d *diagRecorder) text() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.diags, "\n---\n")
}

type recordingServer struct {
	tfprotov6.ProviderServer
	rec *diagRecorder
}

func (s recordingServer) ApplyResourceChange(ctx context.Context, req *tfprotov6.ApplyResourceChangeRequest) (*tfprotov6.ApplyResourceChangeResponse, error) {
	resp, err := s.ProviderServer.ApplyResourceChange(ctx, req)
	if resp != nil {
		s.rec.mu.Lock()
		for _, dg := range resp.Diagnostics {
			s.rec.diags = append(s.rec.diags, dg.Summary+"\n"+dg.Detail)
		}
		s.rec.mu.Unlock()
	}
	return resp, err
}

// seedUsersPy fails in a nested call for a user name with a digit, with
// an exception that quotes the sensitive API_TOKEN (as careless code does);
// it succeeds for names of letters only.
const seedUsersPy = `import os


def create_user(name, token):
    if not name.isalpha():
        raise ValueError("invalid user name %r for token %s" % (name, token))
    print("created", name, "with a token of", len(token), "characters")


def main():
    token = os.environ["API_TOKEN"]
    for name in os.environ["USERS"].split(","):
        create_user(name, token)


main()
`

// reindexBash fails on line 3, inside a function called on line 5.
const reindexBash = `echo "reindexing $INDEX"
reindex() {
  grep -q ready /unikube/no-such-dir/status
}
reindex
echo "never reached"
`

func scriptApplyConfig(dir, ns, release, scripts string) string {
	return fmt.Sprintf(`
resource "unikube_named_state" "files" {
  project             = "shop"
  name                = "files"
  deletion_protection = false

  component {
    name = "files"
    kind = "volume"
    source {
      path = %[1]q
    }
  }
}

resource "unikube_state_apply" "dev" {
  state = "shop/files@${unikube_named_state.files.version_digest}"

  kubernetes {
    namespace = %[2]q
    release   = %[3]q
  }
%[4]s
}
`, dir, ns, release, scripts)
}

// TestAccStateApply_ScriptFailuresFailTheApplyWithTheTrace runs
// unikube_state_apply with cluster scripts through the real terraform CLI
// against the local cluster: a python pre_script that raises fails the apply
// with its traceback and nothing is applied; a bash post_script that fails
// fails the apply with the failing line and command after the state was
// applied; a passing pre_script lets the apply through. The sensitive
// variable's value is in no diagnostic and not in the state.
func TestAccStateApply_ScriptFailuresFailTheApplyWithTheTrace(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 to run it against a real platform, terraform CLI and cluster")
	}
	start := time.Now()
	t.Cleanup(func() { t.Logf("script acceptance test took %s", time.Since(start).Round(time.Second)) })
	env := cluster.Require(t)
	admin := accKubePlatform(t, env)
	ns := env.Namespace(t)
	const release = "scripts"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The app: one Deployment of the release with the volume the state
	// fills.
	clusterfixture.CreatePVC(ctx, t, env, ns, "files")
	web := clusterfixture.Busybox(env, "while true; do sleep 1; done")
	web.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "files", MountPath: "/srv"}}
	web.Volumes = []corev1.Volume{{Name: "files", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "files"}}}}
	clusterfixture.CreateDeployment(ctx, t, env, ns, "web", map[string]string{"app.kubernetes.io/instance": release}, web)
	clusterfixture.WaitReady(ctx, t, env, ns, "app=web", 1)

	for name, spec := range map[string]client.ScriptSpec{
		"seed-users": {Interpreter: "python", Image: env.Image("python"), Body: seedUsersPy, Variables: []client.Variable{
			{Name: "API_TOKEN", Required: true, Sensitive: true}, {Name: "USERS", Required: true}}},
		"reindex": {Interpreter: "bash", Image: env.Image("python"), Body: reindexBash, Variables: []client.Variable{
			{Name: "INDEX", Default: "products"}}},
	} {
		if _, err := admin.PutScript(ctx, testProject, name, spec); err != nil {
			t.Fatalf("put script %s: %v", name, err)
		}
	}
	const token = "tok-acc-4711-do-not-show"
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "index.html"), "<h1>shop</h1>\n")
	seedUsers := func(users string) string {
		return fmt.Sprintf(`
  pre_script {
    script    = "shop/seed-users"
    variables = { API_TOKEN = %q, USERS = %q }
  }`, token, users)
	}
	const reindex = `
  post_script {
    script  = "shop/reindex"
    timeout = "5m"
  }`
	rec := &diagRecorder{}
	noRecord := func() {
		r, err := records.Last(context.Background(), env.Client, ns, release, "")
		if err != nil {
			t.Fatalf("records: %v", err)
		}
		if r != nil {
			t.Errorf("the failed pre_script let the state through: record %+v", r)
		}
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: rec.factories(),
		TerraformVersionChecks:   writeOnlyArguments,
		Steps: []resource.TestStep{
			{
				// The python pre_script raises: the apply fails with the
				// traceback, exception last, and nothing was applied.
				Config: scriptApplyConfig(dir, ns, release, seedUsers("ann,b0b")),
				ExpectError: inOrder("pre script shop/seed-users failed",
					"The script failed in namespace "+ns+": exited 1.",
					"Traceback (most recent call last):",
					`File "/unikube/script/seed-users.py", line 16, in <module>`,
					"line 13, in main",
					"line 6, in create_user",
					"ValueError: invalid user name 'b0b' for token (sensitive)",
					"The state was not applied.",
					"kubectl -n "+ns+" logs job/script-seed-users-",
					"helm state script logs shop/seed-users "),
			},
			{
				PreConfig: noRecord,
				// The bash post_script fails: the apply fails with the
				// failing line, command and call stack; the state is in.
				Config: scriptApplyConfig(dir, ns, release, reindex),
				ExpectError: inOrder("post script shop/reindex failed",
					"The script failed in namespace "+ns+": exited 2.",
					"grep: /unikube/no-such-dir/status: No such file or directory",
					"reindex.bash line 3: command grep -q ready /unikube/no-such-dir/status exited 2",
					"in reindex, called at reindex.bash line 5",
					"The state was applied; run terraform apply again to retry the script."),
			},
			{
				PreConfig: func() {
					if err := checkApplied(env, ns, release, 1)(nil); err != nil {
						t.Errorf("after the failed post_script the state should be applied: %v", err)
					}
				},
				// A pre_script that passes lets the apply through.
				Config: scriptApplyConfig(dir, ns, release, seedUsers("ann,bob")),
				Check: resource.ComposeAggregateTestCheckFunc(
					checkNoSecretInState(token),
					func(*terraform.State) error {
						if strings.Contains(rec.text(), token) {
							return fmt.Errorf("a diagnostic holds the sensitive variable's value:\n%s", rec.text())
						}
						return nil
					},
					checkScriptRuns(admin, "seed-users", token, client.RunFailed, client.RunSucceeded),
					checkScriptRuns(admin, "reindex", token, client.RunFailed),
				),
			},
		},
	})
	if !strings.Contains(rec.text(), "Traceback (most recent call last):") || !strings.Contains(rec.text(), "reindex.bash line 3") {
		t.Errorf("recorded diagnostics lack the traces:\n%s", rec.text())
	}
	t.Logf("diagnostics as the user sees them:\n%s", rec.text())
	// Succeeded script Jobs are removed; failed ones are kept for
	// inspection.
	jobs, err := env.Client.BatchV1().Jobs(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: scriptrun.LabelManagedBy + "=" + scriptrun.ManagedBy + ",unikube.dev/phase"})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 2 {
		t.Errorf("%d script jobs left, want the 2 failed ones", len(jobs.Items))
	}
}

// inOrder matches a diagnostic holding parts in that order. Terraform
// wraps a diagnostic's lines at spaces, so any space may be a line break.
func inOrder(parts ...string) *regexp.Regexp {
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = strings.ReplaceAll(regexp.QuoteMeta(p), " ", `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(q, ".*"))
}

// checkScriptRuns checks the statuses of a script's runs on the platform,
// oldest first, and that no run records secret.
func checkScriptRuns(admin *client.Client, script, secret string, want ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		runs, err := admin.ListRuns(context.Background(), testProject, script, 10)
		if err != nil {
			return err
		}
		var got []string
		for i := len(runs) - 1; i >= 0; i-- {
			got = append(got, runs[i].Status)
			if b, _ := json.Marshal(runs[i]); strings.Contains(string(b), secret) {
				return fmt.Errorf("run %s of %s records the sensitive value", runs[i].ID, script)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("runs of %s: %v, want %v", script, got, want)
		}
		return nil
	}
}
