// Package chart checks charts/unikube-platform with the real helm CLI:
// `helm lint --strict`, and `helm template` in both storage modes, parsed
// into Kubernetes objects and checked for what the chart promises
// (restricted pods, secrets only from Secrets, one embedded replica, probes)
// and for what it refuses.
package chart

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"helm.sh/helm/v4/pkg/strvals"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

const chartDir = "../../charts/unikube-platform"

// Values given as secrets in the tests; none may show outside a Secret.
const (
	dbPassword = "db-pass-7f3a9c1e5d"
	s3Key      = "AKIA-test-key-id-42"
	s3Secret   = "s3-secret-9b8c7d6e5f4a"
	adminValue = "admin-token-from-values-0123456789"
	sealKey    = "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=" // 32 bytes, base64
)

// sharedArgs install the chart in shared mode with every credential set
// through values.
var sharedArgs = []string{
	"--set", "storage.mode=shared",
	"--set", "storage.shared.database.url=postgres://unikube@db.internal:5432/unikube?sslmode=require",
	"--set", "storage.shared.database.password=" + dbPassword,
	"--set", "storage.shared.blobStore.url=s3://states?endpoint=https://s3.internal&region=eu-central-1",
	"--set", "storage.shared.blobStore.accessKeyId=" + s3Key,
	"--set", "storage.shared.blobStore.secretAccessKey=" + s3Secret,
	"--set", "adminToken.value=" + adminValue,
	"--set", "secretKey.value=" + sealKey,
}

// helmBin is the helm CLI `make tools` installs, else helm on PATH.
func helmBin(t *testing.T) string {
	t.Helper()
	if p := filepath.Join(testenv.ToolsDir(), "bin", "helm"); isFile(p) {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	testenv.Missing(t, "no helm CLI in %s/bin or on PATH: run make tools", testenv.ToolsDir())
	return ""
}

func isFile(p string) bool { st, err := os.Stat(p); return err == nil && !st.IsDir() }

// helm runs the helm CLI and returns its stdout, or its stderr as the error.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helmBin(t), args...)
	// Keep helm away from the user's repositories, plugins and clusters.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home, "KUBECONFIG="+filepath.Join(home, "none"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// rendered is one `helm template` output, split into its objects.
type rendered struct {
	raw         string
	deployment  appsv1.Deployment
	services    map[string]corev1.Service
	secrets     map[string]corev1.Secret
	pvcs        []corev1.PersistentVolumeClaim
	ingresses   []networkingv1.Ingress
	serviceAcct []corev1.ServiceAccount
	pdbs        []policyv1.PodDisruptionBudget
	docs        map[string]string // kind/name -> YAML
}

func render(t *testing.T, args ...string) *rendered {
	t.Helper()
	out, err := helm(t, append([]string{"template", "rel", chartDir, "--namespace", "unikube"}, args...)...)
	if err != nil {
		t.Fatalf("helm template %s: %v", strings.Join(args, " "), err)
	}
	r := &rendered{raw: out, services: map[string]corev1.Service{}, secrets: map[string]corev1.Secret{}, docs: map[string]string{}}
	deployments := 0
	for _, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
			continue
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("parse rendered object: %v\n%s", err, doc)
		}
		r.docs[head.Kind+"/"+head.Metadata.Name] = doc
		switch head.Kind {
		case "Deployment":
			deployments++
			unmarshal(t, doc, &r.deployment)
		case "Service":
			var s corev1.Service
			unmarshal(t, doc, &s)
			r.services[s.Name] = s
		case "Secret":
			var s corev1.Secret
			unmarshal(t, doc, &s)
			r.secrets[s.Name] = s
		case "PersistentVolumeClaim":
			var p corev1.PersistentVolumeClaim
			unmarshal(t, doc, &p)
			r.pvcs = append(r.pvcs, p)
		case "Ingress":
			var i networkingv1.Ingress
			unmarshal(t, doc, &i)
			r.ingresses = append(r.ingresses, i)
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			unmarshal(t, doc, &p)
			r.pdbs = append(r.pdbs, p)
		case "ServiceAccount":
			var s corev1.ServiceAccount
			unmarshal(t, doc, &s)
			r.serviceAcct = append(r.serviceAcct, s)
		default:
			t.Fatalf("unexpected object %s/%s in the chart's output", head.Kind, head.Metadata.Name)
		}
	}
	if deployments != 1 {
		t.Fatalf("want one Deployment, got %d", deployments)
	}
	return r
}

