package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"

	"github.com/unikubehq/terraform-provider-unikube/internal/agentproto"
	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/rbac"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// CaptureOptions of one capture from a namespace.
type CaptureOptions struct {
	Client    kubernetes.Interface
	Namespace string
	// Platform commits the version (with the caller's token).
	Platform    *client.Client
	PlatformURL string // as pods reach it (default: the client's)
	// UploadToken goes into the agent Jobs' Secret: an upload token for the
	// state (client.CreateUploadToken), which may only upload chunks to and
	// commit versions of it; never the caller's own. The agents need no
	// more: they upload chunks and their component description, and the
	// caller reads the descriptions back and commits.
	UploadToken string
	Project     string
	State       string
	// Tag of the new version (default @new-candidate).
	Tag, Revision, Message string
	// Mappings name the components; Kind must be set on each.
	Mappings []discovery.Mapping
	// Quiesce stops the workloads using each component while it is dumped
	// (a consistent copy of volumes).
	Quiesce    bool
	AgentImage string
	// CABundle and CAConfigMap: see Options.
	CABundle    []byte
	CAConfigMap string
	// ClientVersion: see Options.ClientVersion.
	ClientVersion    string
	Concurrency      int
	DeleteFailedJobs bool
	SkipRBACCheck    bool
	Timeout          time.Duration
	QuiesceOptions   quiesce.Options
	Logger           *slog.Logger
	// Release is recorded in the version's manifest: the Helm release the
	// data was captured from (chart and values).
	Release *statepkg.ReleaseInfo
}

// Capture dumps every mapped component with an agent Job next to its data,
// each uploading its chunks, and commits one version of them all.
func Capture(ctx context.Context, o CaptureOptions) (client.Version, error) {
	log := agentDefaults(o.Logger, &o.AgentImage, &o.ClientVersion)
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.PlatformURL == "" {
		o.PlatformURL = o.Platform.Endpoint()
	}
	if o.Tag == "" {
		o.Tag = statepkg.ExprNewCandidate
	}
	if o.UploadToken == "" {
		return client.Version{}, errors.New("capture: no upload token for the agent Jobs")
	}
	cs, ns := o.Client, o.Namespace
	if !o.SkipRBACCheck {
		want, err := rbac.Needed(rbac.OpCapture)
		if err != nil {
			return client.Version{}, err
		}
		if err := rbac.Check(ctx, cs, ns, want); err != nil {
			return client.Version{}, fmt.Errorf("capture (nothing was changed): %w", err)
		}
	}
	for _, m := range o.Mappings {
		if m.Kind == "" {
			return client.Version{}, fmt.Errorf("capture: component %q: set its kind (postgres, mysql, redis, volume, kubernetes)", m.Component)
		}
	}
	kubeMs, jobMs := splitKube(o.Mappings)
	targets, err := discovery.Resolve(ctx, cs, ns, jobMs)
	if err != nil {
		return client.Version{}, err
	}
	state := o.Project + "/" + o.State
	if o.CAConfigMap, err = caConfigMap(ctx, cs, ns, o.CAConfigMap, o.CABundle, o.Platform); err != nil {
		return client.Version{}, fmt.Errorf("capture %s (nothing was changed): %w", state, err)
	}
	var quiesced []quiesce.Workload
	if o.Quiesce {
		for _, t := range targets {
			for _, w := range t.Quiesce {
				if !slices.Contains(quiesced, w) {
					quiesced = append(quiesced, w)
				}
			}
		}
		if err := quiesce.Down(ctx, cs, ns, quiesced, o.QuiesceOptions); err != nil {
			return client.Version{}, errors.Join(fmt.Errorf("quiesce: %w", err), quiesce.Up(context.WithoutCancel(ctx), cs, ns, quiesced, o.QuiesceOptions))
		}
	}
	blobs := make([]string, len(targets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for i, t := range targets {
		g.Go(func() error {
			args := agentproto.Capture{
				Common: agentproto.Common{Platform: o.PlatformURL, State: state, Component: t.Component, Kind: t.Kind,
					Options: t.Options, Interval: agentproto.JobInterval},
				Source: t.URL, NoCommit: true,
			}.Args()
			res, err := jobs.Run(gctx, cs, jobs.Spec{
				Namespace: ns, Component: t.Component, Image: t.Image, AgentImage: o.AgentImage, ClientVersion: o.ClientVersion, Args: args,
				Token: o.UploadToken, Password: t.Password, PasswordRef: t.PasswordRef, PVC: t.PVC, NodeName: t.Node, CAConfigMap: o.CAConfigMap,
				RunAsUser: t.RunAsUser, RunAsGroup: t.RunAsGroup, FSGroup: t.FSGroup, Fit: t.Fit, Resources: t.Resources, Deadline: o.Timeout,
				Labels: map[string]string{LabelMode: ModeCapture},
			}, jobs.RunOptions{DeleteOnFailure: o.DeleteFailedJobs, Logger: log})
			if err != nil {
				return fmt.Errorf("capture component %s: %w", t.Component, err)
			}
			if res.Last.ComponentBlob == "" {
				return fmt.Errorf("capture component %s: the agent reported no component description", t.Component)
			}
			blobs[i] = res.Last.ComponentBlob
			return nil
		})
	}
	// ConfigMaps/Secrets are read through the API server, here, while the
	// agent Jobs run.
	var kubeComps []statepkg.Component
	g.Go(func() error {
		comps, err := captureKube(gctx, o, kubeMs)
		kubeComps = comps
		return err
	})
	capErr := g.Wait()
	if o.Quiesce {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		if err := quiesce.Up(uctx, cs, ns, quiesced, o.QuiesceOptions); err != nil {
			capErr = errors.Join(capErr, fmt.Errorf("scale workloads back (run recover to retry): %w", err))
		}
	}
	if capErr != nil {
		return client.Version{}, fmt.Errorf("capture %s from %s: %w", state, ns, capErr)
	}
	m := &statepkg.Manifest{SchemaVersion: statepkg.SchemaVersion, State: state, Revision: o.Revision, Message: o.Message,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	store := o.Platform.Chunks(o.Project, o.State)
	for i, d := range blobs {
		compressed, err := store.Get(ctx, d)
		if err != nil {
			return client.Version{}, fmt.Errorf("component %s: fetch its description: %w", targets[i].Component, err)
		}
		raw, err := statepkg.DecodeChunk(d, compressed)
		if err != nil {
			return client.Version{}, fmt.Errorf("component %s: %w", targets[i].Component, err)
		}
		var c statepkg.Component
		if err := json.Unmarshal(raw, &c); err != nil {
			return client.Version{}, fmt.Errorf("component %s: decode its description: %w", targets[i].Component, err)
		}
		m.Components = append(m.Components, c)
	}
	m.Components = append(m.Components, kubeComps...)
	m.Release = o.Release
	if err := m.Validate(); err != nil {
		return client.Version{}, fmt.Errorf("capture %s: %w", state, err)
	}
	v, err := o.Platform.CommitVersion(ctx, o.Project, o.State, o.Tag, m)
	if err != nil {
		return client.Version{}, fmt.Errorf("commit the captured version of %s: %w", state, err)
	}
	return v, nil
}
