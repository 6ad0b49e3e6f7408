// Package kubernetes is the driver of `kubernetes` components: selected
// ConfigMaps and Secrets of a namespace. Capture writes them as one JSON
// object per line (format "k8s-objects"), without server-owned fields;
// restore rewrites their values with substitution rules (so a state
// captured in `staging` can be cloned into `dev-alice`) and creates or
// updates them in the target namespace through the API server.
//
// Unlike the database drivers this one runs in the executor's process (it
// only talks to the API server), never in an agent Job.
package kubernetes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Format of the component stream.
const Format = "k8s-objects"

// Annotations written on restored objects: which version they hold, so a
// plan can skip objects already applied.
const (
	AnnotationState  = "unikube.dev/state"
	AnnotationDigest = "unikube.dev/state-digest"
)

// Object kinds this driver handles.
const (
	KindConfigMap = "ConfigMap"
	KindSecret    = "Secret"
)

// Meta keys of a captured component.
const (
	MetaNamespace = "namespace" // where it was captured
	MetaObjects   = "objects"   // "ConfigMap/a,Secret/b"
)

// maxStream bounds what restore reads into memory: a Secret or ConfigMap
// is at most 1 MiB, so this is room for a few hundred of them.
const maxStream = 256 << 20

// Object is one captured ConfigMap or Secret: what the user wrote, none of
// what the server owns (uid, resourceVersion, managedFields, owners).
type Object struct {
	Kind        string            `json:"kind"`
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Type        string            `json:"type,omitempty"` // Secret type
	Immutable   bool              `json:"immutable,omitempty"`
	// Data holds ConfigMap data and Secret data alike (base64 in JSON).
	Data map[string][]byte `json:"data,omitempty"`
	// BinaryData is a ConfigMap's binaryData; substitution leaves it alone.
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

// Ref is "Kind/name".
func (o Object) Ref() string { return o.Kind + "/" + o.Name }

// Driver captures and restores `kubernetes` components through one API
// client.
type Driver struct {
	client k8s.Interface
	rules  []substitution.Rule
}

// New returns a driver acting through cs; rules rewrite values on restore.
func New(cs k8s.Interface, rules []substitution.Rule) *Driver {
	return &Driver{client: cs, rules: rules}
}

// Kind implements driver.Driver.
func (*Driver) Kind() statepkg.Kind { return statepkg.KindKubernetes }

// URL returns the source/target URL of namespace ns.
func URL(ns string) string { return "kubernetes://" + ns }

// namespace reads the namespace from "kubernetes://NS" or the
// "namespace" option.
func namespace(u string, opts map[string]string) (string, error) {
	if ns := opts["namespace"]; ns != "" {
		return ns, nil
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "kubernetes" || p.Host == "" {
		return "", fmt.Errorf("kubernetes component: target %q: want kubernetes://NAMESPACE", u)
	}
	return p.Host, nil
}

// Selection says which objects a capture takes. Options:
//
//	selector  label selector ("app.kubernetes.io/instance=shop")
//	names     comma-separated "ConfigMap/a", "Secret/b" or bare names (either kind)
//	kinds     "ConfigMap", "Secret" or both (default both)
//	exclude   comma-separated names ("ConfigMap/a", "b") left out
//	exclude_selectors  label selectors separated by ";": an object any
//	          of them matches is left out
//
// With neither names nor selector every ConfigMap and Secret is taken,
// except what Kubernetes, Helm and unikube-state own themselves. An
// exclusion wins over a name.
type selection struct {
	selector string
	names    []string
	kinds    []string
	excludes []string
	exclSels []labels.Selector
}

// Option names of a capture's exclusions.
const (
	OptionExclude          = "exclude"
	OptionExcludeSelectors = "exclude_selectors"
)

// excluded reports whether an --exclude names or matches kind/name.
func (s selection) excluded(kind, name string, lbls map[string]string) bool {
	if slices.Contains(s.excludes, name) || slices.Contains(s.excludes, kind+"/"+name) {
		return true
	}
	for _, sel := range s.exclSels {
		if sel.Matches(labels.Set(lbls)) {
			return true
		}
	}
	return false
}

func parseSelection(opts map[string]string) (selection, error) {
	s := selection{selector: opts["selector"], kinds: []string{KindConfigMap, KindSecret}}
	if v := opts["kinds"]; v != "" {
		s.kinds = nil
		for k := range strings.SplitSeq(v, ",") {
			switch k = strings.TrimSpace(k); strings.ToLower(k) {
			case "configmap", "configmaps":
				s.kinds = append(s.kinds, KindConfigMap)
			case "secret", "secrets":
				s.kinds = append(s.kinds, KindSecret)
			default:
				return s, fmt.Errorf("kubernetes component: kind %q: want ConfigMap or Secret", k)
			}
		}
	}
	if v := opts["names"]; v != "" {
		for n := range strings.SplitSeq(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				s.names = append(s.names, n)
			}
		}
	}
	for n := range strings.SplitSeq(opts[OptionExclude], ",") {
		if n = strings.TrimSpace(n); n != "" {
			s.excludes = append(s.excludes, n)
		}
	}
	for e := range strings.SplitSeq(opts[OptionExcludeSelectors], ";") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		sel, err := labels.Parse(e)
		if err != nil {
			return s, fmt.Errorf("kubernetes component: exclude selector %q: %w", e, err)
		}
		s.exclSels = append(s.exclSels, sel)
	}
	return s, nil
}

