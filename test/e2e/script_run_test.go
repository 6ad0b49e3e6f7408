package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/helmplugin/commands"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// scriptEnv is one script test's world: the cluster, a namespace, the real
// platform on the node address (pods reach it) with a project "scripts".
type scriptEnv struct {
	env *cluster.Env
	ns  string
	url string
	cl  *client.Client
}

func newScriptEnv(ctx context.Context, t *testing.T) scriptEnv {
	t.Helper()
	env := cluster.Require(t)
	url, cl := exPlatform(t, env)
	if _, err := cl.CreateProject(ctx, "scripts", "cluster script tests"); err != nil {
		t.Fatal(err)
	}
	return scriptEnv{env: env, ns: env.Namespace(t), url: url, cl: cl}
}

func (s scriptEnv) put(ctx context.Context, t *testing.T, name string, spec client.ScriptSpec) {
	t.Helper()
	if _, err := s.cl.PutScript(ctx, "scripts", name, spec); err != nil {
		t.Fatalf("put script %s: %v", name, err)
	}
}

func (s scriptEnv) secret(ctx context.Context, t *testing.T, name string, data map[string]string) {
	t.Helper()
	if _, err := s.env.Client.CoreV1().Secrets(s.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name},
		StringData: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// helm runs `helm state ARGS` in process (the plugin's real command tree)
// against the test cluster and platform; it returns stdout, stderr and
// the exit code main would return.
func (s scriptEnv) helm(ctx context.Context, t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	t.Setenv(client.EnvEndpoint, s.url)
	t.Setenv(client.EnvToken, exAdminToken)
	t.Setenv("UNIKUBE_CONFIG", filepath.Join(t.TempDir(), "login.json"))
	var out, errb bytes.Buffer
	root := commands.NewRoot(strings.NewReader(""), &out, &errb)
	root.SetArgs(append(args, "--kubeconfig", s.env.Kubeconfig, "--namespace", s.ns))
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(&errb, "Error: "+err.Error())
	}
	return out.String(), errb.String(), commands.ExitCode(err)
}

func (s scriptEnv) onlyRun(ctx context.Context, t *testing.T, script string) client.Run {
	t.Helper()
	runs, err := s.cl.ListRuns(ctx, "scripts", script, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("script %s has %d runs, want 1: %+v", script, len(runs), runs)
	}
	return runs[0]
}