// unmarshal is strict: a field the Kubernetes type does not know is a bug
// in a template (a misplaced or misspelt key).
func unmarshal(t *testing.T, doc string, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		t.Fatalf("parse rendered object: %v\n%s", err, doc)
	}
}

func (r *rendered) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := r.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("want one container, got %d", len(cs))
	}
	return cs[0]
}

func envByName(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// notes renders NOTES.txt, which `helm template` leaves out and `helm
// install --dry-run` renders only with a reachable cluster: through Helm's
// own template engine, as an install would.
func notes(t *testing.T, set ...string) string {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals := map[string]any{}
	for _, s := range set {
		if err := strvals.ParseInto(s, vals); err != nil {
			t.Fatalf("--set %s: %v", s, err)
		}
	}
	top, err := chartutil.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: "rel", Namespace: "unikube", IsInstall: true}, nil)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	out, err := engine.Render(chrt, top)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	n, ok := out["unikube-platform/templates/NOTES.txt"]
	if !ok {
		t.Fatal("the chart has no templates/NOTES.txt")
	}
	return n
}

func TestChart_NotesSayHowToGetTheAdminToken(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{nil, `kubectl -n unikube get secret rel-unikube-platform \
         -o jsonpath='{.data.admin-token}' | base64 -d`},
		{[]string{"adminToken.existingSecret=ops-admin", "adminToken.existingSecretKey=token.txt"}, `get secret ops-admin \
         -o jsonpath='{.data.token\.txt}' | base64 -d`},
	} {
		if n := notes(t, tc.set...); !strings.Contains(n, tc.want) {
			t.Errorf("NOTES with %v do not contain\n%s\ngot:\n%s", tc.set, tc.want, n)
		}
	}
	if n := notes(t); !strings.Contains(n, "http://rel-unikube-platform.unikube.svc:8080") {
		t.Errorf("NOTES do not give the in-cluster URL:\n%s", n)
	}
}

// The variables the NOTES export are the ones the plugin and the provider
// read: the port-forward for this machine, the Service for the agents.
func TestChart_NotesExportTheURLsTheClientsRead(t *testing.T) {
	n := notes(t)
	for _, want := range []string{
		"export UNIKUBE_ENDPOINT=http://127.0.0.1:8080",
		"export UNIKUBE_CLUSTER_ENDPOINT=http://rel-unikube-platform.unikube.svc:8080",
	} {
		if !strings.Contains(n, want) {
			t.Errorf("NOTES lack %q:\n%s", want, n)
		}
	}
	if strings.Contains(n, "nodePort") {
		t.Errorf("NOTES of a ClusterIP Service mention a node port:\n%s", n)
	}
	if n := notes(t, "service.type=NodePort"); !strings.Contains(n, "{.spec.ports[0].nodePort}") {
		t.Errorf("NOTES of a NodePort Service do not say how to find the port:\n%s", n)
	}
}

func TestChart_LintStrictIsClean(t *testing.T) {
	for name, args := range map[string][]string{"embedded": nil, "shared": sharedArgs} {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, append([]string{"lint", "--strict", chartDir}, args...)...)
			if err != nil {
				t.Fatalf("helm lint --strict: %v\n%s", err, out)
			}
		})
	}
}

func TestChart_PodsAreRestrictedInBothModes(t *testing.T) {
	for name, args := range map[string][]string{"embedded": nil, "shared": sharedArgs} {
		t.Run(name, func(t *testing.T) {
			r := render(t, args...)
			pod := r.deployment.Spec.Template.Spec
			psc := pod.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Errorf("pod securityContext.runAsNonRoot is not true: %+v", psc)
			}
			if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
				t.Errorf("pod does not run as uid 65532: %+v", psc)
			}
			if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod seccompProfile is not RuntimeDefault: %+v", psc)
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("pod automounts a service account token; the platform never calls the Kubernetes API")
			}
			for _, sa := range r.serviceAcct {
				if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					t.Errorf("ServiceAccount %s automounts its token", sa.Name)
				}
			}
			c := r.container(t)
			sc := c.SecurityContext
			if sc == nil {
				t.Fatal("container has no securityContext")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("container root filesystem is writable")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("container allows privilege escalation")
			}
			if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
				t.Errorf("container capabilities are not drop ALL: %+v", sc.Capabilities)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Error("container is privileged")
			}
			// With a read-only root, every path the server writes is a volume.
			mounts := map[string]bool{}
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = true
			}
			env := envByName(c)
			for _, p := range []string{env["UNIKUBE_DATA_DIR"].Value, "/tmp"} {
				if p == "" || !mounts[p] {
					t.Errorf("writable path %q is not a mounted volume (mounts: %v)", p, mounts)
				}
			}
		})
	}
}