// wants reports whether an object of kind/name (not excluded) is selected
// by name; with no names everything is.
func (s selection) wantsName(kind, name string) bool {
	if len(s.names) == 0 {
		return true
	}
	return slices.Contains(s.names, name) || slices.Contains(s.names, kind+"/"+name)
}

// skipped are objects a capture leaves out unless named: they belong to
// Kubernetes, Helm or unikube-state itself. Named, the protected ones
// fail the capture.
func skipped(kind, name, typ string, labels map[string]string) bool {
	return Protected(kind, name, typ, labels) != "" || (kind == KindConfigMap && name == "kube-root-ca.crt")
}

// helmReleasePrefix starts the name of every Helm 3 release record
// ("sh.helm.release.v1.NAME.vN").
const helmReleasePrefix = "sh.helm.release.v1."

// Protected says why an object is never captured or restored, or "": Helm
// release records (a restored one would rewrite a release's history and
// what `helm upgrade` and rollback act on), service-account token Secrets
// (credentials the cluster mints; a restored one would bind a token of the
// package's choosing to an account), and unikube-state's own apply
// records and Job credentials.
func Protected(kind, name, typ string, labels map[string]string) string {
	switch {
	case strings.HasPrefix(name, helmReleasePrefix) || strings.HasPrefix(typ, "helm.sh/") || labels["owner"] == "helm":
		return "a Helm release record"
	case kind == KindSecret && typ == string(corev1.SecretTypeServiceAccountToken):
		return "a service-account token Secret"
	case labels["app.kubernetes.io/managed-by"] == "unikube-state" || labels["owner"] == "unikube-state":
		return "an object of unikube-state itself (an apply record or Job credentials)"
	}
	return ""
}

