// Package discovery maps the components of a version to what serves them
// in a namespace: the workload (StatefulSet/Deployment), its container
// image, the Service in front of it, its PVC, and the credentials Secret
// the workload already uses (env valueFrom.secretKeyRef). Components are
// found by explicit workload name or by label selector; anything that maps
// to nothing or to more than one thing is an error saying which.
//
// Helm release discovery (release Secrets through the Helm SDK) is not
// built yet; a release's workloads can be selected with the label
// app.kubernetes.io/instance=<release>.
package discovery

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Mapping says how to find one component's target.
type Mapping struct {
	Component string
	Kind      statepkg.Kind
	// Workload names it explicitly ("StatefulSet/db"), or Selector finds it
	// among StatefulSets and Deployments.
	Workload string
	Selector string
	// Container in the workload's pod (default: the only or first one).
	Container string
	// Service/Port override the Service found by selector match.
	Service string
	Port    int
	// Database (postgres/mysql) or db number (redis); default from the
	// container's env (POSTGRES_DB, MARIADB_DATABASE, ...) or "postgres"/0.
	Database string
	User     string
	// PVC for volume components (default: the workload's only PVC);
	// Subpath within it is not supported yet.
	PVC string
	// Quiesce lists workloads ("Deployment/web") to stop while this
	// component is replaced; for volumes the workload mounting the PVC is
	// added.
	Quiesce []string
	// Options are passed to the driver (--option k=v).
	Options map[string]string
	// Resources of the component's agent Job (jobs.ParseResources);
	// nil: jobs.DefaultResources.
	Resources *corev1.ResourceRequirements
}

// Target is a resolved component target.
type Target struct {
	Component string
	Kind      statepkg.Kind
	Workload  quiesce.Workload
	Container string
	Image     string
	// URL is what the agent gets, without a password.
	URL string
	// PasswordRef is the workload's own Secret key; Password a literal env
	// value from the workload spec (then put in the Job's Secret).
	PasswordRef *corev1.SecretKeySelector
	Password    string
	// PasswordEnv is the workload container's variable the password was
	// read from (errors name it with the Secret).
	PasswordEnv string
	PVC         string
	Node        string
	RunAsUser   *int64
	RunAsGroup  *int64
	FSGroup     *int64
	Quiesce     []quiesce.Workload
	Options     map[string]string
	// Fit and Resources go to the agent Job (jobs.Spec).
	Fit       jobs.PodFit
	Resources *corev1.ResourceRequirements
}

// UIDRangeAnnotation is set on the namespaces of OpenShift, whose
// restricted SCC gives each pod a uid from that range.
const UIDRangeAnnotation = "openshift.io/sa.scc.uid-range"

// ParseWorkload parses "Kind/name" (kind case-insensitive, sts/deploy ok).
func ParseWorkload(s string) (quiesce.Workload, error) {
	k, n, ok := strings.Cut(s, "/")
	if !ok || n == "" {
		return quiesce.Workload{}, fmt.Errorf("workload %q: want StatefulSet/NAME or Deployment/NAME", s)
	}
	switch strings.ToLower(k) {
	case "statefulset", "sts", "statefulsets":
		return quiesce.Workload{Kind: quiesce.StatefulSet, Name: n}, nil
	case "deployment", "deploy", "deployments":
		return quiesce.Workload{Kind: quiesce.Deployment, Name: n}, nil
	case "cronjob", "cj", "cronjobs":
		return quiesce.Workload{Kind: quiesce.CronJob, Name: n}, nil
	}
	return quiesce.Workload{}, fmt.Errorf("workload %q: kind must be StatefulSet, Deployment or CronJob", s)
}

// pod is what discovery needs of a workload.
type pod struct {
	w        quiesce.Workload
	template corev1.PodTemplateSpec
	claims   []string // PVC names (StatefulSet templates expanded for ordinal 0)
}

