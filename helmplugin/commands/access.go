package commands

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// accessErr phrases a platform error of an access command; a missing role
// is said with the role needed and who holds it.
func accessErr(what string, err error) error {
	var re *client.RoleError
	if errors.As(err, &re) {
		return fmt.Errorf("%s: access denied: %s", what, re.Error())
	}
	if errors.Is(err, client.ErrForbidden) {
		return fmt.Errorf("%s: access denied: %w", what, err)
	}
	return platformErr(what, err)
}

func newDeleteCmd(s *Settings) *cobra.Command {
	return &cobra.Command{
		Use:   "delete REF",
		Short: "Delete a state with all its versions (project/state), or one version (project/state:TAG, project/state@sha256:DIGEST)",
		Long: `delete removes a named state with every version and grant of it when REF
names only the state (project/state), or one version when REF has a tag,
a tag expression or a digest. Both need the owner role on the state or its
project; without it, the error names the role and who holds it.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, err := client.ParseDeleteRef(a[0])
			if err != nil {
				return &UsageError{Err: fmt.Errorf("%w (e.g. shop/seed for the state, shop/seed:v1 or shop/seed@sha256:... for one version)", err)}
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			d, err := pc.Delete(s.Context(cmd), ref)
			if err != nil {
				return accessErr("delete "+a[0], err)
			}
			return s.Print(d, func(w io.Writer) error {
				if d.Version != nil {
					fmt.Fprintf(w, "deleted %s/%s:%s (%s)\n", d.Project, d.State, d.Version.Tag, shortDigest(d.Version.Digest))
					return nil
				}
				fmt.Fprintf(w, "deleted state %s/%s with its versions and grants\n", d.Project, d.State)
				return nil
			})
		},
	}
}

func newProjectCmd(s *Settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "project",
		Short: "Create, list, show and delete projects",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var description string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project; you become its owner",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			p, err := pc.CreateProject(s.Context(cmd), a[0], description)
			if err != nil {
				return accessErr("create project "+a[0], err)
			}
			return s.Print(p, func(w io.Writer) error {
				fmt.Fprintf(w, "created project %s\n", p.Name)
				return nil
			})
		},
	}
	create.Flags().StringVar(&description, "description", "", "what the project is for")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the projects you have a grant in",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			ps, err := pc.ListProjects(s.Context(cmd))
			if err != nil {
				return accessErr("list projects", err)
			}
			return s.Print(ps, func(w io.Writer) error {
				row(w, "PROJECT", "DESCRIPTION", "CREATED", "CREATED BY")
				for _, p := range ps {
					row(w, p.Name, dash(p.Description), ts(p.CreatedAt), dash(p.CreatedBy))
				}
				return nil
			})
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a project with its states and the grants on it",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			ctx := s.Context(cmd)
			p, err := pc.GetProject(ctx, a[0])
			if err != nil {
				return accessErr("show project "+a[0], err)
			}
			states, err := pc.ListStates(ctx, a[0])
			if err != nil {
				return accessErr("list the states of project "+a[0], err)
			}
			grants, err := pc.ListGrants(ctx, a[0], "")
			if err != nil {
				return accessErr("list the grants on project "+a[0], err)
			}
			out := projectView{Project: p, States: states, Grants: grants}
			return s.Print(out, func(w io.Writer) error {
				fmt.Fprintf(w, "project:\t%s\ndescription:\t%s\ncreated:\t%s by %s\n\n", p.Name, dash(p.Description), ts(p.CreatedAt), dash(p.CreatedBy))
				row(w, "SUBJECT", "ROLE", "GRANTED BY")
				for _, g := range grants {
					row(w, g.Subject, g.Role, dash(g.CreatedBy))
				}
				fmt.Fprintln(w)
				row(w, "STATE", "DESCRIPTION")
				for _, st := range states {
					row(w, st.Project+"/"+st.Name, dash(st.Description))
				}
				return nil
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a project with every state, version, grant and script in it (owner)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			if err := pc.DeleteProjectChecked(s.Context(cmd), a[0]); err != nil {
				return accessErr("delete project "+a[0], err)
			}
			return s.Print(map[string]string{"deleted": a[0]}, func(w io.Writer) error {
				fmt.Fprintf(w, "deleted project %s\n", a[0])
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, show, del)
	return cmd
}

// projectView is what project show prints.
type projectView struct {
	client.Project
	States []client.State `json:"states"`
	Grants []client.Grant `json:"grants"`
}

func newAccessCmd(s *Settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Grant, revoke and list roles on a project (PROJECT) or one state (PROJECT/STATE)",
		Long: `Roles, each including the ones below: owner (manage access, delete),
maintainer (create states and versions, tag operations, scripts), applier
(download and apply, run scripts), viewer (metadata only). Subjects:
user:NAME, group:NAME, token:USER:NAME. A state's grants add to the
project's.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	grant := &cobra.Command{
		Use:   "grant SCOPE SUBJECT ROLE",
		Short: "Give SUBJECT the ROLE on SCOPE (replacing its role there)",
		Args:  args(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, a []string) error {
			project, state, err := client.ParseScope(a[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			g, err := pc.Grant(s.Context(cmd), project, state, a[1], a[2])
			if err != nil {
				return accessErr("grant "+a[2]+" to "+a[1]+" on "+a[0], err)
			}
			return s.Print(g, func(w io.Writer) error {
				fmt.Fprintf(w, "granted %s to %s on %s\n", g.Role, g.Subject, a[0])
				return nil
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke SCOPE SUBJECT",
		Short: "Remove SUBJECT's grant on SCOPE",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			project, state, err := client.ParseScope(a[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			if err := pc.Revoke(s.Context(cmd), project, state, a[1]); err != nil {
				return accessErr("revoke "+a[1]+" on "+a[0], err)
			}
			return s.Print(map[string]string{"revoked": a[1], "scope": a[0]}, func(w io.Writer) error {
				fmt.Fprintf(w, "revoked %s's grant on %s\n", a[1], a[0])
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:   "list SCOPE",
		Short: "List the grants on a project, or on a state and its project",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			project, state, err := client.ParseScope(a[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			gs, err := pc.EffectiveGrants(s.Context(cmd), project, state)
			if err != nil {
				return accessErr("list the grants on "+a[0], err)
			}
			return s.Print(gs, func(w io.Writer) error {
				row(w, "SCOPE", "SUBJECT", "ROLE", "GRANTED", "GRANTED BY")
				for _, g := range gs {
					scope := g.Project
					if g.State != "" {
						scope += "/" + g.State
					}
					row(w, scope, g.Subject, g.Role, ts(g.CreatedAt), dash(g.CreatedBy))
				}
				return nil
			})
		},
	}
	cmd.AddCommand(grant, revoke, list)
	return cmd
}

func newTokenCmd(s *Settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (for CI and other automation)",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var user string
	var groups []string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token; its secret is printed once",
		Long: `create makes a token acting as --user (default: your own) in --group
groups (default: none). You may create tokens only for yourself and groups
you are in; the admin for anyone. The token expires after --ttl (default:
never), and never later than the token creating it.

The secret is printed once, on stdout (-o json: the "token" field); store it
at once (e.g. pipe it into your CI system's secret store). Give the token
roles with helm state access grant SCOPE token:USER:NAME ROLE.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if ttl < 0 {
				return usageErrorf("--ttl must not be negative")
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			t, err := pc.CreateToken(s.Context(cmd), client.TokenRequest{Name: a[0], User: user, Groups: groups,
				TTLSeconds: int64((ttl + time.Second - 1) / time.Second)})
			if err != nil {
				return accessErr("create token "+a[0], err)
			}
			return s.Print(t, func(w io.Writer) error {
				exp := "never expires"
				if t.ExpiresAt != nil {
					exp = "expires " + ts(*t.ExpiresAt)
				}
				fmt.Fprintf(s.Err, "created token %s for user %s (subject token:%s:%s, %s); the secret is shown only now:\n", t.Name, t.User, t.User, t.Name, exp)
				fmt.Fprintln(w, t.Secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&user, "user", "", "user the token acts as (default: your own; the admin must set it)")
	create.Flags().StringSliceVar(&groups, "group", nil, "group the token acts in (repeatable)")
	create.Flags().DurationVar(&ttl, "ttl", 0, "lifetime, e.g. 720h (default: no expiry)")

	var listUser string
	list := &cobra.Command{
		Use:   "list",
		Short: "List your tokens (the admin: everyone's, or --user's); secrets are never shown",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			toks, err := pc.ListTokens(s.Context(cmd), listUser)
			if err != nil {
				return accessErr("list tokens", err)
			}
			now := time.Now()
			return s.Print(toks, func(w io.Writer) error {
				row(w, "NAME", "USER", "GROUPS", "CREATED", "EXPIRES", "STATUS")
				for _, t := range toks {
					exp := "-"
					if t.ExpiresAt != nil {
						exp = ts(*t.ExpiresAt)
					}
					status := "live"
					switch {
					case t.RevokedAt != nil:
						status = "revoked " + ts(*t.RevokedAt)
					case !t.Live(now):
						status = "expired"
					}
					// A dead token gave up its name (NAME~ID); show the name it had.
					name, _, _ := strings.Cut(t.Name, "~")
					row(w, name, dash(t.User), dash(strings.Join(t.Groups, ",")), ts(t.CreatedAt), exp, status)
				}
				return nil
			})
		},
	}
	list.Flags().StringVar(&listUser, "user", "", "admin: only this user's tokens")

	var revokeUser string
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke one of your tokens (the admin: --user's) and every token it created",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			ctx := s.Context(cmd)
			if revokeUser != "" {
				err = pc.RevokeUserToken(ctx, revokeUser, a[0])
			} else {
				err = pc.RevokeToken(ctx, a[0])
			}
			if err != nil {
				return accessErr("revoke token "+a[0], err)
			}
			return s.Print(map[string]string{"revoked": a[0]}, func(w io.Writer) error {
				fmt.Fprintf(w, "revoked token %s\n", a[0])
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&revokeUser, "user", "", "admin: whose token (needed when several users have one of that name)")
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newAuditCmd(s *Settings) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [PROJECT]",
		Short: "Show who changed access when: a project's record (owners), or every record (the admin)",
		Long: `audit lists access changes newest first: projects created and deleted,
grants put and removed, tokens created and revoked, and the job and upload
tokens minted for applies and captures. With PROJECT it shows that
project's record (the owner role); without, every record (the admin token).`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if limit < 0 || limit > 1000 {
				return usageErrorf("--limit must be 1-1000")
			}
			o := client.AuditOptions{Limit: limit}
			what := "read the audit record"
			if len(a) == 1 {
				o.Project = a[0]
				what += " of project " + a[0]
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			evs, err := pc.ListAudit(s.Context(cmd), o)
			if err != nil {
				return accessErr(what, err)
			}
			return s.Print(evs, func(w io.Writer) error {
				row(w, "WHEN", "WHO", "ACTION", "SCOPE", "SUBJECT", "DETAIL")
				for _, e := range evs {
					scope := e.Project
					if e.State != "" {
						scope += "/" + e.State
					}
					row(w, ts(e.At), e.Actor, e.Action, dash(scope), dash(e.Subject), dash(e.Detail))
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most the newest N (default 100)")
	return cmd
}
