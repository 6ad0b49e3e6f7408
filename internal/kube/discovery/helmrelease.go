package discovery

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	helmdriver "helm.sh/helm/v4/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// ErrReleaseNotFound says a Helm release has no release record in a
// namespace.
var ErrReleaseNotFound = errors.New("release not found")

// Release is what a Helm release deployed that holds data: its
// StatefulSets and Deployments with their images and PVCs.
type Release struct {
	Name      string
	Namespace string
	Revision  int
	Chart     string
	Status    string
	Workloads []ReleaseWorkload
	// Info is the chart reference and values of the newest revision.
	Info *statepkg.ReleaseInfo
	// Config are the ConfigMaps and Secrets the release's manifest makes
	// in its namespace (hooks not included), in manifest order.
	Config []ConfigObject
}

// ConfigObject is a ConfigMap or Secret of a release's manifest.
type ConfigObject struct {
	Kind   string // ConfigMap or Secret
	Name   string
	Type   string // a Secret's type
	Labels map[string]string
}

// ReleaseWorkload is one StatefulSet or Deployment of a release.
type ReleaseWorkload struct {
	Workload quiesce.Workload
	Images   []string
	// Claims are the PVCs its pods mount (StatefulSet claim templates
	// expanded for ordinal 0).
	Claims []string
}

// Component names a component of a version and its kind.
type Component struct {
	Name string
	Kind statepkg.Kind
}

// LoadRelease reads the newest revision of Helm release name in ns from
// Helm's own storage (release Secrets, or ConfigMaps with
// HELM_DRIVER=configmap), and the live StatefulSets and Deployments of its
// manifest. When the manifest has none (e.g. an operator makes them), the
// workloads labelled app.kubernetes.io/instance=<name> are used.
func LoadRelease(ctx context.Context, cs kubernetes.Interface, ns, name string) (*Release, error) {
	_ = ctx // the Helm storage drivers take no context
	rel, err := lastRelease(cs, ns, name)
	if err != nil {
		return nil, err
	}
	r := &Release{Name: name, Namespace: ns, Revision: rel.Version}
	if rel.Info != nil {
		r.Status = rel.Info.Status.String()
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		r.Chart = rel.Chart.Metadata.Name + "-" + rel.Chart.Metadata.Version
	}
	r.Info = releaseInfo(rel)
	type head struct {
		Kind     string `json:"kind"`
		Type     string `json:"type"`
		Metadata struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	var names []quiesce.Workload
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var h head
		if yaml.Unmarshal([]byte(doc), &h) != nil || h.Metadata.Name == "" {
			continue
		}
		if h.Metadata.Namespace != "" && h.Metadata.Namespace != ns {
			continue
		}
		switch h.Kind {
		case "StatefulSet":
			names = append(names, quiesce.Workload{Kind: quiesce.StatefulSet, Name: h.Metadata.Name})
		case "Deployment":
			names = append(names, quiesce.Workload{Kind: quiesce.Deployment, Name: h.Metadata.Name})
		case "ConfigMap", "Secret":
			r.Config = append(r.Config, ConfigObject{Kind: h.Kind, Name: h.Metadata.Name, Type: h.Type, Labels: h.Metadata.Labels})
		}
	}
	if len(names) == 0 {
		sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + name}
		sts, err := cs.AppsV1().StatefulSets(ns).List(ctx, sel)
		if err != nil {
			return nil, fmt.Errorf("list statefulsets of release %s: %w", name, err)
		}
		for _, s := range sts.Items {
			r.Workloads = append(r.Workloads, stsWorkload(&s))
		}
		ds, err := cs.AppsV1().Deployments(ns).List(ctx, sel)
		if err != nil {
			return nil, fmt.Errorf("list deployments of release %s: %w", name, err)
		}
		for _, d := range ds.Items {
			r.Workloads = append(r.Workloads, deployWorkload(&d))
		}
		return r, nil
	}
	for _, w := range names {
		switch w.Kind {
		case quiesce.StatefulSet:
			s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, w.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue // not (yet) created: nothing to restore into
			}
			if err != nil {
				return nil, fmt.Errorf("release %s: %s: %w", name, w, err)
			}
			r.Workloads = append(r.Workloads, stsWorkload(s))
		default:
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, w.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("release %s: %s: %w", name, w, err)
			}
			r.Workloads = append(r.Workloads, deployWorkload(d))
		}
	}
	return r, nil
}

// releaseInfo is the chart reference and values of a release record.
func releaseInfo(rel *release.Release) *statepkg.ReleaseInfo {
	info := &statepkg.ReleaseInfo{Name: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Values: rel.Config}
	if rel.Chart != nil {
		if md := rel.Chart.Metadata; md != nil {
			info.Chart = statepkg.ChartRef{Name: md.Name, Version: md.Version, AppVersion: md.AppVersion}
		}
		info.DefaultValues = rel.Chart.Values
	}
	if len(info.Values) == 0 {
		info.Values = nil
	}
	if len(info.DefaultValues) == 0 {
		info.DefaultValues = nil
	}
	info.Overridden = statepkg.OverriddenKeys(info.Values, info.DefaultValues)
	return info
}

