package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/scriptrun"
)

// The templates in examples/scripts, each run as a user would: stored on
// the platform, run in a namespace, checked by what they did.
// (volume-init-files.sh is the script of TestScriptComponent_*.)
func TestScriptExamples_RestoreADumpFromAURLAndSeedUsersThroughAnAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	s := newScriptEnv(ctx, t)
	cs := s.env.Client
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), s.env, s.ns))
		}
	})

	// A PostgreSQL server (its password in a Secret the script also gets).
	s.secret(ctx, t, "db", map[string]string{"PGPASSWORD": "pw-" + randomHex(6)})
	uid := int64(999)
	pwRef := &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "PGPASSWORD"}}
	mustCreate(t, "pod db", func() error {
		_, err := cs.CoreV1().Pods(s.ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db", Labels: map[string]string{"app": "db"}},
			Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, RunAsNonRoot: ptrTo(true)},
				Containers: []corev1.Container{{Name: "db", Image: s.env.Image("postgres"), ImagePullPolicy: corev1.PullIfNotPresent,
					Env: []corev1.EnvVar{{Name: "POSTGRES_PASSWORD", ValueFrom: pwRef}, {Name: "POSTGRES_DB", Value: "app"}}}}}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, "service db", func() error {
		_, err := cs.CoreV1().Services(s.ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Port: 5432, TargetPort: intstr.FromInt32(5432)}}}},
			metav1.CreateOptions{})
		return err
	})

	// The HTTP side: the dump to download, and an API that creates users.
	dump := "CREATE TABLE customers (id int PRIMARY KEY, name text);\n" +
		"INSERT INTO customers VALUES (1, 'ann'), (2, 'bob'), (3, 'O''Brien; DROP TABLE x');\n"
	var mu sync.Mutex
	var users []map[string]string
	var auth []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dumps/shop.sql", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(dump)) })
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var u map[string]string
		if err := json.NewDecoder(r.Body).Decode(&u); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		users = append(users, u)
		auth = append(auth, r.Header.Get("Authorization"))
		id := len(users)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id})
	})
	base := serveHTTP(t, nodeListener(ctx, t, s.env), mux)

	t.Run("postgres-restore-from-url", func(t *testing.T) {
		s.put(ctx, t, "restore-dump", client.ScriptSpec{Interpreter: "sh", Image: s.env.Image("postgres"), Body: example(t, "postgres-restore-from-url.sh"),
			Variables: []client.Variable{{Name: "DUMP_URL", Required: true}, {Name: "PGHOST", Required: true},
				{Name: "PGDATABASE", Default: "postgres"}, {Name: "PGUSER", Default: "postgres"}},
			Credentials: []client.Credential{{Secret: "db", Keys: []string{"PGPASSWORD"}}}})
		res, err := scriptrun.Run(ctx, scriptrun.Options{Client: cs, Platform: s.cl, Namespace: s.ns, Script: "scripts/restore-dump",
			Vars: map[string]string{"DUMP_URL": base + "/dumps/shop.sql", "PGHOST": "db." + s.ns + ".svc.cluster.local", "PGDATABASE": "app"}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.LogTail, "restored into app") {
			t.Errorf("log: %s", res.LogTail)
		}
		out, errOut, err := execIn(ctx, s.env, s.ns, "db", "db", nil, "psql", "-U", "postgres", "-d", "app", "-tAc", "SELECT string_agg(name, '|' ORDER BY id) FROM customers")
		if err != nil || strings.TrimSpace(out) != "ann|bob|O'Brien; DROP TABLE x" {
			t.Errorf("restored rows: %q %v %s", out, err, errOut)
		}
	})

	t.Run("seed-users-http", func(t *testing.T) {
		s.secret(ctx, t, "api", map[string]string{"api-token": "tok-" + randomHex(4)})
		s.put(ctx, t, "seed-users", client.ScriptSpec{Interpreter: "python", Image: s.env.Image("python"), Body: example(t, "seed-users-http.py"),
			Variables:   []client.Variable{{Name: "API_URL", Required: true}, {Name: "USERS", Required: true}, {Name: "DOMAIN", Default: "example.com"}},
			Credentials: []client.Credential{{Secret: "api", Keys: []string{"api-token"}}}})
		res, err := scriptrun.Run(ctx, scriptrun.Options{Client: cs, Platform: s.cl, Namespace: s.ns, Script: "scripts/seed-users",
			Vars: map[string]string{"API_URL": base, "USERS": "ann, bob,carol", "DOMAIN": "shop.test"}})
		if err != nil {
			t.Fatal(err)
		}
		sec, err := cs.CoreV1().Secrets(s.ns).Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(users) != 3 || users[0]["name"] != "ann" || users[2]["email"] != "carol@shop.test" {
			t.Errorf("users created: %v", users)
		}
		for _, a := range auth {
			if a != "Bearer "+string(sec.Data["api-token"]) {
				t.Errorf("Authorization %q, want the credential's token", a)
			}
		}
		if !strings.Contains(res.LogTail, "3 users created") {
			t.Errorf("log: %s", res.LogTail)
		}
	})
}
