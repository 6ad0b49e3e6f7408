package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// parseRef parses a reference argument (usage error when malformed).
func parseRef(s string) (statepkg.Ref, error) {
	r, err := statepkg.ParseRef(s)
	if err != nil {
		return statepkg.Ref{}, &UsageError{Err: fmt.Errorf("%w (e.g. shop/seed, shop/seed:v1, shop/seed:@candidate)", err)}
	}
	return r, nil
}

// refArg is the tag expression or digest a reference selects.
func refArg(r statepkg.Ref) string {
	if r.Digest != "" {
		return r.Digest
	}
	if r.Tag == "" {
		return statepkg.ExprLatest
	}
	return r.Tag
}

// platformErr turns a platform error into a line that says what to do.
func platformErr(what string, err error) error {
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		detail := ""
		if ce := (*client.Error)(nil); errors.As(err, &ce) && ce.Message != "" {
			detail = " (" + ce.Message + ")" // e.g. why an OIDC token was refused
		}
		return fmt.Errorf("%s: the platform rejected the token%s: run helm state login or set UNIKUBE_TOKEN", what, detail)
	case errors.Is(err, client.ErrForbidden):
		return fmt.Errorf("%s: access denied: ask an owner of the project for a role (applier to apply, maintainer to capture or tag)", what)
	case errors.Is(err, client.ErrNotFound):
		return fmt.Errorf("%s: not found: check the name with helm state list / helm state versions", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func componentsCell(cs []client.ComponentSummary) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + "(" + c.Kind + ")"
	}
	return strings.Join(parts, ",")
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newListCmd(s *Settings) *cobra.Command {
	return &cobra.Command{
		Use:   "list [PROJECT]",
		Short: "List named states (of one project, or of every project you can see)",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := s.Context(cmd)
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			var projects []string
			if len(a) == 1 {
				projects = a
			} else {
				ps, err := pc.ListProjects(ctx)
				if err != nil {
					return platformErr("list projects", err)
				}
				for _, p := range ps {
					projects = append(projects, p.Name)
				}
			}
			states := []client.State{}
			for _, p := range projects {
				st, err := pc.ListStates(ctx, p)
				if err != nil {
					return platformErr("list states of project "+p, err)
				}
				states = append(states, st...)
			}
			return s.Print(states, func(w io.Writer) error {
				row(w, "STATE", "DESCRIPTION", "CREATED", "CREATED BY")
				for _, st := range states {
					row(w, st.Project+"/"+st.Name, dash(st.Description), ts(st.CreatedAt), dash(st.CreatedBy))
				}
				return nil
			})
		},
	}
}