// cleanAnnotations drops annotations that describe an earlier apply rather
// than the object.
func cleanAnnotations(a map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		if k == "kubectl.kubernetes.io/last-applied-configuration" || k == AnnotationState || k == AnnotationDigest {
			continue
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Capture implements driver.Driver: the selected objects, sorted by kind
// and name so an unchanged selection gives the same bytes (and chunks).
func (d *Driver) Capture(ctx context.Context, src driver.Source, w io.Writer, p driver.Progress) (driver.CaptureResult, error) {
	ns, err := namespace(src.URL, src.Options)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	sel, err := parseSelection(src.Options)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	objs, err := d.list(ctx, ns, sel)
	if err != nil {
		return driver.CaptureResult{}, err
	}
	if len(objs) == 0 {
		return driver.CaptureResult{}, fmt.Errorf("kubernetes component: no ConfigMap or Secret in %s matches (selector %q, names %v)", ns, sel.selector, sel.names)
	}
	cw := &driver.CountingWriter{W: w}
	enc := json.NewEncoder(cw)
	refs := make([]string, 0, len(objs))
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			return driver.CaptureResult{}, fmt.Errorf("kubernetes component: write %s: %w", o.Ref(), err)
		}
		refs = append(refs, o.Ref())
	}
	comp := src.Option("component", "")
	p.Emit(driver.Event{Component: comp, Phase: driver.PhaseCapture, Bytes: cw.N, Rows: int64(len(objs))})
	return driver.CaptureResult{Format: Format, Meta: map[string]string{
		MetaNamespace: ns, MetaObjects: strings.Join(refs, ","), "count": strconv.Itoa(len(objs)),
	}}, nil
}

func (d *Driver) list(ctx context.Context, ns string, sel selection) ([]Object, error) {
	lo := metav1.ListOptions{LabelSelector: sel.selector}
	var objs []Object
	found := map[string]bool{}
	if slices.Contains(sel.kinds, KindConfigMap) {
		cms, err := d.client.CoreV1().ConfigMaps(ns).List(ctx, lo)
		if err != nil {
			return nil, fmt.Errorf("kubernetes component: list ConfigMaps in %s: %w", ns, err)
		}
		for _, cm := range cms.Items {
			if sel.excluded(KindConfigMap, cm.Name, cm.Labels) {
				found[KindConfigMap+"/"+cm.Name], found[cm.Name] = true, true
				continue
			}
			named := len(sel.names) > 0 && sel.wantsName(KindConfigMap, cm.Name)
			if !sel.wantsName(KindConfigMap, cm.Name) || (!named && skipped(KindConfigMap, cm.Name, "", cm.Labels)) {
				continue
			}
			if why := Protected(KindConfigMap, cm.Name, "", cm.Labels); why != "" {
				return nil, fmt.Errorf("kubernetes component: ConfigMap/%s in %s is %s, which is never captured or restored", cm.Name, ns, why)
			}
			o := Object{Kind: KindConfigMap, Name: cm.Name, Labels: cm.Labels, Annotations: cleanAnnotations(cm.Annotations),
				Immutable: cm.Immutable != nil && *cm.Immutable, BinaryData: cm.BinaryData}
			if len(cm.Data) > 0 {
				o.Data = map[string][]byte{}
				for k, v := range cm.Data {
					o.Data[k] = []byte(v)
				}
			}
			objs = append(objs, o)
			found[KindConfigMap+"/"+cm.Name], found[cm.Name] = true, true
		}
	}
	if slices.Contains(sel.kinds, KindSecret) {
		ss, err := d.client.CoreV1().Secrets(ns).List(ctx, lo)
		if err != nil {
			return nil, fmt.Errorf("kubernetes component: list Secrets in %s: %w", ns, err)
		}
		for _, s := range ss.Items {
			if sel.excluded(KindSecret, s.Name, s.Labels) {
				found[KindSecret+"/"+s.Name], found[s.Name] = true, true
				continue
			}
			named := len(sel.names) > 0 && sel.wantsName(KindSecret, s.Name)
			if !sel.wantsName(KindSecret, s.Name) || (!named && skipped(KindSecret, s.Name, string(s.Type), s.Labels)) {
				continue
			}
			if why := Protected(KindSecret, s.Name, string(s.Type), s.Labels); why != "" {
				return nil, fmt.Errorf("kubernetes component: Secret/%s in %s is %s, which is never captured or restored", s.Name, ns, why)
			}
			objs = append(objs, Object{Kind: KindSecret, Name: s.Name, Labels: s.Labels, Annotations: cleanAnnotations(s.Annotations),
				Type: string(s.Type), Immutable: s.Immutable != nil && *s.Immutable, Data: s.Data})
			found[KindSecret+"/"+s.Name], found[s.Name] = true, true
		}
	}
	var missing []string
	for _, n := range sel.names {
		if !found[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("kubernetes component: %s not found in %s (selector %q, kinds %v)", strings.Join(missing, ", "), ns, sel.selector, sel.kinds)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Ref() < objs[j].Ref() })
	return objs, nil
}

