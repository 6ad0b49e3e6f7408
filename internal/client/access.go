package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// ParseScope parses the scope of a grant: "PROJECT" or "PROJECT/STATE".
func ParseScope(s string) (project, state string, err error) {
	project, state, two := strings.Cut(s, "/")
	if err := statepkg.ValidateName(project); err != nil {
		return "", "", fmt.Errorf("scope %q: project: %w (want PROJECT or PROJECT/STATE)", s, err)
	}
	if two {
		if err := statepkg.ValidateName(state); err != nil {
			return "", "", fmt.Errorf("scope %q: state: %w (want PROJECT or PROJECT/STATE)", s, err)
		}
	}
	return project, state, nil
}

// RoleError is an operation the caller's role does not allow: it names the
// role that does and, when the caller may see the grants, who holds it.
type RoleError struct {
	Op    string // "delete state shop/seed"
	Role  string // the role the operation needs
	Scope string // "project shop" or "state shop/seed"
	// Holders are the subjects holding Role (or a higher one) on the scope
	// or its project; nil when the caller may not list the grants.
	Holders []string
	Err     error // the platform's answer
}

func (e *RoleError) Error() string {
	who := "ask an owner of the project for a grant"
	if len(e.Holders) > 0 {
		who = "it can be done by " + strings.Join(e.Holders, ", ")
	}
	return fmt.Sprintf("%s needs the %s role on %s: %s (%v)", e.Op, e.Role, e.Scope, who, e.Err)
}

func (e *RoleError) Unwrap() error { return e.Err }

// roleRank orders roles, lowest first.
var roleRank = []string{RoleViewer, RoleApplier, RoleMaintainer, RoleOwner}

// Holders returns the subjects holding at least role on project (state
// "") or on the state, from the state's and the project's grants, sorted.
func (c *Client) Holders(ctx context.Context, project, state, role string) ([]string, error) {
	least := slices.Index(roleRank, role)
	if least < 0 {
		return nil, fmt.Errorf("unknown role %q", role)
	}
	scopes := []string{""}
	if state != "" {
		scopes = append(scopes, state)
	}
	var out []string
	for _, st := range scopes {
		gs, err := c.ListGrants(ctx, project, st)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			if slices.Index(roleRank, g.Role) >= least && !slices.Contains(out, g.Subject) {
				out = append(out, g.Subject)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// needOwner turns a 403 of an operation that needs the owner role into a
// *RoleError naming the role and, if the caller may see them, its holders;
// other errors pass unchanged.
func (c *Client) needOwner(ctx context.Context, err error, op, project, state string) error {
	const role = RoleOwner
	if !errors.Is(err, ErrForbidden) {
		return err
	}
	scope := "project " + project
	if state != "" {
		scope = "state " + project + "/" + state
	}
	holders, herr := c.Holders(ctx, project, state, role)
	if herr != nil {
		holders = nil
	}
	return &RoleError{Op: op, Role: role, Scope: scope, Holders: holders, Err: err}
}

// Deleted says what Delete removed.
type Deleted struct {
	Project string `json:"project"`
	State   string `json:"state"`
	// Version is set when one version was deleted, not the state.
	Version *Version `json:"version,omitempty"`
}

// ParseDeleteRef parses what Delete takes: project/state (the whole state:
// Tag and Digest stay empty, unlike ParseRef's @latest), project/state:TAG
// or project/state@sha256:DIGEST (one version).
func ParseDeleteRef(s string) (statepkg.Ref, error) {
	r, err := statepkg.ParseRef(s)
	if err != nil {
		return r, err
	}
	if _, rest, _ := strings.Cut(s, "/"); !strings.ContainsAny(rest, ":@") {
		r.Tag = ""
	}
	return r, nil
}

// Delete deletes what a reference from ParseDeleteRef names: the whole state for project/state
// (with every version and grant), one version for project/state:TAG or
// project/state@sha256:DIGEST (its chunks go at the next garbage
// collection). Both need the owner role; a caller without it gets a
// *RoleError.
func (c *Client) Delete(ctx context.Context, r statepkg.Ref) (Deleted, error) {
	out := Deleted{Project: r.Project, State: r.State}
	if r.Tag == "" && r.Digest == "" {
		err := c.DeleteState(ctx, r.Project, r.State)
		return out, c.needOwner(ctx, err, "deleting state "+r.Project+"/"+r.State, r.Project, r.State)
	}
	ref := r.Digest
	if ref == "" {
		ref = r.Tag
	}
	// Resolve first, so the answer names the version (an expression like
	// @latest moves) and the tag it has now is what is deleted.
	v, err := c.GetVersion(ctx, r.Project, r.State, ref)
	if err != nil {
		return out, err
	}
	err = c.DeleteVersion(ctx, r.Project, r.State, v.Tag)
	if err != nil {
		return out, c.needOwner(ctx, err, "deleting a version of "+r.Project+"/"+r.State, r.Project, r.State)
	}
	out.Version = &v
	return out, nil
}

// DeleteProjectChecked deletes a project with everything in it; a caller
// without the owner role gets a *RoleError.
func (c *Client) DeleteProjectChecked(ctx context.Context, name string) error {
	return c.needOwner(ctx, c.DeleteProject(ctx, name), "deleting project "+name, name, "")
}

// Grant gives subject role on project (state "") or the state; a caller
// without the owner role there gets a *RoleError.
func (c *Client) Grant(ctx context.Context, project, state, subject, role string) (Grant, error) {
	g, err := c.PutGrant(ctx, project, state, subject, role)
	return g, c.needOwner(ctx, err, "granting access", project, state)
}

// Revoke removes subject's grant on project (state "") or the state; a
// caller without the owner role there gets a *RoleError.
func (c *Client) Revoke(ctx context.Context, project, state, subject string) error {
	return c.needOwner(ctx, c.DeleteGrant(ctx, project, state, subject), "revoking access", project, state)
}

// EffectiveGrants lists the grants that apply to project (state "") or to
// the state: the project's, then the state's own.
func (c *Client) EffectiveGrants(ctx context.Context, project, state string) ([]Grant, error) {
	out, err := c.ListGrants(ctx, project, "")
	if err != nil || state == "" {
		return out, err
	}
	own, err := c.ListGrants(ctx, project, state)
	return append(out, own...), err
}