// lastRelease returns the newest revision of a release from the Secrets
// driver, or the ConfigMaps driver when there are no release Secrets.
func lastRelease(cs kubernetes.Interface, ns, name string) (*release.Release, error) {
	var lastErr error
	for _, d := range []helmdriver.Driver{
		helmdriver.NewSecrets(cs.CoreV1().Secrets(ns)),
		helmdriver.NewConfigMaps(cs.CoreV1().ConfigMaps(ns)),
	} {
		rels, err := d.Query(map[string]string{"name": name, "owner": "helm"})
		if errors.Is(err, helmdriver.ErrReleaseNotFound) {
			continue
		}
		if err != nil {
			lastErr = err
			continue
		}
		// Helm 4's drivers return releases behind an interface; the
		// Secrets and ConfigMaps drivers store only v1 releases.
		v1rels := make([]*release.Release, 0, len(rels))
		for _, rr := range rels {
			switch r := rr.(type) {
			case *release.Release:
				v1rels = append(v1rels, r)
			case release.Release:
				v1rels = append(v1rels, &r)
			default:
				lastErr = fmt.Errorf("unsupported Helm release record type %T", rr)
			}
		}
		releaseutil.Reverse(v1rels, releaseutil.SortByRevision)
		if len(v1rels) > 0 {
			return v1rels[0], nil
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("read Helm release %s in namespace %s: %w", name, ns, lastErr)
	}
	return nil, fmt.Errorf("%w: no Helm release %q in namespace %s (check helm list -n %s, or pass --namespace)", ErrReleaseNotFound, name, ns, ns)
}

func stsWorkload(s *appsv1.StatefulSet) ReleaseWorkload {
	p := stsPod(s.Name, s.Spec.Template, s.Spec.VolumeClaimTemplates)
	return ReleaseWorkload{Workload: p.w, Images: images(s.Spec.Template.Spec), Claims: p.claims}
}

func deployWorkload(d *appsv1.Deployment) ReleaseWorkload {
	return ReleaseWorkload{Workload: quiesce.Workload{Kind: quiesce.Deployment, Name: d.Name},
		Images: images(d.Spec.Template.Spec), Claims: claims(d.Spec.Template)}
}

func images(spec corev1.PodSpec) []string {
	out := make([]string, 0, len(spec.Containers))
	for _, c := range spec.Containers {
		out = append(out, c.Image)
	}
	return out
}

// imageKind says which database an image runs, from its repository name.
func imageKind(image string) statepkg.Kind {
	repo := image
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		repo = repo[i+1:]
	}
	repo, _, _ = strings.Cut(repo, "@")
	repo, _, _ = strings.Cut(repo, ":")
	repo = strings.ToLower(repo)
	switch {
	case strings.Contains(repo, "postgres") || strings.Contains(repo, "postgis") || strings.Contains(repo, "timescale"):
		return statepkg.KindPostgres
	case strings.Contains(repo, "mysql") || strings.Contains(repo, "mariadb") || strings.Contains(repo, "percona"):
		return statepkg.KindMySQL
	case strings.Contains(repo, "redis") || strings.Contains(repo, "valkey") || strings.Contains(repo, "keydb"):
		return statepkg.KindRedis
	}
	return ""
}

// Kind is the database the workload runs ("" for an app).
func (w ReleaseWorkload) Kind() statepkg.Kind {
	for _, im := range w.Images {
		if k := imageKind(im); k != "" {
			return k
		}
	}
	return ""
}

// nameMatches says whether a workload or PVC name stands for component:
// equal, or <release>-<component>, or ending in -<component>.
func nameMatches(name, component string) bool {
	return name == component || strings.HasSuffix(name, "-"+component) || strings.HasPrefix(name, component+"-")
}

