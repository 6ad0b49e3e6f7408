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
	"k8s.io/component-helpers/auth/rbac/validation"

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

// notGranted returns the accesses of want the caller's rules in ns do not
// cover, as one SelfSubjectRulesReview lists them; all of want when the
// review fails or says its list is incomplete.
func notGranted(ctx context.Context, cs kubernetes.Interface, ns string, want []Access) []Access {
	r, err := cs.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authv1.SelfSubjectRulesReview{
		Spec: authv1.SelfSubjectRulesReviewSpec{Namespace: ns},
	}, metav1.CreateOptions{})
	if err != nil || r.Status.Incomplete {
		return want
	}
	return Uncovered(r.Status.ResourceRules, want)
}

// Uncovered returns the accesses of want that rules do not grant.
func Uncovered(rules []authv1.ResourceRule, want []Access) []Access {
	owner := make([]rbacv1.PolicyRule, 0, len(rules))
	for _, r := range rules {
		if len(r.ResourceNames) > 0 {
			continue // a right on some objects only is not the right asked
		}
		owner = append(owner, rbacv1.PolicyRule{Verbs: r.Verbs, APIGroups: r.APIGroups, Resources: r.Resources})
	}
	var out []Access
	for _, a := range want {
		res := a.Resource
		if a.Subresource != "" {
			res += "/" + a.Subresource
		}
		if ok, _ := validation.Covers(owner, []rbacv1.PolicyRule{{Verbs: []string{a.Verb}, APIGroups: []string{a.Group}, Resources: []string{res}}}); !ok {
			out = append(out, a)
		}
	}
	return out
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

// Check asks the API server whether the caller may do each access in
// want (default: Needed() of a restore) in ns, and returns a
// *MissingError naming everything denied. It needs no right of its own:
// every authenticated user may review its own access, so a caller with
// `view` or with no rights at all hears every right it lacks rather than
// the first "forbidden" of whatever it tried to read. One
// SelfSubjectRulesReview answers most of it; what that review does not
// grant (or all of want, when the review is incomplete, as with webhook
// authorizers) is asked one SelfSubjectAccessReview each.
func Check(ctx context.Context, cs kubernetes.Interface, ns string, want []Access) error {
	if want == nil {
		var err error
		if want, err = Needed(); err != nil {
			return err
		}
	}
	want = notGranted(ctx, cs, ns, want)
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
