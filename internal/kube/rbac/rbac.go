// Package rbac holds the namespaced Roles the Kubernetes executor needs,
// one per operation (restore, capture, hooks with pods/exec), and checks
// with SelfSubjectAccessReviews that the caller has those of the
// operation asked before anything changes, naming each missing verb and
// the Role that grants it.
package rbac

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	deployrbac "github.com/unikubehq/terraform-provider-unikube/deploy/rbac"
)

// RolesPath is where the Roles users apply live in the repository.
const RolesPath = "deploy/rbac/roles.yaml"

// RoleYAML is the documented Roles (deploy/rbac/roles.yaml).
var RoleYAML = deployrbac.RolesYAML

// Operation is what the caller asks the executor to do; each has its Role.
type Operation string

// Operations and the Roles granting them.
const (
	// OpRestore: apply a version (agent Jobs, records, quiesce).
	OpRestore Operation = "restore"
	// OpCapture: capture a namespace into a version.
	OpCapture Operation = "capture"
	// OpHooks: run pre/post hook commands in the app's pods (pods/exec).
	OpHooks Operation = "hooks"
)

// RoleName is the name of op's Role in roles.yaml.
func RoleName(op Operation) string { return "unikube-state-" + string(op) }

// Roles parses RoleYAML: one Role per operation.
func Roles() ([]*rbacv1.Role, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(RoleYAML), 4096)
	var out []*rbacv1.Role
	for {
		var r rbacv1.Role
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("embedded %s: %w", RolesPath, err)
		}
		out = append(out, &r)
	}
}

// RoleFor returns the Role of op.
func RoleFor(op Operation) (*rbacv1.Role, error) {
	rs, err := Roles()
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.Name == RoleName(op) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("embedded %s has no Role %s", RolesPath, RoleName(op))
}

// Role is the Role an apply needs: restore, without exec.
func Role() (*rbacv1.Role, error) { return RoleFor(OpRestore) }

// Access is one verb on one resource; Role names the Role granting it.
type Access struct {
	Verb, Group, Resource, Subresource string
	Role                               string
}

func (a Access) String() string {
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	if a.Group != "" {
		res += "." + a.Group
	}
	return fmt.Sprintf("%s %s", a.Verb, res)
}

// Needed lists every verb/resource the Roles of ops grant (default:
// restore), each once, with the first of ops' Roles granting it.
func Needed(ops ...Operation) ([]Access, error) {
	if len(ops) == 0 {
		ops = []Operation{OpRestore}
	}
	seen := map[string]bool{}
	var out []Access
	for _, op := range ops {
		r, err := RoleFor(op)
		if err != nil {
			return nil, err
		}
		for _, rule := range r.Rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					name, sub, _ := strings.Cut(res, "/")
					for _, v := range rule.Verbs {
						a := Access{Verb: v, Group: g, Resource: name, Subresource: sub, Role: r.Name}
						if !seen[a.String()] {
							seen[a.String()] = true
							out = append(out, a)
						}
					}
				}
			}
		}
	}
	return out, nil
}

// MissingError names what the caller may not do.
type MissingError struct {
	Namespace string
	Missing   []Access
}

func (e *MissingError) Error() string {
	names := make([]string, len(e.Missing))
	roles := map[string]bool{}
	for i, a := range e.Missing {
		names[i] = a.String()
		if a.Role != "" {
			names[i] += " (Role " + a.Role + ")"
			roles[a.Role] = true
		}
	}
	sort.Strings(names)
	bind := "the executor's Roles"
	if len(roles) > 0 {
		rs := make([]string, 0, len(roles))
		for r := range roles {
			rs = append(rs, r)
		}
		sort.Strings(rs)
		bind = "the Role " + strings.Join(rs, " and the Role ")
	}
	return fmt.Sprintf("missing Kubernetes permissions in namespace %s: cannot %s; bind %s (%s) to the caller in that namespace",
		e.Namespace, strings.Join(names, ", cannot "), bind, RolesPath)
}

// ErrMissing is matched by errors.Is for a *MissingError.
var ErrMissing = errors.New("missing Kubernetes permissions")

// Is makes errors.Is(err, ErrMissing) work.
func (e *MissingError) Is(target error) bool { return target == ErrMissing }

// Check asks the API server, for each access in want (default: Needed()
// of a restore),
// whether the caller may do it in ns; it returns a *MissingError naming
// everything denied.
func Check(ctx context.Context, cs kubernetes.Interface, ns string, want []Access) error {
	if want == nil {
		var err error
		if want, err = Needed(); err != nil {
			return err
		}
	}
	var missing []Access
	for _, a := range want {
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
				Namespace: ns, Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("check permission %s in %s: %w", a, ns, err)
		}
		if !r.Status.Allowed {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		return &MissingError{Namespace: ns, Missing: missing}
	}
	return nil
}