// Plan implements driver.Driver: skip when every object of the component
// already carries this version's digest.
func (d *Driver) Plan(ctx context.Context, c statepkg.Component, t driver.Target) (driver.ComponentPlan, error) {
	ns, err := namespace(t.URL, t.Options)
	if err != nil {
		return driver.ComponentPlan{}, err
	}
	for i, r := range d.rules {
		if err := r.Validate(); err != nil {
			return driver.ComponentPlan{}, fmt.Errorf("substitution rule %d: %w", i, err)
		}
	}
	cp := driver.ComponentPlan{Component: c.Name, Kind: c.Kind, Target: t.URL, Action: driver.ActionReplace,
		Strategy: "update", Bytes: c.Size}
	refs, err := manifestRefs(c)
	if err != nil {
		return cp, fmt.Errorf("kubernetes component %s: %w", c.Name, err)
	}
	cp.Files = int64(len(refs))
	missing, current := 0, 0
	for _, ref := range refs {
		kind, name, _ := strings.Cut(ref, "/")
		m, err := d.getMeta(ctx, ns, kind, name)
		if err == nil {
			if why := Protected(kind, name, "", m.Labels); why != "" {
				return cp, fmt.Errorf("kubernetes component %s: %w: %s in %s is %s, which a state never overwrites", c.Name, ErrObjectsRefused, ref, ns, why)
			}
		}
		switch {
		case apierrors.IsNotFound(err):
			missing++
		case err != nil:
			return cp, fmt.Errorf("kubernetes component %s: get %s in %s: %w", c.Name, ref, ns, err)
		case m.Annotations[AnnotationDigest] == t.Digest && t.Digest != "":
			current++
		}
	}
	switch {
	case len(refs) > 0 && current == len(refs) && t.Force:
		cp.Reason = "every object already holds this version; re-applying because force is set"
	case len(refs) > 0 && current == len(refs):
		cp.Action, cp.Reason, cp.Current, cp.Bytes = driver.ActionSkip, "every object already holds this version", t.Digest, 0
	case missing == len(refs):
		cp.Action, cp.Reason = driver.ActionCreate, fmt.Sprintf("%d objects to create in %s", missing, ns)
	default:
		cp.Reason = fmt.Sprintf("%d objects to update, %d to create in %s", len(refs)-missing, missing, ns)
	}
	if len(d.rules) > 0 {
		cp.Warnings = append(cp.Warnings, fmt.Sprintf("%d substitution rules rewrite values", len(d.rules)))
	}
	return cp, nil
}

func (d *Driver) getMeta(ctx context.Context, ns, kind, name string) (metav1.ObjectMeta, error) {
	switch kind {
	case KindConfigMap:
		o, err := d.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return metav1.ObjectMeta{}, err
		}
		return o.ObjectMeta, nil
	case KindSecret:
		o, err := d.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return metav1.ObjectMeta{}, err
		}
		return o.ObjectMeta, nil
	}
	return metav1.ObjectMeta{}, fmt.Errorf("kind %q: want ConfigMap or Secret", kind)
}

// Decode reads a component stream.
func Decode(r io.Reader) ([]Object, error) {
	br := bufio.NewReader(io.LimitReader(r, maxStream+1))
	dec := json.NewDecoder(br)
	// A field Object lacks ("namespace", "metadata", ...) would be dropped
	// silently: refuse it, the object is not what capture writes.
	dec.DisallowUnknownFields()
	var objs []Object
	for {
		var o Object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode object %d: %w", len(objs)+1, err)
		}
		if o.Kind != KindConfigMap && o.Kind != KindSecret {
			return nil, fmt.Errorf("object %d (%s): kind %q: want ConfigMap or Secret", len(objs)+1, o.Name, o.Kind)
		}
		if o.Name == "" {
			return nil, fmt.Errorf("object %d: no name", len(objs)+1)
		}
		objs = append(objs, o)
	}
	if dec.InputOffset() > maxStream {
		return nil, fmt.Errorf("component stream larger than %d MiB", maxStream>>20)
	}
	return objs, nil
}