func TestChart_ProbesUseHealthzAndReadyz(t *testing.T) {
	for name, args := range map[string][]string{"http": nil, "https": {"--set", "tls.existingSecret=platform-tls"}} {
		t.Run(name, func(t *testing.T) {
			c := render(t, args...).container(t)
			want := corev1.URIScheme(strings.ToUpper(name))
			for probe, p := range map[string]struct {
				pr   *corev1.Probe
				path string
			}{"liveness": {c.LivenessProbe, "/healthz"}, "startup": {c.StartupProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
				if p.pr == nil || p.pr.HTTPGet == nil {
					t.Errorf("%s probe missing or not HTTP", probe)
					continue
				}
				if g := p.pr.HTTPGet; g.Path != p.path || g.Port.String() != "http" || g.Scheme != want {
					t.Errorf("%s probe = %s %s on port %s, want %s %s on port http", probe, g.Scheme, g.Path, g.Port.String(), want, p.path)
				}
			}
		})
	}
}

func TestChart_EmbeddedModeRunsOneReplicaOnAVolume(t *testing.T) {
	r := render(t, "--set", "replicaCount=5")
	d := r.deployment.Spec
	if d.Replicas == nil || *d.Replicas != 1 {
		t.Errorf("embedded mode with replicaCount=5 renders %v replicas, want 1 (SQLite on one ReadWriteOnce volume)", d.Replicas)
	}
	if d.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("embedded mode strategy = %q, want Recreate (the old pod must release the volume first)", d.Strategy.Type)
	}
	if len(r.pvcs) != 1 {
		t.Fatalf("want one PersistentVolumeClaim, got %d", len(r.pvcs))
	}
	if len(r.pdbs) != 0 {
		t.Error("embedded mode renders a PodDisruptionBudget; its single pod could never be drained")
	}
	if r.pvcs[0].Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("the data claim is not kept on uninstall; every state lives on it")
	}
	var claim string
	for _, v := range r.deployment.Spec.Template.Spec.Volumes {
		if v.Name == "data" && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != r.pvcs[0].Name {
		t.Errorf("data volume uses claim %q, want the chart's %q", claim, r.pvcs[0].Name)
	}
	env := envByName(r.container(t))
	for _, n := range []string{"UNIKUBE_DATABASE", "UNIKUBE_BLOB_STORE"} {
		if _, ok := env[n]; ok {
			t.Errorf("embedded mode sets %s; the server should use SQLite and chunk files in its data directory", n)
		}
	}
	if n := notes(t, "replicaCount=5"); !strings.Contains(n, "replicaCount=5 is ignored in embedded mode") {
		t.Errorf("NOTES do not say that replicaCount is ignored in embedded mode:\n%s", n)
	}

	existing := render(t, "--set", "storage.embedded.persistence.existingClaim=my-data")
	if len(existing.pvcs) != 0 {
		t.Error("a claim is created although existingClaim is set")
	}
}

func TestChart_SharedModeRollsSeveralReplicasWithCredentialsFromSecrets(t *testing.T) {
	r := render(t, append([]string{"--set", "replicaCount=3"}, sharedArgs...)...)
	d := r.deployment.Spec
	if d.Replicas == nil || *d.Replicas != 3 {
		t.Errorf("shared mode replicas = %v, want 3", d.Replicas)
	}
	if d.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("shared mode strategy = %q, want RollingUpdate", d.Strategy.Type)
	}
	if len(r.pvcs) != 0 {
		t.Errorf("shared mode creates %d PersistentVolumeClaims; it keeps nothing on disk", len(r.pvcs))
	}
	if len(r.pdbs) != 1 || r.pdbs[0].Spec.MaxUnavailable == nil || r.pdbs[0].Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("shared mode with 3 replicas: want a PodDisruptionBudget with maxUnavailable 1, got %+v", r.pdbs)
	}
	storage := r.secrets["rel-unikube-platform-storage"]
	env := envByName(r.container(t))
	for name, key := range map[string]string{
		"UNIKUBE_DATABASE": "database-url", "PGPASSWORD": "database-password", "UNIKUBE_BLOB_STORE": "blob-store-url",
		"AWS_ACCESS_KEY_ID": "aws-access-key-id", "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key",
	} {
		e, ok := env[name]
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s is not set from a secretKeyRef: %+v", name, e)
			continue
		}
		if ref := e.ValueFrom.SecretKeyRef; ref.Name != storage.Name || ref.Key != key {
			t.Errorf("%s comes from %s/%s, want %s/%s", name, ref.Name, ref.Key, storage.Name, key)
		}
		if e.Value != "" {
			t.Errorf("%s has a literal value", name)
		}
	}
	for key, want := range map[string]string{"database-password": dbPassword, "aws-access-key-id": s3Key, "aws-secret-access-key": s3Secret} {
		if got := string(storage.Data[key]); got != want {
			t.Errorf("storage Secret %s = %q, want the value from values", key, got)
		}
	}

	// A Secret the user manages: the chart creates none for storage.
	own := render(t, "--set", "storage.mode=shared", "--set", "storage.shared.existingSecret=team-storage")
	if _, ok := own.secrets["rel-unikube-platform-storage"]; ok {
		t.Error("the chart creates a storage Secret although existingSecret is set")
	}
	if ref := envByName(own.container(t))["UNIKUBE_DATABASE"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "team-storage" {
		t.Errorf("UNIKUBE_DATABASE does not come from the existing Secret: %+v", ref)
	}
}