// Resolve finds the target of every mapping in ns.
func Resolve(ctx context.Context, cs kubernetes.Interface, ns string, ms []Mapping) ([]Target, error) {
	var out []Target
	for _, m := range ms {
		t, err := resolve(ctx, cs, ns, m)
		if err != nil {
			return nil, fmt.Errorf("component %q: %w", m.Component, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func resolve(ctx context.Context, cs kubernetes.Interface, ns string, m Mapping) (Target, error) {
	p, err := findWorkload(ctx, cs, ns, m)
	if err != nil {
		return Target{}, err
	}
	t := Target{Component: m.Component, Kind: m.Kind, Workload: p.w, Options: m.Options}
	c, err := container(p.template.Spec, m.Container)
	if err != nil {
		return Target{}, fmt.Errorf("%s: %w", p.w, err)
	}
	t.Container, t.Image = c.Name, c.Image
	if sc := p.template.Spec.SecurityContext; sc != nil {
		t.RunAsUser, t.RunAsGroup, t.FSGroup = sc.RunAsUser, sc.RunAsGroup, sc.FSGroup
	}
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		t.RunAsUser = c.SecurityContext.RunAsUser
	}
	t.Fit, t.Resources = fitOf(ctx, cs, ns, p.template.Spec), m.Resources
	if t.RunAsUser == nil {
		assignedIDs(ctx, cs, ns, p, c.Name, &t)
	}
	for _, q := range m.Quiesce {
		w, err := ParseWorkload(q)
		if err != nil {
			return Target{}, err
		}
		t.Quiesce = append(t.Quiesce, w)
	}
	if m.Kind == statepkg.KindVolume {
		return resolveVolume(ctx, cs, ns, m, p, t)
	}
	host, port, err := service(ctx, cs, ns, m, p)
	if err != nil {
		return Target{}, err
	}
	user, db := m.User, m.Database
	var pwEnv []string
	switch m.Kind {
	case statepkg.KindPostgres:
		user = first(user, envValue(c, "POSTGRES_USER"), "postgres")
		db = first(db, envValue(c, "POSTGRES_DB"), user)
		pwEnv = []string{"POSTGRES_PASSWORD"}
		t.URL = (&url.URL{Scheme: "postgres", User: url.User(user), Host: host + ":" + strconv.Itoa(port), Path: "/" + db, RawQuery: "sslmode=disable"}).String()
	case statepkg.KindMySQL:
		db = first(db, envValue(c, "MARIADB_DATABASE"), envValue(c, "MYSQL_DATABASE"))
		if db == "" {
			return Target{}, fmt.Errorf("%s: no database name: set the mapping's database or MARIADB_DATABASE", p.w)
		}
		user = first(user, "root")
		pwEnv = []string{"MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"}
		if user != "root" {
			pwEnv = []string{"MARIADB_PASSWORD", "MYSQL_PASSWORD"}
		}
		t.URL = (&url.URL{Scheme: "mysql", User: url.User(user), Host: host + ":" + strconv.Itoa(port), Path: "/" + db}).String()
	case statepkg.KindRedis:
		db = first(db, "0")
		pwEnv = []string{"REDIS_PASSWORD"}
		t.URL = (&url.URL{Scheme: "redis", Host: host + ":" + strconv.Itoa(port), Path: "/" + db}).String()
	case statepkg.KindOpenSearch:
		// The agent talks REST to the node's Service: it needs nothing of
		// the node's image, so its Job runs the agent image alone.
		t.Image = ""
		scheme, user, env := searchAccess(c)
		u := &url.URL{Scheme: scheme, Host: host + ":" + strconv.Itoa(port)}
		if user = first(m.User, user); user != "" {
			u.User = url.User(user)
		}
		t.URL = u.String()
		if env != "" {
			pwEnv = []string{env}
		}
	default:
		return Target{}, fmt.Errorf("kind %q cannot run in a cluster yet (postgres, mysql, redis, opensearch, volume)", m.Kind)
	}
	for _, name := range pwEnv {
		if ref, lit, ok := envSource(c, name); ok {
			t.PasswordRef, t.Password, t.PasswordEnv = ref, lit, name
			break
		}
	}
	return t, nil
}

// FitOf is the PodFit of the workload m names (Workload or Selector), for
// Jobs that serve it without being an agent Job of a data component (a
// script component's Job).
func FitOf(ctx context.Context, cs kubernetes.Interface, ns string, m Mapping) (jobs.PodFit, error) {
	p, err := findWorkload(ctx, cs, ns, m)
	if err != nil {
		return jobs.PodFit{}, err
	}
	return fitOf(ctx, cs, ns, p.template.Spec), nil
}

// fitOf is the PodFit of a workload's pod spec, with the pull secrets of
// its ServiceAccount: admission adds those to the workload's pods only.
// Best effort: without the right to read the account (the documented Role
// grants it), the Job gets the template's pull secrets alone.
func fitOf(ctx context.Context, cs kubernetes.Interface, ns string, spec corev1.PodSpec) jobs.PodFit {
	f := jobs.FitFrom(spec)
	name := spec.ServiceAccountName
	if name == "" {
		name = spec.DeprecatedServiceAccount
	}
	if name == "" {
		name = "default"
	}
	if sa, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		f.AddPullSecrets(sa.ImagePullSecrets...)
	}
	return f
}

// assignedIDs fills in the uid (and fsGroup) the namespace gave the
// workload's running pods when its template names none (OpenShift's SCC
// sets them at admission), so the agent writes files as the app does; with
// no such pod, it notes whether the namespace assigns uids, so that the Job
// sets none. Both are best effort: without the rights to look, the Job
// gets the default uid as before.
func assignedIDs(ctx context.Context, cs kubernetes.Interface, ns string, p pod, container string, t *Target) {
	if len(p.template.Labels) > 0 {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(p.template.Labels).String()})
		if err == nil {
			for _, po := range pods.Items {
				if po.DeletionTimestamp != nil {
					continue
				}
				uid := podUID(po.Spec, container)
				if uid == nil || *uid == 0 {
					continue
				}
				t.RunAsUser = uid
				if sc := po.Spec.SecurityContext; sc != nil && t.FSGroup == nil {
					t.FSGroup = sc.FSGroup
				}
				return
			}
		}
	}
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err == nil && n.Annotations[UIDRangeAnnotation] != "" {
		t.Fit.NamespaceAssignsUID = true
	}
}