// Substitute applies rules to the data of objs and returns how many values
// changed.
func Substitute(rules []substitution.Rule, objs []Object) (int, error) {
	n := 0
	for i := range objs {
		o := &objs[i]
		so := &substitution.Object{Kind: o.Kind, Name: o.Name, Labels: o.Labels, Annotations: o.Annotations, Data: o.Data}
		if so.Data == nil {
			so.Data = map[string][]byte{}
		}
		c, err := substitution.Apply(rules, so)
		if err != nil {
			return n, fmt.Errorf("%s: %w", o.Ref(), err)
		}
		o.Data = so.Data
		n += c
	}
	return n, nil
}

// previous is an object as it was before restore touched it (nil: absent).
type previous struct {
	obj       Object
	cm        *corev1.ConfigMap
	secret    *corev1.Secret
	createdBy bool
}

// Restore implements driver.Driver. Every chunk is verified and every
// rule applied before the first object is written; objects are then
// created or updated one by one, and when one fails those already written
// are put back as they were.
func (d *Driver) Restore(ctx context.Context, c statepkg.Component, src driver.ChunkSource, t driver.Target, p driver.Progress) (driver.ComponentResult, error) {
	res := driver.ComponentResult{Component: c.Name, Kind: c.Kind, Action: driver.ActionReplace, Strategy: "update"}
	ns, err := namespace(t.URL, t.Options)
	if err != nil {
		return res, err
	}
	var buf bytes.Buffer
	if err := src.ReadRange(ctx, 0, c.Size, &buf); err != nil {
		return res, fmt.Errorf("kubernetes component %s: read (nothing was changed): %w", c.Name, err)
	}
	res.Bytes = int64(buf.Len())
	p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseDownload, Bytes: res.Bytes})
	objs, err := Decode(&buf)
	if err != nil {
		return res, fmt.Errorf("kubernetes component %s (nothing was changed): %w", c.Name, err)
	}
	if err := checkObjects(c, objs); err != nil {
		return res, fmt.Errorf("kubernetes component %s (nothing was changed): %w", c.Name, err)
	}
	if _, err := Substitute(d.rules, objs); err != nil {
		return res, fmt.Errorf("kubernetes component %s: substitution (nothing was changed): %w", c.Name, err)
	}
	if err := d.checkTargets(ctx, ns, objs); err != nil {
		return res, fmt.Errorf("kubernetes component %s (nothing was changed): %w", c.Name, err)
	}
	var done []previous
	for _, o := range objs {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		} else {
			o.Annotations = maps.Clone(o.Annotations)
		}
		o.Annotations[AnnotationState], o.Annotations[AnnotationDigest] = t.State, t.Digest
		prev, err := d.put(ctx, ns, o)
		if err != nil {
			back := done
			if prev.cm != nil || prev.secret != nil {
				// o was there before: put it back too, a failed replace
				// (delete, then create) may have deleted it.
				back = append(back, prev)
			}
			rerr := d.rollback(context.WithoutCancel(ctx), ns, back)
			if rerr != nil {
				return res, errors.Join(fmt.Errorf("kubernetes component %s: write %s in %s: %w", c.Name, o.Ref(), ns, err),
					fmt.Errorf("put back the objects already written: %w", rerr))
			}
			return res, fmt.Errorf("kubernetes component %s: write %s in %s (the %d objects written before were put back): %w", c.Name, o.Ref(), ns, len(done), err)
		}
		done = append(done, prev)
		res.Rows++
		p.Emit(driver.Event{Component: c.Name, Phase: driver.PhaseRestore, Rows: 1})
	}
	res.FilesWritten = res.Rows
	return res, nil
}