func TestChart_SecretsNeverOnTheCommandLineOrInThePodSpec(t *testing.T) {
	r := render(t, sharedArgs...)
	c := r.container(t)
	if len(c.Command) != 0 || len(c.Args) != 0 {
		t.Errorf("container has command %q args %q; the image's entrypoint and the environment configure it", c.Command, c.Args)
	}
	dep := r.docs["Deployment/rel-unikube-platform"]
	for _, secret := range []string{dbPassword, s3Key, s3Secret, adminValue, sealKey} {
		for doc, text := range r.docs {
			if strings.HasPrefix(doc, "Secret/") {
				continue
			}
			if strings.Contains(text, secret) {
				t.Errorf("%s contains a secret value given in values", doc)
			}
		}
	}
	if !strings.Contains(dep, "UNIKUBE_ADMIN_TOKEN_FILE") {
		t.Error("the admin token is not passed as a file")
	}
	env := envByName(c)
	for _, n := range []string{"UNIKUBE_ADMIN_TOKEN", "UNIKUBE_SECRET_KEY", "AWS_SESSION_TOKEN"} {
		if e, ok := env[n]; ok && e.Value != "" {
			t.Errorf("%s has a literal value in the pod spec", n)
		}
	}
	keys := r.secrets["rel-unikube-platform"]
	if string(keys.Data["admin-token"]) != adminValue || string(keys.Data["secret-key"]) != sealKey {
		t.Error("the keys Secret does not hold the admin token and secret key from values")
	}
	if keys.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("the keys Secret is not kept on uninstall; a lost sealing key makes stored defaults unusable")
	}

	// Mounted files point at the Secret the values name.
	own := render(t, "--set", "adminToken.existingSecret=ops-admin", "--set", "adminToken.existingSecretKey=token",
		"--set", "secretKey.existingSecret=ops-seal", "--set", "secretKey.existingSecretKey=key")
	if _, ok := own.secrets["rel-unikube-platform"]; ok {
		t.Error("the chart creates the keys Secret although both existing Secrets are named")
	}
	vols := map[string]*corev1.SecretVolumeSource{}
	for _, v := range own.deployment.Spec.Template.Spec.Volumes {
		vols[v.Name] = v.Secret
	}
	oenv := envByName(own.container(t))
	for vol, want := range map[string][3]string{
		"admin-token": {"ops-admin", "token", "UNIKUBE_ADMIN_TOKEN_FILE"},
		"secret-key":  {"ops-seal", "key", "UNIKUBE_SECRET_KEY_FILE"},
	} {
		s := vols[vol]
		if s == nil || s.SecretName != want[0] || len(s.Items) != 1 || s.Items[0].Key != want[1] {
			t.Errorf("volume %s = %+v, want Secret %s key %s", vol, s, want[0], want[1])
		}
		if got := oenv[want[2]].Value; !strings.HasSuffix(got, "/"+want[1]) {
			t.Errorf("%s = %q, want the mounted key %s", want[2], got, want[1])
		}
	}

	// Generated on install when nothing is given: long and random.
	gen := render(t).secrets["rel-unikube-platform"]
	if tok := gen.Data["admin-token"]; len(tok) < 32 {
		t.Errorf("generated admin token is %d characters, want at least 32", len(tok))
	}
	if len(gen.Data["secret-key"]) != 44 {
		t.Errorf("generated secret key is %q, want 32 bytes as base64", gen.Data["secret-key"])
	}
}