// podUID is the uid container runs as in an admitted pod spec.
func podUID(spec corev1.PodSpec, container string) *int64 {
	for _, c := range spec.Containers {
		if c.Name == container && c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			return c.SecurityContext.RunAsUser
		}
	}
	if spec.SecurityContext != nil {
		return spec.SecurityContext.RunAsUser
	}
	return nil
}

func resolveVolume(ctx context.Context, cs kubernetes.Interface, ns string, m Mapping, p pod, t Target) (Target, error) {
	t.Image = "" // volume Jobs run the agent image
	t.PVC = m.PVC
	if t.PVC == "" {
		switch len(p.claims) {
		case 0:
			return Target{}, fmt.Errorf("%s mounts no PVC; name one in the mapping", p.w)
		case 1:
			t.PVC = p.claims[0]
		default:
			return Target{}, fmt.Errorf("%s mounts several PVCs %v; name one in the mapping", p.w, p.claims)
		}
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, t.PVC, metav1.GetOptions{}); err != nil {
		return Target{}, fmt.Errorf("PVC %s: %w", t.PVC, err)
	}
	t.URL = "file:///data"
	t.Quiesce = append(t.Quiesce, p.w)
	// A ReadWriteOnce volume is attached to one node: run the Job there.
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, po := range pods.Items {
			for _, v := range po.Spec.Volumes {
				if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == t.PVC && po.Spec.NodeName != "" {
					t.Node = po.Spec.NodeName
				}
			}
		}
	}
	return t, nil
}

// searchAccess reads from a search node's container how its REST API is
// reached: https when the node says its HTTP layer has TLS (or OpenSearch's
// security plugin is on with its initial admin password), and the user
// and password variable of the images' built-in administrator (admin for
// OpenSearch, elastic for Elasticsearch). A node without either has
// security off: plain HTTP, no user.
func searchAccess(c corev1.Container) (scheme, user, passwordEnv string) {
	scheme = "http"
	has := func(name string) bool { _, _, ok := envSource(c, name); return ok }
	switch {
	case has("OPENSEARCH_INITIAL_ADMIN_PASSWORD"):
		user, passwordEnv = "admin", "OPENSEARCH_INITIAL_ADMIN_PASSWORD"
		if !strings.EqualFold(envValue(c, "DISABLE_SECURITY_PLUGIN"), "true") {
			scheme = "https"
		}
	case has("ELASTIC_PASSWORD"):
		user, passwordEnv = "elastic", "ELASTIC_PASSWORD"
	}
	for _, tls := range []string{"plugins.security.ssl.http.enabled", "xpack.security.http.ssl.enabled"} {
		switch strings.ToLower(envValue(c, tls)) {
		case "true":
			scheme = "https"
		case "false":
			scheme = "http"
		}
	}
	return scheme, user, passwordEnv
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func findWorkload(ctx context.Context, cs kubernetes.Interface, ns string, m Mapping) (pod, error) {
	if m.Workload != "" {
		w, err := ParseWorkload(m.Workload)
		if err != nil {
			return pod{}, err
		}
		return getWorkload(ctx, cs, ns, w)
	}
	if m.Selector == "" {
		return pod{}, fmt.Errorf("no workload and no selector: map it to StatefulSet/NAME, Deployment/NAME or a label selector")
	}
	sel, err := labels.Parse(m.Selector)
	if err != nil {
		return pod{}, fmt.Errorf("selector %q: %w", m.Selector, err)
	}
	var found []pod
	sts, err := cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return pod{}, fmt.Errorf("list statefulsets: %w", err)
	}
	for _, s := range sts.Items {
		found = append(found, stsPod(s.Name, s.Spec.Template, s.Spec.VolumeClaimTemplates))
	}
	ds, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return pod{}, fmt.Errorf("list deployments: %w", err)
	}
	for _, d := range ds.Items {
		found = append(found, pod{w: quiesce.Workload{Kind: quiesce.Deployment, Name: d.Name}, template: d.Spec.Template, claims: claims(d.Spec.Template)})
	}
	switch len(found) {
	case 0:
		return pod{}, fmt.Errorf("selector %q matches no StatefulSet or Deployment in %s", m.Selector, ns)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = f.w.String()
	}
	return pod{}, fmt.Errorf("selector %q matches %d workloads (%s); narrow it or name the workload", m.Selector, len(found), strings.Join(names, ", "))
}