// ErrObjectsRefused marks a component stream whose objects a restore
// refuses: not the manifest's list, or objects never restored.
var ErrObjectsRefused = errors.New("refusing kubernetes objects")

// manifestRefs returns the manifest's list of objects ("Kind/name"), each
// a ConfigMap or Secret, once, and none a protected name.
func manifestRefs(c statepkg.Component) ([]string, error) {
	v := c.Meta[MetaObjects]
	if v == "" {
		return nil, fmt.Errorf("%w: the manifest lists no objects (meta %q)", ErrObjectsRefused, MetaObjects)
	}
	refs := strings.Split(v, ",")
	seen := make(map[string]bool, len(refs))
	for _, ref := range refs {
		kind, name, _ := strings.Cut(ref, "/")
		switch {
		case kind != KindConfigMap && kind != KindSecret || name == "":
			return nil, fmt.Errorf("%w: the manifest lists %q: want ConfigMap/NAME or Secret/NAME", ErrObjectsRefused, ref)
		case seen[ref]:
			return nil, fmt.Errorf("%w: the manifest lists %s twice", ErrObjectsRefused, ref)
		}
		if why := Protected(kind, name, "", nil); why != "" {
			return nil, fmt.Errorf("%w: the manifest lists %s, %s, which is never restored", ErrObjectsRefused, ref, why)
		}
		seen[ref] = true
	}
	return refs, nil
}

// checkObjects refuses a stream that is not exactly the objects the
// manifest lists (what the plan showed), or that holds an object never
// restored.
func checkObjects(c statepkg.Component, objs []Object) error {
	refs, err := manifestRefs(c)
	if err != nil {
		return err
	}
	listed := make(map[string]bool, len(refs))
	for _, r := range refs {
		listed[r] = true
	}
	seen := make(map[string]bool, len(objs))
	for i, o := range objs {
		ref := o.Ref()
		switch {
		case seen[ref]:
			return fmt.Errorf("%w: object %d (%s) appears twice in the data", ErrObjectsRefused, i+1, ref)
		case !listed[ref]:
			return fmt.Errorf("%w: object %d (%s) is in the data but not in the manifest's list %s", ErrObjectsRefused, i+1, ref, c.Meta[MetaObjects])
		}
		if why := Protected(o.Kind, o.Name, o.Type, o.Labels); why != "" {
			return fmt.Errorf("%w: object %d (%s) is %s, which is never restored", ErrObjectsRefused, i+1, ref, why)
		}
		seen[ref] = true
	}
	for _, r := range refs {
		if !seen[r] {
			return fmt.Errorf("%w: the manifest lists %s but the data does not hold it", ErrObjectsRefused, r)
		}
	}
	return nil
}

// checkTargets refuses to overwrite, before anything is written, an
// object of the target namespace that is protected: an ordinary Secret of
// the package must not replace a Helm release record or a token Secret
// of the same name.
func (d *Driver) checkTargets(ctx context.Context, ns string, objs []Object) error {
	for _, o := range objs {
		var why string
		switch o.Kind {
		case KindConfigMap:
			cur, err := d.client.CoreV1().ConfigMaps(ns).Get(ctx, o.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("get %s in %s: %w", o.Ref(), ns, err)
			}
			why = Protected(KindConfigMap, cur.Name, "", cur.Labels)
		case KindSecret:
			cur, err := d.client.CoreV1().Secrets(ns).Get(ctx, o.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("get %s in %s: %w", o.Ref(), ns, err)
			}
			why = Protected(KindSecret, cur.Name, string(cur.Type), cur.Labels)
		}
		if why != "" {
			return fmt.Errorf("%w: %s in %s is %s, which a state never overwrites", ErrObjectsRefused, o.Ref(), ns, why)
		}
	}
	return nil
}

