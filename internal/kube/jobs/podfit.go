package jobs

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// PodFit is what an agent pod takes over from the pod of the workload it
// serves, so that it runs wherever that workload may run: the same pull
// secrets (a database Job runs the database's own image), the same nodes
// and taints, the same priority.
type PodFit struct {
	ImagePullSecrets []corev1.LocalObjectReference
	NodeSelector     map[string]string
	Tolerations      []corev1.Toleration
	// NodeAffinity only: the workload's pod (anti-)affinity is about its
	// own replicas, and a required anti-affinity against the app's pods
	// would keep the agent off the only node that can run it.
	NodeAffinity       *corev1.NodeAffinity
	PriorityClassName  string
	SupplementalGroups []int64
	// NamespaceAssignsUID: the namespace gives pods their uid (OpenShift's
	// restricted SCC, which rejects any uid outside the namespace's
	// range), so no default uid is set when the workload names none.
	NamespaceAssignsUID bool
}

// FitFrom takes the PodFit of a workload's pod spec.
func FitFrom(spec corev1.PodSpec) PodFit {
	f := PodFit{
		ImagePullSecrets:  slices.Clone(spec.ImagePullSecrets),
		NodeSelector:      maps.Clone(spec.NodeSelector),
		Tolerations:       slices.Clone(spec.Tolerations),
		PriorityClassName: spec.PriorityClassName,
	}
	if spec.Affinity != nil && spec.Affinity.NodeAffinity != nil {
		f.NodeAffinity = spec.Affinity.NodeAffinity.DeepCopy()
	}
	if spec.SecurityContext != nil {
		f.SupplementalGroups = slices.Clone(spec.SecurityContext.SupplementalGroups)
	}
	return f
}

// ApplyTo places the pod of spec as f says: f's pull secrets are added to
// spec's, its node selector, tolerations, node affinity, priority class
// and supplemental groups set. Agent, script and hook Jobs share it.
func (f PodFit) ApplyTo(spec *corev1.PodSpec) {
	for _, r := range f.ImagePullSecrets {
		if !slices.Contains(spec.ImagePullSecrets, r) {
			spec.ImagePullSecrets = append(spec.ImagePullSecrets, r)
		}
	}
	if len(f.NodeSelector) > 0 {
		spec.NodeSelector = maps.Clone(f.NodeSelector)
	}
	spec.Tolerations = append(spec.Tolerations, f.Tolerations...)
	if f.NodeAffinity != nil {
		if spec.Affinity == nil {
			spec.Affinity = &corev1.Affinity{}
		}
		spec.Affinity.NodeAffinity = f.NodeAffinity.DeepCopy()
	}
	if f.PriorityClassName != "" {
		spec.PriorityClassName = f.PriorityClassName
	}
	if len(f.SupplementalGroups) > 0 {
		if spec.SecurityContext == nil {
			spec.SecurityContext = &corev1.PodSecurityContext{}
		}
		spec.SecurityContext.SupplementalGroups = slices.Clone(f.SupplementalGroups)
	}
}

// AddPullSecrets appends the pull secrets of refs that f lacks: those of
// the workload's ServiceAccount, which admission adds to the workload's
// pods but not to a Job running under another account (nor to any pod
// that names pull secrets of its own).
func (f *PodFit) AddPullSecrets(refs ...corev1.LocalObjectReference) {
	for _, r := range refs {
		if r.Name != "" && !slices.Contains(f.ImagePullSecrets, r) {
			f.ImagePullSecrets = append(f.ImagePullSecrets, r)
		}
	}
}

// Default resources of an agent container: requests and limits for cpu
// and memory, so the pod is admitted in a namespace whose ResourceQuota
// demands them, and small enough for a LimitRange's usual bounds. The
// agent streams (chunks of at most a few MiB); pg_restore/mysql in a
// database Job need more memory than the agent alone.
var DefaultResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("128Mi"),
	},
	Limits: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1"),
		corev1.ResourceMemory: resource.MustParse("1Gi"),
	},
}

// ResourceKeys are the keys ParseResources and ResourcesFromMap take.
const ResourceKeys = "cpu, memory (request and limit), requests.cpu, requests.memory, limits.cpu, limits.memory"

// ParseResources parses "cpu=250m,memory=512Mi,limits.memory=1Gi" (the
// keys of ResourceKeys; cpu and memory set the request and the limit).
func ParseResources(s string) (*corev1.ResourceRequirements, error) {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("resources %q: %q is not key=quantity (keys: %s)", s, kv, ResourceKeys)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("resources %q: %s given twice", s, k)
		}
		m[k] = v
	}
	return ResourcesFromMap(m)
}

// ResourcesFromMap turns {"cpu": "250m", "limits.memory": "1Gi"} into
// resource requirements; what is not given keeps DefaultResources (see
// Spec.Resources).
func ResourcesFromMap(m map[string]string) (*corev1.ResourceRequirements, error) {
	r := &corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	keys := slices.Sorted(maps.Keys(m))
	// The specific keys win over cpu/memory, whatever the order given.
	slices.SortStableFunc(keys, func(a, b string) int { return strings.Count(a, ".") - strings.Count(b, ".") })
	for _, k := range keys {
		q, err := resource.ParseQuantity(m[k])
		if err != nil {
			return nil, fmt.Errorf("resources: %s=%q is not a quantity (e.g. 250m, 1, 512Mi, 2Gi): %w", k, m[k], err)
		}
		if q.Sign() <= 0 {
			return nil, fmt.Errorf("resources: %s=%q must be more than zero", k, m[k])
		}
		side, name, ok := strings.Cut(k, ".")
		if !ok {
			side, name = "", k
		}
		rn := corev1.ResourceName(name)
		if rn != corev1.ResourceCPU && rn != corev1.ResourceMemory {
			return nil, fmt.Errorf("resources: unknown key %q (keys: %s)", k, ResourceKeys)
		}
		switch side {
		case "":
			r.Requests[rn], r.Limits[rn] = q, q
		case "requests":
			r.Requests[rn] = q
		case "limits":
			r.Limits[rn] = q
		default:
			return nil, fmt.Errorf("resources: unknown key %q (keys: %s)", k, ResourceKeys)
		}
	}
	for rn, req := range r.Requests {
		if lim, ok := r.Limits[rn]; ok && req.Cmp(lim) > 0 {
			return nil, fmt.Errorf("resources: the %s request %s is more than its limit %s", rn, req.String(), lim.String())
		}
	}
	return r, nil
}

// WithDefaults is r with what it leaves out taken from DefaultResources
// (see resources).
func WithDefaults(r *corev1.ResourceRequirements) corev1.ResourceRequirements { return resources(r) }

// resources fills in what r leaves out from DefaultResources; a default
// limit below a given request is raised to the request (and a default
// request above a given limit lowered to it), so the result is valid.
func resources(r *corev1.ResourceRequirements) corev1.ResourceRequirements {
	out := *DefaultResources.DeepCopy()
	if r == nil {
		return out
	}
	for _, rn := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[rn]
		lim, hasLim := r.Limits[rn]
		if hasReq {
			out.Requests[rn] = req
		}
		if hasLim {
			out.Limits[rn] = lim
		}
		if q, l := out.Requests[rn], out.Limits[rn]; q.Cmp(l) > 0 {
			if hasLim {
				out.Requests[rn] = l
			} else {
				out.Limits[rn] = q
			}
		}
	}
	return out
}