func getWorkload(ctx context.Context, cs kubernetes.Interface, ns string, w quiesce.Workload) (pod, error) {
	switch w.Kind {
	case quiesce.CronJob:
		return pod{}, fmt.Errorf("%s cannot hold a component's data; name a StatefulSet or Deployment (CronJobs may only be quiesced)", w)
	case quiesce.StatefulSet:
		s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return pod{}, fmt.Errorf("%s: %w", w, err)
		}
		return stsPod(s.Name, s.Spec.Template, s.Spec.VolumeClaimTemplates), nil
	default:
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return pod{}, fmt.Errorf("%s: %w", w, err)
		}
		return pod{w: w, template: d.Spec.Template, claims: claims(d.Spec.Template)}, nil
	}
}

func stsPod(name string, tpl corev1.PodTemplateSpec, vcts []corev1.PersistentVolumeClaim) pod {
	cl := claims(tpl)
	for _, v := range vcts {
		cl = append(cl, v.Name+"-"+name+"-0")
	}
	return pod{w: quiesce.Workload{Kind: quiesce.StatefulSet, Name: name}, template: tpl, claims: cl}
}

func claims(tpl corev1.PodTemplateSpec) []string {
	var out []string
	for _, v := range tpl.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out = append(out, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return out
}

func container(spec corev1.PodSpec, name string) (corev1.Container, error) {
	if name == "" {
		if len(spec.Containers) == 0 {
			return corev1.Container{}, fmt.Errorf("no containers")
		}
		return spec.Containers[0], nil
	}
	for _, c := range spec.Containers {
		if c.Name == name {
			return c, nil
		}
	}
	return corev1.Container{}, fmt.Errorf("no container %q", name)
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value
		}
	}
	return ""
}

// envSource returns where env var name of c gets its value: a Secret key
// or a literal.
func envSource(c corev1.Container, name string) (*corev1.SecretKeySelector, string, bool) {
	for _, e := range c.Env {
		if e.Name != name {
			continue
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := *e.ValueFrom.SecretKeyRef
			return &ref, "", true
		}
		if e.ValueFrom == nil && e.Value != "" {
			return nil, e.Value, true
		}
	}
	return nil, "", false
}

// service finds the Service in front of the workload: the mapping's, or
// the one Service whose selector matches the pod template's labels.
func service(ctx context.Context, cs kubernetes.Interface, ns string, m Mapping, p pod) (string, int, error) {
	defPort := map[statepkg.Kind]int{statepkg.KindPostgres: 5432, statepkg.KindMySQL: 3306, statepkg.KindRedis: 6379, statepkg.KindOpenSearch: SearchHTTPPort}[m.Kind]
	port := m.Port
	name := m.Service
	if name == "" {
		svcs, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", 0, fmt.Errorf("list services: %w", err)
		}
		var match []corev1.Service
		for _, s := range svcs.Items {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.template.Labels)) {
				match = append(match, s)
			}
		}
		// Prefer a Service exposing the default port (a headless and a
		// normal Service often both select a StatefulSet).
		var best []corev1.Service
		for _, s := range match {
			for _, sp := range s.Spec.Ports {
				if int(sp.Port) == first2(port, defPort) {
					best = append(best, s)
					break
				}
			}
		}
		switch {
		case len(best) >= 1:
			name = best[0].Name
		case len(match) == 1:
			name = match[0].Name
			if port == 0 && len(match[0].Spec.Ports) > 0 {
				port = int(match[0].Spec.Ports[0].Port)
			}
		case len(match) == 0:
			return "", 0, fmt.Errorf("no Service selects the pods of %s; name one in the mapping", p.w)
		default:
			return "", 0, fmt.Errorf("several Services select the pods of %s; name one in the mapping", p.w)
		}
	}
	return name + "." + ns + ".svc.cluster.local", first2(port, defPort), nil
}

func first2(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}
