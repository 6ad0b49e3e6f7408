package commands

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/buildinfo"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// Labels of the seed hook Jobs the post-renderer adds.
const (
	LabelRelease = "unikube.dev/release"
	LabelHook    = "unikube.dev/hook"
)

// postRenderOptions are the hidden post-render command's flags, set by
// install/upgrade through --post-renderer-args.
type postRenderOptions struct {
	state, release, namespace string
	maps                      []string
	resources                 []string
	onUpgrade                 bool
	timeout                   time.Duration
}

func newPostRenderCmd(s *Settings) *cobra.Command {
	var o postRenderOptions
	cmd := &cobra.Command{
		Use:    "post-render",
		Short:  "Helm post-renderer: append post-install seed hook Jobs (used by helm state install/upgrade)",
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := io.ReadAll(s.In)
			if err != nil {
				return fmt.Errorf("read the rendered manifests: %w", err)
			}
			out, err := postRender(s.Context(cmd), s, o, in)
			if err != nil {
				// Helm 4 swallows a post-renderer plugin's stderr: leave
				// the error where helm state install finds it.
				if p := s.Getenv(EnvPostRenderErrors); p != "" {
					_ = os.WriteFile(p, []byte(err.Error()), 0o600)
				}
				return err
			}
			_, err = s.Out.Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.state, "state", "", "state reference to seed with")
	fl.StringVar(&o.release, "release", "", "release name")
	fl.StringVar(&o.namespace, "release-namespace", "", "release namespace")
	fl.StringArrayVar(&o.maps, "map", nil, "component=Kind/NAME")
	fl.StringArrayVar(&o.resources, "agent-resources", nil, agentResourcesUsage)
	fl.BoolVar(&o.onUpgrade, "on-upgrade", false, "also run the seed as a post-upgrade hook")
	fl.DurationVar(&o.timeout, "seed-timeout", 30*time.Minute, "time limit per seed Job")
	return cmd
}

var docSplit = regexp.MustCompile(`(?m)^---\s*$`)

