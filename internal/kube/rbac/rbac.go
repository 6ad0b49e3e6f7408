// Package rbac holds the namespaced Role the Kubernetes executor needs and
// checks, with SelfSubjectAccessReviews, that the caller has it before
// anything changes, naming each missing verb and resource.
package rbac

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
)

// RoleYAML is the documented Role (role.yaml next to this file).
//
//go:embed role.yaml
var RoleYAML []byte

// Role parses RoleYAML.
func Role() (*rbacv1.Role, error) {
	var r rbacv1.Role
	if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(RoleYAML), 4096).Decode(&r); err != nil {
		return nil, fmt.Errorf("embedded role.yaml: %w", err)
	}
	return &r, nil
}

// Access is one verb on one resource.
type Access struct {
	Verb, Group, Resource, Subresource string
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

// Needed lists every verb/resource of the Role.
func Needed() ([]Access, error) {
	r, err := Role()
	if err != nil {
		return nil, err
	}
	var out []Access
	for _, rule := range r.Rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				name, sub, _ := strings.Cut(res, "/")
				for _, v := range rule.Verbs {
					out = append(out, Access{Verb: v, Group: g, Resource: name, Subresource: sub})
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
	for i, a := range e.Missing {
		names[i] = a.String()
	}
	sort.Strings(names)
	return fmt.Sprintf("missing Kubernetes permissions in namespace %s: cannot %s; bind the unikube-state Role (internal/kube/rbac/role.yaml) to the caller in that namespace",
		e.Namespace, strings.Join(names, ", cannot "))
}

// ErrMissing is matched by errors.Is for a *MissingError.
var ErrMissing = errors.New("missing Kubernetes permissions")

// Is makes errors.Is(err, ErrMissing) work.
func (e *MissingError) Is(target error) bool { return target == ErrMissing }

// Check asks the API server, for each access in want (default: Needed()),
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
