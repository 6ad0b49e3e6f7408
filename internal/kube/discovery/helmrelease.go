package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

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
	// Installed is when this install of the release was first deployed:
	// apply records older than it are of an earlier install.
	Installed time.Time
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
	// Ports are the container ports its pods declare.
	Ports []int32
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
		r.Status, r.Installed = rel.Info.Status.String(), rel.Info.FirstDeployed
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
			if lastErr == nil {
				lastErr = err // the Secrets driver's: Helm's default storage
			}
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
	return ReleaseWorkload{Workload: p.w, Images: images(s.Spec.Template.Spec), Claims: p.claims, Ports: ports(s.Spec.Template.Spec)}
}

func deployWorkload(d *appsv1.Deployment) ReleaseWorkload {
	return ReleaseWorkload{Workload: quiesce.Workload{Kind: quiesce.Deployment, Name: d.Name},
		Images: images(d.Spec.Template.Spec), Claims: claims(d.Spec.Template), Ports: ports(d.Spec.Template.Spec)}
}

func ports(spec corev1.PodSpec) []int32 {
	var out []int32
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			out = append(out, p.ContainerPort)
		}
	}
	return out
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
	case (strings.Contains(repo, "opensearch") || strings.Contains(repo, "elasticsearch")) && !searchCompanion(repo):
		return statepkg.KindOpenSearch
	}
	return ""
}

// searchCompanion says whether a repository named after a search server
// is one of the tools that run next to it (dashboards, exporters,
// operators), which hold no indexes.
func searchCompanion(repo string) bool {
	for _, w := range []string{"dashboards", "kibana", "exporter", "operator", "curator"} {
		if strings.Contains(repo, w) {
			return true
		}
	}
	return false
}

// SearchHTTPPort is the REST port of OpenSearch and Elasticsearch, and
// searchTransportPort their node-to-node port.
const (
	SearchHTTPPort      = 9200
	searchTransportPort = 9300
)

// Kind is the database the workload runs ("" for an app). A search server
// is known by its image, or, for an image named otherwise (a company's own
// build), by declaring both the REST (9200) and transport (9300) ports; an
// image named after one that declares ports but not 9200 is not taken for
// a node (a coordinating sidecar, a differently configured service).
func (w ReleaseWorkload) Kind() statepkg.Kind {
	for _, im := range w.Images {
		k := imageKind(im)
		if k == statepkg.KindOpenSearch && len(w.Ports) > 0 && !slices.Contains(w.Ports, SearchHTTPPort) {
			continue
		}
		if k != "" {
			return k
		}
	}
	if slices.Contains(w.Ports, SearchHTTPPort) && slices.Contains(w.Ports, searchTransportPort) {
		return statepkg.KindOpenSearch
	}
	return ""
}

// nameMatches says whether a workload or PVC name stands for component:
// equal, or <release>-<component>, or ending in -<component>.
func nameMatches(name, component string) bool {
	return name == component || strings.HasSuffix(name, "-"+component) || strings.HasPrefix(name, component+"-")
}

// Unplaced is one component a release's workloads do not place: none or
// several of them fit (Candidates).
type Unplaced struct {
	Component  string
	Kind       statepkg.Kind
	Candidates []string // sorted; empty: none fits
}

// Target is what a mapping of the component names: "StatefulSet/NAME or
// Deployment/NAME", or "pvc/NAME" for a volume.
func (u Unplaced) Target() string {
	if u.Kind == statepkg.KindVolume {
		return "pvc/NAME"
	}
	return "StatefulSet/NAME or Deployment/NAME"
}

func (u Unplaced) String() string {
	what := "workload"
	if u.Kind == statepkg.KindVolume {
		what = "PVC"
	}
	if len(u.Candidates) == 0 {
		return fmt.Sprintf("component %s (%s) maps to no %s", u.Component, u.Kind, what)
	}
	return fmt.Sprintf("component %s (%s) maps to several %ss (%s)", u.Component, u.Kind, what, strings.Join(u.Candidates, ", "))
}

// MappingError says components of a version cannot be placed among a
// release's workloads. It names no flag or block: each front end says
// how its user maps a component (--map, mapping { }).
type MappingError struct {
	Release  string
	Unplaced []Unplaced
}

func (e *MappingError) Error() string {
	parts := make([]string, len(e.Unplaced))
	for i, u := range e.Unplaced {
		parts[i] = u.String()
	}
	return fmt.Sprintf("release %s: %s", e.Release, strings.Join(parts, "; "))
}

// ExplicitMappingError says an explicit mapping cannot be used: it names
// a component the version does not have (Have lists those it has), or a
// target the release does not have (Err).
type ExplicitMappingError struct {
	Component, Target string
	Have              []string
	Err               error
}

func (e *ExplicitMappingError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("a mapping names component %q, which the version does not have (it has %s)", e.Component, strings.Join(e.Have, ", "))
	}
	return fmt.Sprintf("mapping %s=%s: %v", e.Component, e.Target, e.Err)
}

func (e *ExplicitMappingError) Unwrap() error { return e.Err }

// Map maps each component to a workload (postgres, mysql, redis,
// opensearch: the StatefulSet/Deployment whose image runs that database
// or search server) or a PVC
// (volume) of the release. explicit maps a component to "Kind/name"
// (StatefulSet/NAME, Deployment/NAME or pvc/NAME) and wins. Components
// that map to nothing or to several things are a *MappingError naming
// them; an unusable explicit mapping an *ExplicitMappingError.
func (r *Release) Map(comps []Component, explicit map[string]string) ([]Mapping, error) {
	known := map[string]bool{}
	for _, c := range comps {
		known[c.Name] = true
	}
	for name, target := range explicit {
		if !known[name] {
			return nil, &ExplicitMappingError{Component: name, Target: target, Have: strings.Split(componentNames(comps), ", ")}
		}
	}
	var out []Mapping
	var problems []Unplaced
	for _, c := range comps {
		m := Mapping{Component: c.Name, Kind: c.Kind}
		if target, ok := explicit[c.Name]; ok {
			if err := r.explicit(&m, target); err != nil {
				return nil, &ExplicitMappingError{Component: c.Name, Target: target, Err: err}
			}
			out = append(out, m)
			continue
		}
		switch c.Kind {
		case statepkg.KindPostgres, statepkg.KindMySQL, statepkg.KindRedis, statepkg.KindOpenSearch:
			var cands []string
			for _, w := range r.Workloads {
				if w.Kind() == c.Kind {
					cands = append(cands, w.Workload.String())
				}
			}
			pick, problem := choose(c, cands)
			if problem != nil {
				problems = append(problems, *problem)
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
			pick, problem := choose(c, cands)
			if problem != nil {
				problems = append(problems, *problem)
				continue
			}
			m.Workload, m.PVC = owner[pick], pick
		default:
			// kubernetes (and other in-process kinds) need no workload.
		}
		out = append(out, m)
	}
	if len(problems) > 0 {
		return nil, &MappingError{Release: r.Name, Unplaced: problems}
	}
	return out, nil
}

// choose picks the one candidate for c, narrowing several by name.
func choose(c Component, cands []string) (string, *Unplaced) {
	if len(cands) == 1 {
		return cands[0], nil
	}
	if len(cands) == 0 {
		return "", &Unplaced{Component: c.Name, Kind: c.Kind}
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
		return named[0], nil
	}
	sort.Strings(cands)
	return "", &Unplaced{Component: c.Name, Kind: c.Kind, Candidates: cands}
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
