package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/helmplugin"
)

// configChart is a chart of configuration only: a ConfigMap and a Secret
// of the app, a cache ConfigMap, and a long-lived service-account token
// Secret (the pattern some charts use), which capture must leave out.
var configChart = map[string]string{
	"Chart.yaml": "apiVersion: v2\nname: cfgapp\nversion: 0.2.0\nappVersion: \"1.4\"\n",
	"values.yaml": `greeting: hello
db:
  host: db
  password: ""
cache:
  size: 64
`,
	"templates/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-web
  labels: {app.kubernetes.io/instance: {{ .Release.Name }}}
data:
  GREETING: {{ .Values.greeting | quote }}
  DATABASE_HOST: {{ printf "%s.%s.svc" .Values.db.host .Release.Namespace | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cache
  labels: {app.kubernetes.io/instance: {{ .Release.Name }}, tier: cache}
data:
  SIZE: {{ .Values.cache.size | quote }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-db
  labels: {app.kubernetes.io/instance: {{ .Release.Name }}}
type: Opaque
stringData:
  PASSWORD: {{ .Values.db.password | quote }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-token
  labels: {app.kubernetes.io/instance: {{ .Release.Name }}}
  annotations: {kubernetes.io/service-account.name: default}
type: kubernetes.io/service-account-token
`,
}

func TestHelmPlugin_CaptureConfigAndRelease(t *testing.T) {
	cluster.Require(t)
	forEachHelm(t, testCaptureConfigAndRelease)
}

// capture --config takes the release's own ConfigMap and Secret (not the
// excluded cache, Helm's release record or the service-account token),
// and the version records the chart and values, which show prints.
func testCaptureConfigAndRelease(t *testing.T, h helmplugin.Helm) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w := newHelmWorld(ctx, t, h)
	if _, err := w.admin.CreateProject(ctx, "cfg", ""); err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(t.TempDir(), "cfgapp")
	for name, body := range configChart {
		p := filepath.Join(chart, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w.ok(ctx, t, "install", "app", chart, "--set", "greeting=hi", "--set", "db.password=s3cret-pw")

	plan := w.ok(ctx, t, "state", "capture", "app", "--to", "cfg/seed", "--config", "--exclude", "tier=cache", "--dry-run")
	if !strings.Contains(plan, "config") || !strings.Contains(plan, "ConfigMap/app-web,Secret/app-db") {
		t.Errorf("capture --dry-run does not plan the release's own objects:\n%s", plan)
	}
	var v client.Version
	out := w.ok(ctx, t, "state", "capture", "app", "--to", "cfg/seed:v1", "--config", "--exclude", "tier=cache", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("capture output %q: %v", out, err)
	}
	m, _, err := w.admin.GetManifest(ctx, "cfg", "seed", v.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Components) != 1 || m.Components[0].Name != "config" || m.Components[0].Kind != "kubernetes" {
		t.Fatalf("components %+v, want one kubernetes component config", m.Components)
	}
	objs := strings.Split(m.Components[0].Meta["objects"], ",")
	if !slices.Equal(objs, []string{"ConfigMap/app-web", "Secret/app-db"}) {
		t.Errorf("config component holds %v, want the release's ConfigMap/app-web and Secret/app-db only", objs)
	}

	rel := m.Release
	if rel == nil {
		t.Fatal("the manifest records no release")
	}
	if rel.Name != "app" || rel.Namespace != w.ns || rel.Chart.Name != "cfgapp" || rel.Chart.Version != "0.2.0" || rel.Chart.AppVersion != "1.4" {
		t.Errorf("release %+v", rel)
	}
	if rel.Values["greeting"] != "hi" || rel.DefaultValues["greeting"] != "hello" {
		t.Errorf("values %v, default values %v", rel.Values, rel.DefaultValues)
	}
	if !slices.Equal(rel.Overridden, []string{"db.password", "greeting"}) {
		t.Errorf("overridden %v, want db.password, greeting", rel.Overridden)
	}

	table := w.ok(ctx, t, "state", "show", "cfg/seed:v1")
	for _, want := range []string{"release:    app in " + w.ns, "chart:      cfgapp 0.2.0 (app 1.4)", "overridden: db.password, greeting", "greeting: hi", "password: '***'"} {
		if !strings.Contains(table, want) {
			t.Errorf("show lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "s3cret-pw") {
		t.Errorf("show printed the password:\n%s", table)
	}
	var shown struct {
		client.Version
		Release struct {
			Values        map[string]any `json:"values"`
			DefaultValues map[string]any `json:"defaultValues"`
		} `json:"release"`
	}
	if err := json.Unmarshal([]byte(w.ok(ctx, t, "state", "show", "cfg/seed:v1", "-o", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	db, _ := shown.Release.Values["db"].(map[string]any)
	if shown.Digest != v.Digest || db["password"] != "s3cret-pw" || shown.Release.DefaultValues["cache"] == nil {
		t.Errorf("show -o json = %+v, want the version with its values as recorded", shown)
	}
}