// Map maps each component to a workload (postgres, mysql, redis: the
// StatefulSet/Deployment whose image runs that database) or a PVC
// (volume) of the release. explicit maps a component to "Kind/name"
// (StatefulSet/NAME, Deployment/NAME or pvc/NAME) and wins. A component
// that maps to nothing or to several things is an error naming them, and
// telling the user to pass --map.
func (r *Release) Map(comps []Component, explicit map[string]string) ([]Mapping, error) {
	known := map[string]bool{}
	for _, c := range comps {
		known[c.Name] = true
	}
	for name := range explicit {
		if !known[name] {
			return nil, fmt.Errorf("--map names component %q, which the version does not have (it has %s)", name, componentNames(comps))
		}
	}
	var out []Mapping
	var problems []string
	for _, c := range comps {
		m := Mapping{Component: c.Name, Kind: c.Kind}
		if target, ok := explicit[c.Name]; ok {
			if err := r.explicit(&m, target); err != nil {
				return nil, fmt.Errorf("--map %s=%s: %w", c.Name, target, err)
			}
			out = append(out, m)
			continue
		}
		switch c.Kind {
		case statepkg.KindPostgres, statepkg.KindMySQL, statepkg.KindRedis:
			var cands []string
			for _, w := range r.Workloads {
				if w.Kind() == c.Kind {
					cands = append(cands, w.Workload.String())
				}
			}
			pick, problem := choose(c, cands, r.Name)
			if problem != "" {
				problems = append(problems, problem)
				continue
			}
			m.Workload = pick
		case statepkg.KindVolume:
			owner := map[string]string{}
			var cands []string
			for _, w := range r.Workloads {
				if w.Kind() != "" {
					continue // a database's own volume is restored through the database
				}
				for _, cl := range w.Claims {
					if _, dup := owner[cl]; !dup {
						owner[cl] = w.Workload.String()
						cands = append(cands, cl)
					}
				}
			}
			pick, problem := choose(c, cands, r.Name)
			if problem != "" {
				problems = append(problems, problem)
				continue
			}
			m.Workload, m.PVC = owner[pick], pick
		default:
			// kubernetes (and other in-process kinds) need no workload.
		}
		out = append(out, m)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("release %s: %s", r.Name, strings.Join(problems, "; "))
	}
	return out, nil
}

// choose picks the one candidate for c, narrowing several by name.
func choose(c Component, cands []string, release string) (string, string) {
	what := "workload"
	flag := "StatefulSet/NAME or Deployment/NAME"
	if c.Kind == statepkg.KindVolume {
		what, flag = "PVC", "pvc/NAME"
	}
	if len(cands) == 1 {
		return cands[0], ""
	}
	if len(cands) == 0 {
		return "", fmt.Sprintf("component %s (%s) maps to no %s of release %s: pass --map %s=%s", c.Name, c.Kind, what, release, c.Name, flag)
	}
	var named []string
	for _, cand := range cands {
		_, n, ok := strings.Cut(cand, "/")
		if !ok || c.Kind == statepkg.KindVolume {
			n = cand
		}
		if nameMatches(n, c.Name) {
			named = append(named, cand)
		}
	}
	if len(named) == 1 {
		return named[0], ""
	}
	sort.Strings(cands)
	return "", fmt.Sprintf("component %s (%s) maps to several %ss of release %s (%s): pass --map %s=%s", c.Name, c.Kind, what, release, strings.Join(cands, ", "), c.Name, flag)
}

func (r *Release) explicit(m *Mapping, target string) error {
	k, n, ok := strings.Cut(target, "/")
	if !ok || n == "" {
		return fmt.Errorf("want StatefulSet/NAME, Deployment/NAME or pvc/NAME")
	}
	switch strings.ToLower(k) {
	case "pvc", "persistentvolumeclaim", "persistentvolumeclaims":
		if m.Kind != statepkg.KindVolume {
			return fmt.Errorf("a PVC can only hold a volume component, %s is %s", m.Component, m.Kind)
		}
		for _, w := range r.Workloads {
			for _, cl := range w.Claims {
				if cl == n {
					m.Workload, m.PVC = w.Workload.String(), n
					return nil
				}
			}
		}
		return fmt.Errorf("no workload of release %s mounts PVC %s", r.Name, n)
	}
	w, err := ParseWorkload(target)
	if err != nil {
		return err
	}
	m.Workload = w.String()
	return nil
}

// Components proposes components for a capture from the release: one per
// database workload (named after the workload without the release
// prefix) and one per PVC of the other workloads.
func (r *Release) Components() []Mapping {
	var out []Mapping
	short := func(n string) string {
		if s := strings.TrimPrefix(n, r.Name+"-"); s != "" {
			return s
		}
		return n
	}
	for _, w := range r.Workloads {
		if k := w.Kind(); k != "" {
			out = append(out, Mapping{Component: short(w.Workload.Name), Kind: k, Workload: w.Workload.String()})
			continue
		}
		for _, cl := range w.Claims {
			out = append(out, Mapping{Component: short(cl), Kind: statepkg.KindVolume, Workload: w.Workload.String(), PVC: cl})
		}
	}
	return out
}

func componentNames(cs []Component) string {
	n := make([]string, len(cs))
	for i, c := range cs {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}

// ReleaseFromObjects is a Release made of rendered objects (a chart not
// installed yet, e.g. in a post-renderer).
func ReleaseFromObjects(name, ns string, sts []appsv1.StatefulSet, deps []appsv1.Deployment) *Release {
	r := &Release{Name: name, Namespace: ns}
	for i := range sts {
		r.Workloads = append(r.Workloads, stsWorkload(&sts[i]))
	}
	for i := range deps {
		r.Workloads = append(r.Workloads, deployWorkload(&deps[i]))
	}
	return r
}
