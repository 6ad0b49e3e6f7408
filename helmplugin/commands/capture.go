package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// EnvUploadToken is a token the capture Jobs upload with (e.g. one from
// the platform's upload-tokens route). Without it, capture mints a
// short-lived upload token for the one state (it may only upload chunks to
// and commit versions of that state) and revokes it afterwards: the Secret
// in the namespace never holds a token that can read or manage anything.
const EnvUploadToken = "UNIKUBE_UPLOAD_TOKEN"

func newCaptureCmd(s *Settings) *cobra.Command {
	var (
		to, message, revision string
		components, maps      []string
		resources             []string
		quiesceOn, dryRun     bool
		timeout               time.Duration
		config                bool
		configSelector        string
		excludes              []string
	)
	cmd := &cobra.Command{
		Use:   "capture RELEASE --to PROJECT/STATE[:TAG]",
		Short: "Capture the data of a release's services as a new version (default tag @new-candidate)",
		Long: `capture dumps the release's databases and volumes with agent Jobs next to the
data and commits them as one new version. The components are those of the
state's newest version when it has one (same names and kinds), else one per
database workload and one per PVC of the release's other workloads.

--config adds a kubernetes component "config" with the release's ConfigMaps
and Secrets: those the release's manifest makes (or, when it makes none,
those labelled app.kubernetes.io/instance=RELEASE; or --config-selector).
Helm's release records, service-account token Secrets and unikube-state's
own Secrets are never taken; --exclude leaves out more by name or label
selector. Secret data is stored as data of the state, readable by whoever
may apply it.

Every capture records the release's chart (name, version, app version),
its user-supplied values, the chart's default values and the overridden
keys in the version's manifest (field "release", part of its digest);
helm state show prints them.`,
		Example: `  helm state capture my-shop --to shop/seed --message "after the migration"
  helm state capture my-shop --to shop/seed:v3 --component db --revision 1.4.0
  helm state capture my-shop --to shop/seed --config --exclude tier=cache --exclude Secret/my-shop-tls`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := s.Context(cmd)
			if to == "" {
				return usageErrorf("--to PROJECT/STATE[:TAG] is required")
			}
			ref, err := parseRef(to)
			if err != nil {
				return err
			}
			tag := statepkg.ExprNewCandidate
			if ref.Digest != "" {
				return usageErrorf("--to %s: a capture makes a new version; name a tag, not a digest", to)
			}
			if strings.Contains(to, ":") {
				e, _ := statepkg.ParseTagExpr(ref.Tag)
				if e.Kind != statepkg.TagLiteral && !e.IsWriteOnly() {
					return usageErrorf("--to %s: use a literal tag, @new-candidate or @random", to)
				}
				tag = ref.Tag
			}
			explicit := map[string]string{}
			for _, m := range maps {
				c, t, ok := strings.Cut(m, "=")
				if !ok || c == "" || t == "" {
					return usageErrorf("--map %q: want component=Kind/NAME", m)
				}
				explicit[c] = t
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			cs, _, err := s.Kube()
			if err != nil {
				return err
			}
			ns := s.Namespace()
			rel, err := discovery.LoadRelease(ctx, cs, ns, a[0])
			if err != nil {
				return err
			}
			mappings, err := captureMappings(ctx, pc, rel, ref, explicit)
			if err != nil {
				return err
			}
			if config || configSelector != "" || len(excludes) > 0 {
				cfg, err := configMapping(rel, configSelector, excludes)
				if err != nil {
					return err
				}
				if mappings, err = withConfig(mappings, cfg); err != nil {
					return err
				}
			}
			for _, i := range unscopedKube(mappings) {
				cfg, err := configMapping(rel, configSelector, excludes)
				if err != nil {
					return err
				}
				cfg.Component = mappings[i].Component
				mappings[i] = cfg
			}
			if len(components) > 0 {
				var keep []discovery.Mapping
				for _, c := range components {
					i := slices.IndexFunc(mappings, func(m discovery.Mapping) bool { return m.Component == c })
					if i < 0 {
						return usageErrorf("--component %s: release %s has no such component (it has %s)", c, a[0], mappingNames(mappings))
					}
					keep = append(keep, mappings[i])
				}
				mappings = keep
			}
			if err := agentResources(mappings, resources); err != nil {
				return err
			}
			if len(mappings) == 0 {
				return fmt.Errorf("release %s has nothing to capture (no database workloads or PVCs): pass --map", a[0])
			}
			plan := CapturePlan{State: ref.StateName(), Tag: tag, Release: a[0], Namespace: ns, Quiesce: quiesceOn}
			for _, m := range mappings {
				target := m.Workload
				if m.PVC != "" {
					target = "pvc/" + m.PVC + " (" + m.Workload + ")"
				}
				if m.Kind == statepkg.KindKubernetes {
					target = configTarget(m)
				}
				plan.Components = append(plan.Components, CaptureItem{Component: m.Component, Kind: string(m.Kind), Target: target})
			}
			if dryRun {
				return s.Print(plan, func(w io.Writer) error {
					fmt.Fprintf(w, "would capture release %s in %s into %s:%s\n", a[0], ns, ref.StateName(), tag)
					row(w, "COMPONENT", "KIND", "SOURCE")
					for _, c := range plan.Components {
						row(w, c.Component, c.Kind, c.Target)
					}
					fmt.Fprintln(w, "\n(dry run: nothing was changed)")
					return nil
				})
			}
			if _, err := pc.GetState(ctx, ref.Project, ref.State); errors.Is(err, client.ErrNotFound) {
				if _, err := pc.CreateState(ctx, ref.Project, ref.State, "captured from Helm release "+a[0]); err != nil {
					return platformErr("create state "+ref.StateName(), err)
				}
			} else if err != nil {
				return platformErr("state "+ref.StateName(), err)
			}
			upload, revoke, err := uploadToken(ctx, s, pc, ref, captureTokenTTL(timeout, len(mappings)))
			if err != nil {
				return err
			}
			defer revoke()
			if s.Output == OutputTable || s.Output == "" {
				fmt.Fprintf(s.Err, "capturing %s from release %s in %s into %s:%s\n", mappingNames(mappings), a[0], ns, ref.StateName(), tag)
			}
			v, err := executor.Capture(ctx, executor.CaptureOptions{
				Client: cs, Namespace: ns, Platform: pc, PlatformURL: s.PlatformURL, UploadToken: upload,
				Project: ref.Project, State: ref.State, Tag: tag, Revision: revision, Message: message,
				Mappings: mappings, Quiesce: quiesceOn, AgentImage: s.AgentImage, Timeout: timeout, Logger: s.Logger(),
				CAConfigMap: s.CAConfigMap, Release: rel.Info,
			})
			if err != nil {
				if strings.Contains(err.Error(), "fetch its description") && errors.Is(err, client.ErrNotFound) {
					return fmt.Errorf("%w\n(the platform did not let you read back the component descriptions the capture Jobs uploaded: it predates read-back uploads; upgrade unikube-platform, or run capture with the admin UNIKUBE_TOKEN and the uploader in %s)", err, EnvUploadToken)
				}
				return err
			}
			return s.Print(v, func(w io.Writer) error {
				fmt.Fprintf(w, "captured %s:%s (%s), %d components\n", ref.StateName(), v.Tag, shortDigest(v.Digest), len(v.Components))
				if v.Candidate {
					fmt.Fprintf(w, "promote it with: helm state promote %s:%s\n", ref.StateName(), v.Tag)
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&to, "to", "", "state (and tag) to capture into: PROJECT/STATE[:TAG] (default tag @new-candidate)")
	fl.StringSliceVar(&components, "component", nil, "capture only these components (repeatable)")
	fl.StringArrayVar(&maps, "map", nil, "component=StatefulSet/NAME|Deployment/NAME|pvc/NAME (repeatable)")
	fl.StringArrayVar(&resources, "agent-resources", nil, agentResourcesUsage)
	fl.StringVar(&message, "message", "", "message of the new version")
	fl.StringVar(&revision, "revision", "", "revision label of the new version (e.g. the app version)")
	fl.BoolVar(&quiesceOn, "quiesce", false, "scale the workloads down while their data is dumped (a consistent copy of volumes)")
	fl.BoolVar(&dryRun, "dry-run", false, "print what would be captured, change nothing")
	fl.DurationVar(&timeout, "timeout", 30*time.Minute, "time limit per component Job")
	fl.BoolVar(&config, "config", false, "also capture the release's ConfigMaps and Secrets as component "+ConfigComponent+
		" (those its manifest makes; never Helm's release records or service-account tokens)")
	fl.StringVar(&configSelector, "config-selector", "", "with --config: take the ConfigMaps and Secrets this label selector matches instead")
	fl.StringArrayVar(&excludes, "exclude", nil, "with --config: leave out a ConfigMap/Secret by name (ConfigMap/NAME, Secret/NAME, NAME) or label selector (tier=cache) (repeatable)")
	return cmd
}

// captureMappings names the components: like the state's newest version
// when there is one, else proposed from the release.
func captureMappings(ctx context.Context, pc *client.Client, rel *discovery.Release, ref statepkg.Ref, explicit map[string]string) ([]discovery.Mapping, error) {
	vs, err := pc.ListVersions(ctx, ref.Project, ref.State, client.ListVersionsOptions{})
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		return nil, platformErr("versions of "+ref.StateName(), err)
	}
	if len(vs) > 0 {
		comps := make([]discovery.Component, 0, len(vs[0].Components))
		for _, c := range vs[0].Components {
			comps = append(comps, discovery.Component{Name: c.Name, Kind: statepkg.Kind(c.Kind)})
		}
		return rel.Map(comps, explicit)
	}
	ms := rel.Components()
	for i, m := range ms {
		if t, ok := explicit[m.Component]; ok {
			mm, err := rel.Map([]discovery.Component{{Name: m.Component, Kind: m.Kind}}, map[string]string{m.Component: t})
			if err != nil {
				return nil, err
			}
			ms[i] = mm[0]
		}
	}
	return ms, nil
}

func mappingNames(ms []discovery.Mapping) string {
	n := make([]string, len(ms))
	for i, m := range ms {
		n[i] = m.Component
	}
	return strings.Join(n, ", ")
}

// maxUploadTokenTTL is the platform's limit on upload token lifetimes.
const maxUploadTokenTTL = 6 * time.Hour

// captureTokenTTL is how long the capture Jobs may need their token: n
// components, two Jobs at a time, each within timeout, plus slack; at most
// what the platform grants.
func captureTokenTTL(timeout time.Duration, n int) time.Duration {
	rounds := int64(max(1, (n+1)/2))
	return min(maxUploadTokenTTL, time.Duration(rounds*int64(timeout))+10*time.Minute)
}

// uploadToken returns the token the capture Jobs upload with and a func
// revoking it when it was minted here: an upload token for the one state.
func uploadToken(ctx context.Context, s *Settings, pc *client.Client, ref statepkg.Ref, ttl time.Duration) (string, func(), error) {
	if t := s.Getenv(EnvUploadToken); t != "" {
		return t, func() {}, nil
	}
	ut, err := pc.CreateUploadToken(ctx, ref.Project, ref.State, ttl)
	if err != nil {
		return "", nil, platformErr("mint a short-lived upload token for the capture Jobs (or set "+EnvUploadToken+")", err)
	}
	return ut.Token, func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := pc.RevokeToken(rctx, ut.Name); err != nil {
			s.Logger().Warn("could not revoke the capture upload token; it expires by itself", "token", ut.Name, "err", err)
		}
	}, nil
}

// CaptureItem is one component of a capture plan.
type CaptureItem struct {
	Component string `json:"component"`
	Kind      string `json:"kind"`
	Target    string `json:"target"`
	Size      int64  `json:"size"`
}

// CapturePlan is what capture --dry-run prints.
type CapturePlan struct {
	State      string        `json:"state"`
	Tag        string        `json:"tag"`
	Digest     string        `json:"digest"`
	Release    string        `json:"release"`
	Namespace  string        `json:"namespace"`
	Quiesce    bool          `json:"quiesce"`
	Components []CaptureItem `json:"components"`
}