func TestChart_MetricsHaveTheirOwnPortAndService(t *testing.T) {
	r := render(t, "--set", "metrics.enabled=true", "--set", "ingress.enabled=true")
	main := r.services["rel-unikube-platform"]
	for _, p := range main.Spec.Ports {
		if p.TargetPort.String() == "metrics" || p.Port == 9090 {
			t.Errorf("the main Service exposes the token-free metrics port: %+v", p)
		}
	}
	m, ok := r.services["rel-unikube-platform-metrics"]
	if !ok || len(m.Spec.Ports) != 1 || m.Spec.Ports[0].Port != 9090 {
		t.Errorf("no metrics Service on 9090: %+v", m.Spec.Ports)
	}
	if got := envByName(r.container(t))["UNIKUBE_METRICS_LISTEN"].Value; got != ":9090" {
		t.Errorf("UNIKUBE_METRICS_LISTEN = %q, want :9090", got)
	}
	if len(r.ingresses) != 1 {
		t.Fatalf("want one Ingress, got %d", len(r.ingresses))
	}
	for _, rule := range r.ingresses[0].Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			if p.Backend.Service.Name != main.Name {
				t.Errorf("Ingress routes to %s, want %s", p.Backend.Service.Name, main.Name)
			}
		}
	}
	if off := render(t); len(off.services) != 1 || len(off.ingresses) != 0 {
		t.Errorf("defaults render %d Services and %d Ingresses, want 1 and 0", len(off.services), len(off.ingresses))
	}
}

func TestChart_OIDCSettingsReachThePlatform(t *testing.T) {
	r := render(t, "--set", "oidc.issuer=https://login.example.com/realms/acme", "--set", "oidc.clientID=helm-state",
		"--set", "oidc.audiences={unikube-ci,sts.example.com}", "--set", "oidc.usernameClaim=preferred_username")
	env := envByName(r.container(t))
	want := map[string]string{
		"UNIKUBE_OIDC_ISSUER": "https://login.example.com/realms/acme", "UNIKUBE_OIDC_CLIENT_ID": "helm-state",
		"UNIKUBE_OIDC_AUDIENCES": "unikube-ci,sts.example.com", "UNIKUBE_OIDC_USERNAME_CLAIM": "preferred_username",
		"UNIKUBE_OIDC_GROUPS_CLAIM": "groups", "UNIKUBE_OIDC_EXCHANGE_TTL": "1h",
	}
	for k, v := range want {
		if env[k].Value != v {
			t.Errorf("%s = %q, want %q", k, env[k].Value, v)
		}
	}
	if _, on := envByName(render(t).container(t))["UNIKUBE_OIDC_ISSUER"]; on {
		t.Error("the defaults turn single sign-on on")
	}
	if _, err := helm(t, "template", "rel", chartDir, "--set", "oidc.issuer=https://login.example.com"); err == nil || !strings.Contains(err.Error(), "oidc.clientID is required") {
		t.Errorf("an issuer without a client ID: %v, want an error naming oidc.clientID", err)
	}
}

func TestChart_PlacementAndResourcesReachThePod(t *testing.T) {
	r := render(t, "--set", "nodeSelector.pool=platform",
		"--set", "tolerations[0].key=dedicated", "--set", "tolerations[0].operator=Exists",
		"--set", "resources.limits.cpu=2", "--set", "priorityClassName=platform-critical",
		"--set", "imagePullSecrets[0].name=regcred")
	pod := r.deployment.Spec.Template.Spec
	if pod.NodeSelector["pool"] != "platform" || len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "dedicated" {
		t.Errorf("placement not passed on: nodeSelector %v tolerations %+v", pod.NodeSelector, pod.Tolerations)
	}
	if pod.PriorityClassName != "platform-critical" || len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("priorityClassName %q imagePullSecrets %+v", pod.PriorityClassName, pod.ImagePullSecrets)
	}
	if q := r.container(t).Resources.Limits[corev1.ResourceCPU]; q.String() != "2" {
		t.Errorf("cpu limit = %s, want 2", q.String())
	}
}