// postRender appends to the rendered manifests one hook Job (and its
// token Secret) per component of the state's version: the same agent Job
// the executor runs, as a post-install hook, so helm install --wait
// returns when the data is in and fails when a seed fails.
func postRender(ctx context.Context, s *Settings, o postRenderOptions, in []byte) ([]byte, error) {
	if o.state == "" || o.release == "" || o.namespace == "" {
		return nil, usageErrorf("post-render needs --state, --release and --release-namespace (use helm state install)")
	}
	ref, err := parseRef(o.state)
	if err != nil {
		return nil, err
	}
	explicit := map[string]string{}
	for _, m := range o.maps {
		c, t, ok := strings.Cut(m, "=")
		if !ok {
			return nil, usageErrorf("--map %q: want component=Kind/NAME", m)
		}
		explicit[c] = t
	}
	ns := o.namespace
	var objs []runtime.Object
	var sts []appsv1.StatefulSet
	var deps []appsv1.Deployment
	decode := scheme.Codecs.UniversalDeserializer().Decode
	for _, doc := range docSplit.Split(string(in), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj, _, err := decode([]byte(doc), nil, nil)
		if err != nil {
			continue // kinds client-go does not know (CRDs) hold no workloads
		}
		if mo, ok := obj.(metav1.Object); ok && mo.GetNamespace() == "" {
			mo.SetNamespace(ns)
		}
		switch x := obj.(type) {
		case *appsv1.StatefulSet:
			sts = append(sts, *x)
			for _, v := range x.Spec.VolumeClaimTemplates {
				objs = append(objs, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: v.Name + "-" + x.Name + "-0", Namespace: ns}})
			}
		case *appsv1.Deployment:
			deps = append(deps, *x)
		case *corev1.Service, *corev1.PersistentVolumeClaim, *corev1.Secret, *corev1.ConfigMap:
		default:
			continue
		}
		objs = append(objs, obj)
	}
	pc, err := s.Platform()
	if err != nil {
		return nil, err
	}
	v, err := pc.Resolve(ctx, ref)
	if err != nil {
		return nil, platformErr("state "+ref.String(), err)
	}
	m, digest, err := pc.GetManifest(ctx, ref.Project, ref.State, v.Digest)
	if err != nil {
		return nil, platformErr("manifest of "+ref.String(), err)
	}
	var comps []discovery.Component
	for _, c := range m.Components {
		switch c.Kind {
		case statepkg.KindPostgres, statepkg.KindMySQL, statepkg.KindRedis, statepkg.KindVolume:
			comps = append(comps, discovery.Component{Name: c.Name, Kind: c.Kind})
		default:
			fmt.Fprintf(s.Err, "helm state: component %s (%s) cannot be seeded by a hook Job; apply it with helm state apply\n", c.Name, c.Kind)
		}
	}
	rel := discovery.ReleaseFromObjects(o.release, ns, sts, deps)
	mappings, err := rel.Map(comps, explicit)
	if err != nil {
		return nil, err
	}
	if err := agentResources(mappings, o.resources); err != nil {
		return nil, err
	}
	// Discovery runs against the rendered objects, as they will be.
	targets, err := discovery.Resolve(ctx, fake.NewSimpleClientset(objs...), ns, mappings)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", o.release, err)
	}
	jt, err := pc.CreateJobToken(ctx, ref.Project, ref.State, digest, o.timeout+2*time.Hour)
	if err != nil {
		return nil, platformErr("mint a job token for "+ref.String(), err)
	}
	platformURL := firstNonEmpty(s.PlatformURL, pc.Endpoint())
	hook := "post-install"
	if o.onUpgrade {
		hook += ",post-upgrade"
	}
	var buf bytes.Buffer
	buf.Write(bytes.TrimRight(in, "\n"))
	buf.WriteString("\n")
	// The seed Jobs verify the platform with the plugin's CA bundle: a
	// ConfigMap of the release (removed with it), named after the release
	// so that a new bundle changes no Job template.
	caConfigMap := s.CAConfigMap
	if ca := pc.CACertificate(); caConfigMap == "" && len(ca) > 0 {
		cm := jobs.CABundleConfigMap(ns, ca)
		cm.Name = strings.TrimRight(truncateName(o.release, 52), "-.") + "-unikube-ca"
		cm.Labels[LabelRelease] = o.release
		cm.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
		b, err := yaml.Marshal(cm)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n# Source: helm-state/ca-bundle\n")
		buf.Write(b)
		caConfigMap = cm.Name
	}
	for i, t := range targets {
		args := agentproto.Restore{
			Common: agentproto.Common{Platform: platformURL, State: ref.StateName(), Component: t.Component, Kind: t.Kind,
				Options: t.Options, Interval: agentproto.JobInterval},
			Version: digest, Target: t.URL,
		}.Args()
		job, secret := jobs.Build(jobs.Spec{
			Namespace: ns, Name: seedJobName(o.release, t.Component, digest), Component: t.Component, Image: t.Image,
			AgentImage: firstNonEmpty(s.AgentImage, executor.DefaultAgentImage()), ClientVersion: buildinfo.Get().Version, Args: args, Token: jt.Token,
			Password: t.Password, PasswordRef: t.PasswordRef, PVC: t.PVC, RunAsUser: t.RunAsUser, RunAsGroup: t.RunAsGroup,
			FSGroup: t.FSGroup, Fit: t.Fit, Resources: t.Resources, Deadline: o.timeout, CAConfigMap: caConfigMap,
			Labels: map[string]string{LabelRelease: o.release, LabelHook: "true", executor.LabelMode: executor.ModeRestore},
		})
		// Helm 3 runs no hooks a post-renderer adds (hooks are split off
		// before post-rendering): the seed Jobs are ordinary resources of
		// the release, and helm state install adds --wait-for-jobs so
		// helm install --wait returns when they are done and fails when
		// one fails. Each waits for its service first (the database starts
		// at the same time).
		if w := waitContainer(t, job.Spec.Template.Spec.Containers[0].SecurityContext); w != nil {
			// The agent's resources: a namespace quota demands them of every container.
			w.Resources = *job.Spec.Template.Spec.Containers[0].Resources.DeepCopy()
			job.Spec.Template.Spec.InitContainers = append([]corev1.Container{*w}, job.Spec.Template.Spec.InitContainers...)
		}
		// A couple of retries absorb a database that restarts right after
		// answering; a broken state still fails within a minute.
		job.Spec.BackoffLimit = ptrTo(int32(2))
		job.Annotations = map[string]string{"unikube.dev/seed-order": fmt.Sprint(i), "unikube.dev/seed-events": hook}
		secret.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
		job.TypeMeta = metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}
		for _, obj := range []any{secret, job} {
			b, err := yaml.Marshal(obj)
			if err != nil {
				return nil, err
			}
			buf.WriteString("---\n# Source: helm-state/seed-" + t.Component + "\n")
			buf.Write(b)
		}
	}
	return buf.Bytes(), nil
}

// seedJobName is stable for one version, so an upgrade with the same state
// keeps the finished Job and another version makes a new one (a Job's
// template cannot change).
func seedJobName(release, component, digest string) string {
	n := release + "-seed-" + component
	if len(n) > 44 {
		n = strings.TrimRight(n[:44], "-.")
	}
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 7 {
		d = d[:7]
	}
	return strings.ToLower(n + "-" + d)
}

// waitContainer waits until the target database answers (its own client
// in its own image), or nil for volumes.
func waitContainer(t discovery.Target, sc *corev1.SecurityContext) *corev1.Container {
	u, err := url.Parse(t.URL)
	if err != nil || t.Image == "" {
		return nil
	}
	host, port := u.Hostname(), u.Port()
	var probe string
	switch t.Kind {
	case statepkg.KindPostgres:
		probe = "pg_isready -q -h " + host + " -p " + port
	case statepkg.KindMySQL:
		probe = "(mariadb-admin ping -h " + host + " -P " + port + " || mysqladmin ping -h " + host + " -P " + port + ") >/dev/null 2>&1"
	case statepkg.KindRedis:
		probe = "redis-cli -h " + host + " -p " + port + " ping >/dev/null 2>&1"
	default:
		return nil
	}
	return &corev1.Container{
		Name: "wait-for-service", Image: t.Image, ImagePullPolicy: corev1.PullIfNotPresent,
		// Three answers in a row: a fresh database's entrypoint restarts
		// the server once after initialising it.
		Command:         []string{"sh", "-c", "ok=0; while [ $ok -lt 3 ]; do if " + probe + "; then ok=$((ok+1)); else ok=0; echo waiting for " + host + ":" + port + "; fi; sleep 2; done"},
		SecurityContext: sc,
	}
}

func ptrTo[T any](v T) *T { return &v }

func truncateName(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