func newShowCmd(s *Settings) *cobra.Command {
	var defaults bool
	cmd := &cobra.Command{
		Use:   "show REF",
		Short: "Show one version of a state (tag, revision, message, size, components, candidate, release)",
		Long: `show prints one version of a state. A version captured from a Helm release
also shows the release: chart (name, version, app version, repository when
known), the keys the user's values override and the user-supplied values.
In the table, values under secret-looking keys (password, secret, token,
API key, private key, credential, auth) are masked as ***; -o json and -o yaml print the
values and the chart's default values as recorded.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, err := parseRef(a[0])
			if err != nil {
				return err
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			v, err := pc.Resolve(s.Context(cmd), ref)
			if err != nil {
				return platformErr("show "+a[0], err)
			}
			shown := ShownVersion{Version: v}
			// The release is in the manifest, not the version record.
			// Reading it takes the applier role; a viewer sees the version
			// record alone.
			if m, _, err := pc.GetManifest(s.Context(cmd), v.Project, v.State, v.Digest); errors.Is(err, client.ErrForbidden) {
				s.Logger().Debug("the manifest (release, chart and values) needs the applier role", "err", err)
			} else if err != nil {
				s.Logger().Warn("could not read the version's manifest; its release (chart and values) is not shown", "err", err)
			} else {
				shown.Release = m.Release
			}
			return s.Print(shown, func(w io.Writer) error {
				row(w, "TAG", "STATE", "REVISION", "MESSAGE", "CREATED_AT", "SIZE", "COMPONENTS", "CANDIDATE")
				row(w, v.Tag, v.Project+"/"+v.State, dash(v.Revision), dash(v.Message), ts(v.CreatedAt),
					humanize.IBytes(uint64(max(v.Size, 0))), componentsCell(v.Components), v.Candidate)
				fmt.Fprintf(w, "\ndigest: %s\n", v.Digest)
				if shown.Release != nil {
					return printRelease(w, shown.Release, defaults)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&defaults, "default-values", false, "also print the chart's default values (masked like the values)")
	return cmd
}

// ShownVersion is what show prints: the version and, when it was captured
// from a Helm release, the release's chart and values.
type ShownVersion struct {
	client.Version
	Release *statepkg.ReleaseInfo `json:"release,omitempty"`
}

// printRelease prints a version's release, values masked.
func printRelease(w io.Writer, r *statepkg.ReleaseInfo, defaults bool) error {
	fmt.Fprintf(w, "\nrelease:    %s", r.Name)
	if r.Namespace != "" {
		fmt.Fprintf(w, " in %s", r.Namespace)
	}
	if r.Revision > 0 {
		fmt.Fprintf(w, " (revision %d)", r.Revision)
	}
	fmt.Fprintf(w, "\nchart:      %s %s", r.Chart.Name, dash(r.Chart.Version))
	if r.Chart.AppVersion != "" {
		fmt.Fprintf(w, " (app %s)", r.Chart.AppVersion)
	}
	fmt.Fprintf(w, "\nrepository: %s\n", firstNonEmpty(r.Chart.Repository, "unknown (Helm's release record does not keep it)"))
	if len(r.Overridden) > 0 {
		fmt.Fprintf(w, "overridden: %s\n", strings.Join(r.Overridden, ", "))
	} else {
		fmt.Fprintln(w, "overridden: none (the chart's defaults)")
	}
	section := func(title string, vals map[string]any) error {
		if len(vals) == 0 {
			return nil
		}
		b, err := yaml.Marshal(statepkg.MaskedValues(vals))
		if err != nil {
			return fmt.Errorf("print %s: %w", title, err)
		}
		fmt.Fprintf(w, "\n%s (secret-looking keys masked; -o json prints them):\n", title)
		for l := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
		return nil
	}
	if err := section("values", r.Values); err != nil {
		return err
	}
	if defaults {
		return section("default values", r.DefaultValues)
	}
	if len(r.DefaultValues) > 0 {
		fmt.Fprintln(w, "\n(the chart's default values: --default-values or -o json)")
	}
	return nil
}

func newVersionsCmd(s *Settings) *cobra.Command {
	var candidates string
	cmd := &cobra.Command{
		Use:   "versions REF",
		Short: "List the versions of a state, newest first",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, err := parseRef(a[0])
			if err != nil {
				return err
			}
			switch candidates {
			case "", "only", "exclude":
			default:
				return usageErrorf("--candidates must be only or exclude")
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			vs, err := pc.ListVersions(s.Context(cmd), ref.Project, ref.State, client.ListVersionsOptions{Candidates: candidates})
			if err != nil {
				return platformErr("versions of "+ref.StateName(), err)
			}
			if vs == nil {
				vs = []client.Version{}
			}
			return s.Print(vs, func(w io.Writer) error {
				row(w, "TAG", "REVISION", "MESSAGE", "CREATED_AT", "SIZE", "COMPONENTS", "CANDIDATE", "DIGEST")
				for _, v := range vs {
					row(w, v.Tag, dash(v.Revision), dash(v.Message), ts(v.CreatedAt), humanize.IBytes(uint64(max(v.Size, 0))),
						componentsCell(v.Components), v.Candidate, shortDigest(v.Digest))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&candidates, "candidates", "", "only or exclude candidates")
	return cmd
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func printVersion(s *Settings, verb string, v client.Version) error {
	return s.Print(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s %s/%s:%s (%s)\n", verb, v.Project, v.State, v.Tag, shortDigest(v.Digest))
		return err
	})
}

func newPromoteCmd(s *Settings) *cobra.Command {
	var dry bool
	cmd := &cobra.Command{
		Use:   "promote REF",
		Short: "Promote a candidate (drop its [cand]- prefix): it becomes @latest",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, err := parseRef(a[0])
			if err != nil {
				return err
			}
			return runTagOp(cmd, s, tagOp{
				what: "promote " + a[0], ref: ref, dryRun: dry,
				preview: func(v *client.Version) error {
					if !v.Candidate {
						return fmt.Errorf("promote %s: %s is not a candidate", a[0], v.Tag)
					}
					v.Tag, _ = statepkg.PromoteTag(v.Tag)
					v.Candidate = false
					return nil
				},
				change: func(ctx context.Context, pc *client.Client) (client.Version, error) {
					return pc.Promote(ctx, ref.Project, ref.State, refArg(ref))
				},
				wouldVerb: "would promote to", verb: "promoted",
			})
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "show what would change, change nothing")
	return cmd
}

func newRetagCmd(s *Settings) *cobra.Command {
	var dry bool
	cmd := &cobra.Command{
		Use:   "retag REF NEW_TAG",
		Short: "Give a version a new tag",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, err := parseRef(a[0])
			if err != nil {
				return err
			}
			if err := statepkg.ValidateTag(a[1]); err != nil {
				return &UsageError{Err: fmt.Errorf("new tag: %w", err)}
			}
			return runTagOp(cmd, s, tagOp{
				what: "retag " + a[0], ref: ref, dryRun: dry,
				preview: func(v *client.Version) error {
					v.Tag, v.Candidate = a[1], statepkg.IsCandidate(a[1])
					return nil
				},
				change: func(ctx context.Context, pc *client.Client) (client.Version, error) {
					return pc.Retag(ctx, ref.Project, ref.State, refArg(ref), a[1])
				},
				wouldVerb: "would retag to", verb: "retagged",
			})
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "show what would change, change nothing")
	return cmd
}

// tagOp is a command that gives a version another tag (promote, retag).
type tagOp struct {
	what   string // "promote REF", prefixed to errors
	ref    statepkg.Ref
	dryRun bool
	// preview turns the resolved version into what change would return,
	// for --dry-run; change asks the platform to do it.
	preview         func(v *client.Version) error
	change          func(ctx context.Context, pc *client.Client) (client.Version, error)
	wouldVerb, verb string
}

func runTagOp(cmd *cobra.Command, s *Settings, op tagOp) error {
	pc, err := s.Platform()
	if err != nil {
		return err
	}
	ctx := s.Context(cmd)
	if op.dryRun {
		v, err := pc.Resolve(ctx, op.ref)
		if err != nil {
			return platformErr(op.what, err)
		}
		if err := op.preview(&v); err != nil {
			return err
		}
		return printVersion(s, op.wouldVerb, v)
	}
	v, err := op.change(ctx, pc)
	if err != nil {
		return platformErr(op.what, err)
	}
	return printVersion(s, op.verb, v)
}

func newPruneCmd(s *Settings) *cobra.Command {
	var dry bool
	var keep int
	cmd := &cobra.Command{
		Use:   "prune-candidates STATE",
		Short: "Delete the candidates of a state (all but the newest --keep)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, err := parseRef(a[0])
			if err != nil {
				return err
			}
			if keep < 0 {
				return usageErrorf("--keep must be >= 0")
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			ctx := s.Context(cmd)
			var deleted []client.Version
			verb := "deleted"
			if dry {
				verb = "would delete"
				cands, err := pc.ListVersions(ctx, ref.Project, ref.State, client.ListVersionsOptions{Candidates: "only"})
				if err != nil {
					return platformErr("prune-candidates "+a[0], err)
				}
				if keep < len(cands) {
					deleted = cands[keep:]
				}
			} else {
				deleted, err = pc.PruneCandidates(ctx, ref.Project, ref.State, keep)
				if err != nil {
					return platformErr("prune-candidates "+a[0], err)
				}
			}
			if deleted == nil {
				deleted = []client.Version{}
			}
			return s.Print(deleted, func(w io.Writer) error {
				if len(deleted) == 0 {
					fmt.Fprintf(w, "no candidates to delete in %s\n", ref.StateName())
				}
				for _, v := range deleted {
					fmt.Fprintf(w, "%s %s:%s (%s)\n", verb, ref.StateName(), v.Tag, shortDigest(v.Digest))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "list what would be deleted, delete nothing")
	cmd.Flags().IntVar(&keep, "keep", 0, "keep the newest N candidates")
	return cmd
}

func newLoginCmd(s *Settings) *cobra.Command {
	var tokenStdin, sso bool
	var so ssoLoginOptions
	cmd := &cobra.Command{
		Use:   "login ENDPOINT",
		Short: "Log in to a platform with a token (stdin or UNIKUBE_TOKEN) or single sign-on (--sso, --browser); stored in " + "$HELM_CONFIG_HOME/state/login.json (0600)",
		Long: `login checks the token against the platform and stores it with the endpoint.
The token is never taken from the command line: pipe it in with --token-stdin,
or set UNIKUBE_TOKEN.

With --sso, login uses the platform's OpenID Connect provider instead: the
device authorization flow (open the URL it prints, on any device, and confirm
the code), or with --browser the authorization code flow with PKCE, the
browser returning to a one-time server on 127.0.0.1. The refresh token is
stored (0600) and renews the login silently before it expires; your groups
at the provider become your groups here (grants to group:NAME).`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if so.browser || so.issuer != "" || so.clientID != "" {
				sso = true
			}
			if sso && tokenStdin {
				return usageErrorf("--sso and --token-stdin exclude each other")
			}
			if sso {
				return s.runSSOLogin(cmd, a[0], so)
			}
			token := s.Getenv(client.EnvToken)
			if tokenStdin {
				line, err := bufio.NewReader(s.In).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read the token from stdin: %w", err)
				}
				token = strings.TrimSpace(line)
			}
			if token == "" {
				return usageErrorf("no token: pipe it in with --token-stdin or set %s, or log in with --sso", client.EnvToken)
			}
			pc, err := client.New(client.Config{Endpoint: a[0], Token: token, Getenv: func(string) string { return "" }})
			if err != nil {
				return &UsageError{Err: err}
			}
			who, err := pc.Whoami(s.Context(cmd))
			if err != nil {
				return platformErr("login to "+a[0], err)
			}
			if err := s.writeLogin(Login{Endpoint: a[0], Token: token}); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "logged in to %s as %s (stored in %s)\n", a[0], who.Name, s.LoginPath())
			return nil
		},
	}
	cmd.Flags().BoolVar(&tokenStdin, "token-stdin", false, "read the token from stdin")
	cmd.Flags().BoolVar(&sso, "sso", false, "log in with the platform's single sign-on (OpenID Connect device flow)")
	cmd.Flags().BoolVar(&so.browser, "browser", false, "single sign-on in a browser on this machine (authorization code flow with PKCE) instead of the device flow")
	cmd.Flags().StringVar(&so.issuer, "oidc-issuer", "", "the OpenID Connect provider (default: what the platform names)")
	cmd.Flags().StringVar(&so.clientID, "oidc-client-id", "", "the OpenID Connect client (default: what the platform names)")
	cmd.Flags().StringSliceVar(&so.scopes, "oidc-scopes", nil, "scopes to ask for besides openid, profile, email and offline_access (e.g. groups)")
	return cmd
}

// runSSOLogin logs in at the platform's identity provider, checks the
// identity with the platform and stores the login.
func (s *Settings) runSSOLogin(cmd *cobra.Command, endpoint string, so ssoLoginOptions) error {
	ca, err := s.caCertificate()
	if err != nil {
		return err
	}
	pc, err := client.New(client.Config{Endpoint: endpoint, CACertificate: ca, Getenv: func(string) string { return "" }})
	if err != nil {
		return &UsageError{Err: err}
	}
	ol, err := s.ssoLogin(s.Context(cmd), pc, so)
	if err != nil {
		return err
	}
	who, err := pc.WithToken(ol.IDToken).Whoami(s.Context(cmd))
	if err != nil {
		return platformErr("login to "+endpoint, err)
	}
	if err := s.writeLogin(Login{Endpoint: endpoint, OIDC: ol}); err != nil {
		return err
	}
	groups := ""
	if len(who.Groups) > 0 {
		groups = " in groups " + strings.Join(who.Groups, ", ")
	}
	fmt.Fprintf(s.Out, "logged in to %s as %s%s through %s (stored in %s)\n", endpoint, who.Name, groups, ol.Issuer, s.LoginPath())
	return nil
}