// managedObjects lists what the runner made in the namespace.
func (s scriptEnv) managedObjects(ctx context.Context, t *testing.T) []string {
	t.Helper()
	sel := metav1.ListOptions{LabelSelector: scriptrun.LabelManagedBy + "=" + scriptrun.ManagedBy}
	var out []string
	cms, err := s.env.Client.CoreV1().ConfigMaps(s.ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cms.Items {
		out = append(out, "configmap/"+o.Name)
	}
	secs, err := s.env.Client.CoreV1().Secrets(s.ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range secs.Items {
		out = append(out, "secret/"+o.Name)
	}
	jobs, err := s.env.Client.BatchV1().Jobs(s.ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range jobs.Items {
		out = append(out, "job/"+o.Name)
	}
	return out
}

// nodeListener listens on the node's address, which pods reach.
func nodeListener(ctx context.Context, t *testing.T, env *cluster.Env) net.Listener {
	t.Helper()
	nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("nodes: %v", err)
	}
	var ip string
	for _, a := range nodes.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ip = a.Address
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func serveHTTP(t *testing.T, ln net.Listener, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func example(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScript_BashWithCredentialsAndVariablesRunsAndIsRecorded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newScriptEnv(ctx, t)
	s.secret(ctx, t, "api-creds", map[string]string{"api-token": "tok-123", "unused": "x"})
	s.put(ctx, t, "hello", client.ScriptSpec{Interpreter: "bash", Image: s.env.Image("python"),
		Body: `echo "greeting=${GREETING} count=${UNIKUBE_VAR_COUNT}"
echo "token-env=${API_TOKEN} token-file=$(cat /unikube/credentials/api-creds/api-token)"
for i in $(seq 1 "$COUNT"); do echo "item $i"; done
echo "release=${UNIKUBE_RELEASE}"
`,
		Variables:   []client.Variable{{Name: "GREETING", Required: true}, {Name: "COUNT", Default: "1"}},
		Credentials: []client.Credential{{Secret: "api-creds", Keys: []string{"api-token"}}},
	})
	start := time.Now()
	out, errOut, code := s.helm(ctx, t, "script", "run", "scripts/hello", "my-shop", "--set", "GREETING=hello world", "--set", "COUNT=3", "--follow")
	t.Logf("run took %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// The credential reaches the script, and its value is masked in what
	// the script printed.
	for _, want := range []string{"greeting=hello world count=3", "token-env=(sensitive) token-file=(sensitive)", "item 1\nitem 2\nitem 3\n", "release=my-shop", "succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("streamed output lacks %q:\n%s", want, out)
		}
	}
	run := s.onlyRun(ctx, t, "hello")
	if run.Status != client.RunSucceeded || run.ExitCode == nil || *run.ExitCode != 0 || run.StartedAt == nil || run.FinishedAt == nil ||
		!strings.Contains(run.LogTail, "item 3") || strings.Contains(run.LogTail, "tok-123") || run.Variables["GREETING"] != "hello world" || !strings.Contains(run.Target, "my-shop") {
		t.Errorf("recorded run: %+v", run)
	}
	// A succeeded Job goes, with its ConfigMap (owned by it).
	poll(ctx, t, "the script's objects to be deleted", time.Minute, func(ctx context.Context) (bool, string, error) {
		left := s.managedObjects(ctx, t)
		return len(left) == 0, strings.Join(left, ","), nil
	})

	out, _, code = s.helm(ctx, t, "script", "runs", "scripts/hello")
	if code != 0 || !strings.Contains(out, run.ID) || !strings.Contains(out, "succeeded") {
		t.Errorf("script runs (exit %d):\n%s", code, out)
	}
	out, _, code = s.helm(ctx, t, "script", "list", "scripts")
	if code != 0 || !strings.Contains(out, "hello") || !strings.Contains(out, "GREETING*") {
		t.Errorf("script list (exit %d):\n%s", code, out)
	}
}

func TestScript_FailuresRecordTheStackTraceAndExit1(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	s := newScriptEnv(ctx, t)
	// The python example against an API that answers 500.
	api := serveHTTP(t, nodeListener(ctx, t, s.env), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database is down", http.StatusInternalServerError)
	}))
	s.put(ctx, t, "seed-users", client.ScriptSpec{Interpreter: "python", Image: s.env.Image("python"), Body: example(t, "seed-users-http.py"),
		Variables: []client.Variable{{Name: "API_URL", Required: true}, {Name: "USERS", Required: true}, {Name: "DOMAIN", Default: "example.com"}}})
	s.put(ctx, t, "copy", client.ScriptSpec{Interpreter: "bash", Image: s.env.Image("python"), Body: `echo "step 1"
copy_files() {
  cp /nonexistent/source "$TMPDIR/dest"
}
copy_files
echo "never reached"
`})

	t.Run("python", func(t *testing.T) {
		out, errOut, code := s.helm(ctx, t, "script", "run", "scripts/seed-users", "--set", "API_URL="+api, "--set", "USERS=ann,bob")
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		run := s.onlyRun(ctx, t, "seed-users")
		tr := run.StackTrace
		for _, want := range []string{"Traceback (most recent call last):", `File "/unikube/script/seed-users.py", line 37, in <module>`,
			"line 32, in main", "line 22, in create_user", "urllib.error.HTTPError: HTTP Error 500: Internal Server Error"} {
			if !strings.Contains(tr, want) {
				t.Errorf("recorded traceback lacks %q:\n%s", want, tr)
			}
			if !strings.Contains(errOut, want) {
				t.Errorf("CLI output lacks %q:\n%s", want, errOut)
			}
		}
		if run.Status != client.RunFailed || run.ExitCode == nil || *run.ExitCode != 1 {
			t.Errorf("run: %+v", run)
		}
		out, _, code = s.helm(ctx, t, "script", "logs", "scripts/seed-users")
		if code != 0 || !strings.Contains(out, "HTTPError") {
			t.Errorf("script logs (exit %d):\n%s", code, out)
		}
	})
	t.Run("bash", func(t *testing.T) {
		out, errOut, code := s.helm(ctx, t, "script", "run", "scripts/copy")
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		run := s.onlyRun(ctx, t, "copy")
		for _, want := range []string{"copy.bash line 3: command cp /nonexistent/source", "exited 1",
			"in copy_files, called at copy.bash line 5", "No such file or directory"} {
			if !strings.Contains(run.StackTrace, want) {
				t.Errorf("recorded trace lacks %q:\n%s", want, run.StackTrace)
			}
			if !strings.Contains(errOut, want) {
				t.Errorf("CLI output lacks %q:\n%s", want, errOut)
			}
		}
		if strings.Contains(run.LogTail, "never reached") || run.Status != client.RunFailed || run.ExitCode == nil || *run.ExitCode != 1 {
			t.Errorf("run: %+v", run)
		}
	})
}

func TestScript_VariableValuesAreNeverCode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newScriptEnv(ctx, t)
	values := map[string]string{
		"V1": `"; rm -rf / #`,
		"V2": `$(id)`,
		"V3": "`id`",
		"V4": "ok\ntouch /unikube/tmp/pwned; echo INJECTED",
	}
	body := `touch /unikube/tmp/canary
printf 'V1=[%s]\n' "$V1"
printf 'V2=[%s]\n' "$V2"
printf 'V3=[%s]\n' "$V3"
[ "$V3" = "$(printf '\140id\140')" ] && echo V3-is-literal
printf 'V4=[%s]\n' "$UNIKUBE_VAR_V4"
test -e /unikube/tmp/canary && echo canary-intact
test ! -e /unikube/tmp/pwned && echo nothing-else-ran
`
	vars := []client.Variable{{Name: "V1"}, {Name: "V2"}, {Name: "V3", Sensitive: true}, {Name: "V4"}}
	s.put(ctx, t, "echo-bash", client.ScriptSpec{Interpreter: "bash", Image: s.env.Image("python"), Body: body, Variables: vars})
	s.put(ctx, t, "echo-sh", client.ScriptSpec{Interpreter: "sh", Image: s.env.Image("busybox"), Body: body, Variables: vars})
	// V3 is sensitive: its output is masked, so the script compares it itself.
	want := "V1=[" + values["V1"] + "]\nV2=[$(id)]\nV3=[(sensitive)]\nV3-is-literal\nV4=[ok\ntouch /unikube/tmp/pwned; echo INJECTED]\ncanary-intact\nnothing-else-ran\n"
	check := func(t *testing.T, out string) {
		t.Helper()
		if !strings.Contains(out, want) {
			t.Errorf("the script did not see the values literally:\n%s\nwant:\n%s", out, want)
		}
		if strings.Contains(out, "uid=") || strings.Contains(out, "\nINJECTED\n") {
			t.Errorf("a value ran as code:\n%s", out)
		}
	}
	t.Run("bash through the CLI", func(t *testing.T) {
		args := []string{"script", "run", "scripts/echo-bash", "--follow"}
		for _, k := range []string{"V1", "V2", "V3", "V4"} {
			args = append(args, "--set", k+"="+values[k])
		}
		out, errOut, code := s.helm(ctx, t, args...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		check(t, out)
		run := s.onlyRun(ctx, t, "echo-bash")
		if run.Variables["V3"] == values["V3"] {
			t.Errorf("the sensitive value was recorded: %v", run.Variables)
		}
	})
	t.Run("sh through the runner", func(t *testing.T) {
		var follow bytes.Buffer
		_, err := scriptrun.Run(ctx, scriptrun.Options{Client: s.env.Client, Platform: s.cl, Namespace: s.ns, Script: "scripts/echo-sh", Vars: values, Follow: &follow})
		if err != nil {
			t.Fatal(err)
		}
		check(t, follow.String())
	})
}

func TestScript_BadInputFailsBeforeAnythingIsCreated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := newScriptEnv(ctx, t)
	s.put(ctx, t, "needs", client.ScriptSpec{Interpreter: "sh", Body: "echo $TABLE", Variables: []client.Variable{{Name: "TABLE", Required: true}}})

	_, err := scriptrun.Run(ctx, scriptrun.Options{Client: s.env.Client, Platform: s.cl, Namespace: s.ns, Script: "scripts/needs"})
	var ve *scriptrun.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "required variable(s) TABLE not set") {
		t.Fatalf("missing variable: %v, want a ValidationError naming TABLE", err)
	}
	_, errOut, code := s.helm(ctx, t, "script", "run", "scripts/needs", "--set", "OTHER=1")
	if code != 2 || !strings.Contains(errOut, "unknown variable(s) OTHER") {
		t.Errorf("CLI with an unknown variable: exit %d\n%s", code, errOut)
	}
	// An interpreter the runner does not know: the platform refuses to
	// store it, and a script handed to the runner directly is refused too.
	if _, err := s.cl.PutScript(ctx, "scripts", "rb", client.ScriptSpec{Interpreter: "ruby", Body: "puts 1"}); err == nil || !strings.Contains(err.Error(), "use sh, bash or python") {
		t.Errorf("platform accepted interpreter ruby: %v", err)
	}
	_, err = scriptrun.Run(ctx, scriptrun.Options{Client: s.env.Client, Namespace: s.ns,
		Fetched: &client.Script{Project: "scripts", Name: "rb", Interpreter: "ruby", Body: "puts 1"}})
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), `interpreter "ruby" is not supported`) {
		t.Errorf("runner with interpreter ruby: %v", err)
	}
	if left := s.managedObjects(ctx, t); len(left) != 0 {
		t.Errorf("objects were created: %v", left)
	}
	if runs, err := s.cl.ListRuns(ctx, "scripts", "needs", 10); err != nil || len(runs) != 0 {
		t.Errorf("runs recorded: %v %v", runs, err)
	}
}