func TestChart_VersionTracksTheAppVersion(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Version == "" || meta.Version != strings.TrimPrefix(meta.AppVersion, "v") {
		t.Errorf("Chart.yaml version %q and appVersion %q differ; the release sets both to the platform's version", meta.Version, meta.AppVersion)
	}
	if got := render(t).container(t).Image; got != "ghcr.io/unikubehq/unikube-platform:"+meta.AppVersion {
		t.Errorf("default image = %q, want the appVersion tag", got)
	}
	// What the release does (make chart): package the chart at the
	// platform's version, the tag the images are pushed with.
	dir := t.TempDir()
	pack := exec.CommandContext(t.Context(), "bash", "../../scripts/package-chart.sh", "v1.4.0", dir)
	pack.Env = append(os.Environ(), "HELM_BIN="+helmBin(t), "HELM_CONFIG_HOME="+dir, "HELM_CACHE_HOME="+dir, "HELM_DATA_HOME="+dir)
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package-chart.sh v1.4.0: %v\n%s", err, out)
	}
	pkg := filepath.Join(dir, "unikube-platform-1.4.0.tgz")
	out, err := helm(t, "template", "rel", pkg)
	if err != nil {
		t.Fatalf("helm template of the package: %v", err)
	}
	if !strings.Contains(out, `image: "ghcr.io/unikubehq/unikube-platform:v1.4.0"`) {
		t.Error("the chart packaged for v1.4.0 does not default to image tag v1.4.0")
	}
	pinned := render(t, "--set", "image.digest=sha256:"+strings.Repeat("ab", 32)).container(t).Image
	if pinned != "ghcr.io/unikubehq/unikube-platform@sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("digest-pinned image = %q", pinned)
	}
}

func TestChart_RefusesBadValuesWithAClearMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error
	}{
		{"unknown key", []string{"--set", "replicas=3"}, "additional properties 'replicas' not allowed"},
		{"misspelt nested key", []string{"--set", "storage.shared.databse.url=postgres://x"}, "additional properties 'databse' not allowed"},
		{"unknown storage mode", []string{"--set", "storage.mode=sqlite"}, "at '/storage/mode': value must be one of 'embedded', 'shared'"},
		{"zero replicas", []string{"--set", "replicaCount=0"}, "at '/replicaCount': minimum: got 0, want 1"},
		{"duration not Go's", []string{"--set", "config.jobTokenTTL=1d"}, "at '/config/jobTokenTTL'"},
		{"bad log level", []string{"--set", "config.logLevel=verbose"}, "at '/config/logLevel'"},
		{"port out of range", []string{"--set", "service.port=70000"}, "at '/service/port'"},
		{"bad digest", []string{"--set", "image.digest=latest"}, "at '/image/digest'"},
		{"short admin token", []string{"--set", "adminToken.value=hunter2hunter2"}, "adminToken.value is shorter than 16 characters"},
		{"bad secret key", []string{"--set", "secretKey.value=not-a-key-at-all"}, "secretKey.value is not 32 bytes"},
		{"shared without a database", []string{"--set", "storage.mode=shared", "--set", "storage.shared.blobStore.url=s3://b"}, "storage.mode=shared needs the PostgreSQL database"},
		{"shared without a bucket", []string{"--set", "storage.mode=shared", "--set", "storage.shared.database.url=postgres://u@h/db"}, "storage.mode=shared needs the S3 bucket"},
		{"shared with a MySQL URL", []string{"--set", "storage.mode=shared", "--set", "storage.shared.database.url=mysql://u:" + dbPassword + "@h/db", "--set", "storage.shared.blobStore.url=s3://b"}, "storage.shared.database.url must be a PostgreSQL URL"},
		{"shared with a directory for chunks", []string{"--set", "storage.mode=shared", "--set", "storage.shared.database.url=postgres://u@h/db", "--set", "storage.shared.blobStore.url=/data/chunks"}, "storage.shared.blobStore.url must be an S3 bucket URL"},
		{"half the S3 keys", []string{"--set", "storage.mode=shared", "--set", "storage.shared.database.url=postgres://u@h/db", "--set", "storage.shared.blobStore.url=s3://b", "--set", "storage.shared.blobStore.accessKeyId=" + s3Key}, "accessKeyId is set without storage.shared.blobStore.secretAccessKey"},
		{"metrics on the server's port", []string{"--set", "metrics.enabled=true", "--set", "metrics.port=8080"}, "metrics.port 8080 is the server's own port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helm(t, append([]string{"template", "rel", chartDir}, tc.args...)...)
			if err == nil {
				t.Fatalf("helm template accepted %v", tc.args)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not say %q:\n%v", tc.want, err)
			}
			for _, secret := range []string{dbPassword, s3Key, "hunter2hunter2", "not-a-key-at-all"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes a secret value:\n%v", err)
				}
			}
		})
	}
}