// put creates or updates o (an immutable object that differs is deleted
// and created again) and returns what was there before.
func (d *Driver) put(ctx context.Context, ns string, o Object) (previous, error) {
	prev := previous{obj: o}
	var err error
	switch o.Kind {
	case KindConfigMap:
		prev.cm, prev.createdBy, err = upsert(ctx, d.client.CoreV1().ConfigMaps(ns), configMap(ns, o), func(cur *corev1.ConfigMap) bool {
			return isTrue(cur.Immutable)
		})
		return prev, err
	case KindSecret:
		want := secret(ns, o)
		prev.secret, prev.createdBy, err = upsert(ctx, d.client.CoreV1().Secrets(ns), want, func(cur *corev1.Secret) bool {
			// The type of a Secret cannot change in place.
			return isTrue(cur.Immutable) || (want.Type != "" && cur.Type != want.Type)
		})
		return prev, err
	}
	return prev, fmt.Errorf("kind %q: want ConfigMap or Secret", o.Kind)
}

// rollback puts back the objects written so far, last first.
func (d *Driver) rollback(ctx context.Context, ns string, done []previous) error {
	var errs []error
	for i := len(done) - 1; i >= 0; i-- {
		pv := done[i]
		var err error
		switch {
		case pv.createdBy && pv.obj.Kind == KindConfigMap:
			err = d.client.CoreV1().ConfigMaps(ns).Delete(ctx, pv.obj.Name, metav1.DeleteOptions{})
		case pv.createdBy:
			err = d.client.CoreV1().Secrets(ns).Delete(ctx, pv.obj.Name, metav1.DeleteOptions{})
		case pv.cm != nil:
			_, _, err = upsert(ctx, d.client.CoreV1().ConfigMaps(ns), pv.cm.DeepCopy(), func(cur *corev1.ConfigMap) bool {
				return isTrue(cur.Immutable)
			})
		case pv.secret != nil:
			_, _, err = upsert(ctx, d.client.CoreV1().Secrets(ns), pv.secret.DeepCopy(), func(cur *corev1.Secret) bool {
				return isTrue(cur.Immutable) || cur.Type != pv.secret.Type
			})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s: %w", pv.obj.Ref(), err))
		}
	}
	return errors.Join(errs...)
}

// objectAPI is what upsert needs of the typed ConfigMap and Secret clients.
type objectAPI[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// upsert writes want: created when absent, deleted and created again when
// replace says the current object cannot take it in place (immutable, a
// Secret's type), updated otherwise. It returns the object found before
// (zero when there was none or the Get failed) and whether it was absent.
// want's UID and resourceVersion are set here: an object put back may
// carry those of a version since deleted.
func upsert[T metav1.Object](ctx context.Context, api objectAPI[T], want T, replace func(cur T) bool) (before T, absent bool, err error) {
	var none T
	want.SetUID("")
	want.SetResourceVersion("")
	cur, err := api.Get(ctx, want.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
		return none, true, err
	}
	if err != nil {
		return none, false, err
	}
	if replace(cur) {
		if err := api.Delete(ctx, want.GetName(), metav1.DeleteOptions{}); err != nil {
			return cur, false, err
		}
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
		return cur, false, err
	}
	want.SetResourceVersion(cur.GetResourceVersion())
	_, err = api.Update(ctx, want, metav1.UpdateOptions{})
	return cur, false, err
}

func isTrue(b *bool) bool { return b != nil && *b }

func meta(ns string, o Object) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: o.Name, Namespace: ns, Labels: o.Labels, Annotations: o.Annotations}
}

func configMap(ns string, o Object) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{ObjectMeta: meta(ns, o), BinaryData: o.BinaryData}
	if len(o.Data) > 0 {
		cm.Data = map[string]string{}
		for k, v := range o.Data {
			cm.Data[k] = string(v)
		}
	}
	if o.Immutable {
		cm.Immutable = &o.Immutable
	}
	return cm
}

func secret(ns string, o Object) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: meta(ns, o), Data: o.Data, Type: corev1.SecretType(o.Type)}
	if o.Immutable {
		s.Immutable = &o.Immutable
	}
	return s
}
