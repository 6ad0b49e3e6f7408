package commands

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// Completion: Helm runs the plugin's plugin.complete for `helm state
// <TAB>`, which runs cobra's __complete here; so subcommands and flags
// complete from this command tree, and the arguments below from the
// namespace (release names) and the platform (project/state:tag).

// argKind is what a positional argument holds.
type argKind int

const (
	argNone argKind = iota
	argRef
	argState
	argRelease
)

// completionArgs lists the positional arguments of each command (by its
// path under the root) that complete dynamically.
var completionArgs = map[string][]argKind{
	"apply":            {argRef, argRelease},
	"history":          {argRelease},
	"rollback":         {argRelease},
	"capture":          {argRelease},
	"show":             {argRef},
	"versions":         {argRef},
	"promote":          {argRef},
	"retag":            {argRef},
	"prune-candidates": {argState},
	"list":             {argNone},
	"script run":       {argNone, argRelease},
}

// completionTimeout bounds each lookup: a slow platform or cluster must not
// hang the shell.
const completionTimeout = 5 * time.Second

func addCompletions(root *cobra.Command, s *Settings) {
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{OutputTable, OutputJSON, OutputYAML}, cobra.ShellCompDirectiveNoFileComp))
	for _, c := range root.Commands() {
		walkCommands(c, func(c *cobra.Command) {
			path := strings.TrimPrefix(c.CommandPath(), root.CommandPath()+" ")
			if kinds, ok := completionArgs[path]; ok {
				c.ValidArgsFunction = func(cmd *cobra.Command, a []string, toComplete string) ([]string, cobra.ShellCompDirective) {
					if len(a) >= len(kinds) {
						return nil, cobra.ShellCompDirectiveNoFileComp
					}
					return complete(cmd, s, kinds[len(a)], toComplete)
				}
			}
			if c.Flags().Lookup("to") != nil {
				_ = c.RegisterFlagCompletionFunc("to", func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
					return complete(cmd, s, argRef, toComplete)
				})
			}
			if c.DisableFlagParsing && (c.Name() == "install" || c.Name() == "upgrade") {
				// helm's flags are not parsed here: only --state's value
				// completes (release and chart are the user's to name).
				c.ValidArgsFunction = func(cmd *cobra.Command, a []string, toComplete string) ([]string, cobra.ShellCompDirective) {
					if len(a) > 0 && a[len(a)-1] == "--state" {
						return complete(cmd, s, argRef, toComplete)
					}
					return nil, cobra.ShellCompDirectiveDefault
				}
			}
		})
	}
}

func walkCommands(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walkCommands(sub, f)
	}
}

func complete(cmd *cobra.Command, s *Settings, kind argKind, toComplete string) ([]string, cobra.ShellCompDirective) {
	ctx, cancel := context.WithTimeout(s.Context(cmd), completionTimeout)
	defer cancel()
	switch kind {
	case argRelease:
		return completeReleases(ctx, s, toComplete), cobra.ShellCompDirectiveNoFileComp
	case argRef, argState:
		return completeRefs(ctx, s, toComplete, kind == argRef)
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeReleases lists the Helm releases of the namespace from Helm's
// storage labels (release Secrets carry owner=helm and name=<release>), so
// completion reads no release bodies.
func completeReleases(ctx context.Context, s *Settings, toComplete string) []string {
	cs, _, err := s.Kube()
	if err != nil {
		cobra.CompDebugln("helm state: "+err.Error(), true)
		return nil
	}
	ns := s.Namespace()
	seen := map[string]bool{}
	list, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err == nil {
		for _, x := range list.Items {
			seen[x.Labels["name"]] = true
		}
	}
	cms, err2 := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err2 == nil {
		for _, x := range cms.Items {
			seen[x.Labels["name"]] = true
		}
	}
	if err != nil && err2 != nil {
		cobra.CompDebugln("helm state: list releases in "+ns+": "+err.Error(), true)
	}
	return matching(seen, toComplete)
}

// completeRefs completes PROJECT/, then PROJECT/STATE, then (withTag)
// PROJECT/STATE:TAG and the @ expressions from the platform.
func completeRefs(ctx context.Context, s *Settings, toComplete string, withTag bool) ([]string, cobra.ShellCompDirective) {
	pc, err := s.Platform()
	if err != nil {
		cobra.CompDebugln("helm state: "+err.Error(), true)
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	project, rest, hasSlash := strings.Cut(toComplete, "/")
	if !hasSlash {
		ps, err := pc.ListProjects(ctx)
		if err != nil {
			return debugEmpty(err)
		}
		set := map[string]bool{}
		for _, p := range ps {
			set[p.Name+"/"] = true
		}
		return matching(set, toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	state, _, hasColon := strings.Cut(rest, ":")
	if !hasColon || !withTag {
		sts, err := pc.ListStates(ctx, project)
		if err != nil {
			return debugEmpty(err)
		}
		set := map[string]bool{}
		for _, st := range sts {
			set[project+"/"+st.Name] = true
		}
		d := cobra.ShellCompDirectiveNoFileComp
		if withTag {
			// A tag may follow: no space after the state.
			d |= cobra.ShellCompDirectiveNoSpace
		}
		return matching(set, toComplete), d
	}
	vs, err := pc.ListVersions(ctx, project, state, client.ListVersionsOptions{})
	if err != nil {
		return debugEmpty(err)
	}
	prefix := project + "/" + state + ":"
	set := map[string]bool{prefix + "@latest": true}
	for _, v := range vs {
		if v.Candidate {
			set[prefix+"@candidate"] = true
		}
		if v.Tag != "" {
			set[prefix+v.Tag] = true
		}
	}
	return matching(set, toComplete), cobra.ShellCompDirectiveNoFileComp
}

func debugEmpty(err error) ([]string, cobra.ShellCompDirective) {
	cobra.CompDebugln("helm state: "+err.Error(), true)
	return nil, cobra.ShellCompDirectiveNoFileComp
}

func matching(set map[string]bool, prefix string) []string {
	var out []string
	for k := range set {
		if k != "" && strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}
