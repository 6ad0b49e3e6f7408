package discovery

import (
	"fmt"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
)

// SetAgentResources sets the agent Job resources of mappings from
// "COMPONENT=cpu=250m,memory=512Mi" specs (the keys of
// jobs.ResourceKeys); COMPONENT "*" applies to every component no spec
// names. A spec naming a component the mappings lack is an error listing
// the components there are.
func SetAgentResources(ms []Mapping, specs []string) error {
	named := map[string]bool{}
	var all string
	for _, s := range specs {
		comp, rs, ok := strings.Cut(s, "=")
		if !ok || comp == "" || !strings.Contains(rs, "=") {
			return fmt.Errorf("agent resources %q: want COMPONENT=cpu=250m,memory=512Mi (or *=... for every component; keys: %s)", s, jobs.ResourceKeys)
		}
		r, err := jobs.ParseResources(rs)
		if err != nil {
			return fmt.Errorf("agent resources of %s: %w", comp, err)
		}
		if named[comp] || (comp == "*" && all != "") {
			return fmt.Errorf("agent resources of %s given twice", comp)
		}
		if comp == "*" {
			all = rs
			for i := range ms {
				if !named[ms[i].Component] {
					ms[i].Resources = r.DeepCopy()
				}
			}
			continue
		}
		found := false
		for i := range ms {
			if ms[i].Component == comp {
				ms[i].Resources, found = r, true
			}
		}
		if !found {
			names := make([]string, 0, len(ms))
			for _, m := range ms {
				names = append(names, m.Component)
			}
			return fmt.Errorf("agent resources %q: there is no component %q (there are: %s)", s, comp, strings.Join(names, ", "))
		}
		named[comp] = true
	}
	return nil
}
