package commands

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/unikubehq/terraform-provider-unikube/internal/statediff"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func newDiffCmd(s *Settings) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "diff FROM TO",
		Short: "Show what changed between two versions of a state, from their manifests (no data is downloaded)",
		Long: `Compares two versions component by component: size and content; for PostgreSQL
and MySQL/MariaDB the tables added, removed or changed with row counts and sizes
(of the table's data in the dump) before and after, and the schema's changes as a
unified diff; for Redis the key count per database and type; for volumes the files
added, removed or changed with their sizes; changed component metadata (server
versions, ...). Only what changed is listed (--all adds unchanged components).

It reads only the two manifests and the summaries captures record in them, so it
takes as long as two small downloads whatever the size of the data. A version
captured before summaries were recorded is compared by size and digest and says
"summary not recorded".

TO may name only a tag or digest (":v2", "@sha256:...") to mean FROM's state.`,
		Example: `  helm state diff shop/seed:v1 shop/seed:v2
  helm state diff shop/seed:v1 :@latest -o json`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			from, err := parseRef(a[0])
			if err != nil {
				return err
			}
			toArg := a[1]
			if strings.HasPrefix(toArg, ":") || strings.HasPrefix(toArg, "@") {
				toArg = from.StateName() + toArg
			}
			to, err := parseRef(toArg)
			if err != nil {
				return err
			}
			pc, err := s.Platform()
			if err != nil {
				return err
			}
			ctx := s.Context(cmd)
			ma, da, err := pc.GetManifest(ctx, from.Project, from.State, refArg(from))
			if err != nil {
				return platformErr("diff: "+a[0], err)
			}
			mb, db, err := pc.GetManifest(ctx, to.Project, to.State, refArg(to))
			if err != nil {
				return platformErr("diff: "+toArg, err)
			}
			res, err := statediff.Diff(statediff.Side{Ref: from.String(), Digest: da}, statediff.Side{Ref: to.String(), Digest: db}, ma, mb)
			if err != nil {
				return fmt.Errorf("diff %s %s: %w", a[0], toArg, err)
			}
			if s.Output != "" && s.Output != OutputTable {
				return s.Print(res, nil)
			}
			return renderDiff(s.Out, res, all)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list unchanged components too")
	return cmd
}

func size(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

func arrow[T comparable](before, after T, f func(T) string) string {
	if before == after {
		return f(before)
	}
	return f(before) + " -> " + f(after)
}

// both shows a changed table's before and after even when equal (prices
// changed, rows did not), an added or removed one's single side.
func both(c statediff.Change, before, after int64, f func(int64) string) string {
	switch c {
	case statediff.Added:
		return f(after)
	case statediff.Removed:
		return f(before)
	}
	return f(before) + " -> " + f(after)
}

func count(n int64) string { return humanize.Comma(n) }

// renderDiff writes the diff for people: a line per component, then each
// changed component's tables, schema diff, files, keys and metadata. Each
// section has its own tabwriter so the schema diff is written verbatim.
func renderDiff(w io.Writer, r *statediff.Result, all bool) error {
	fmt.Fprintf(w, "from %s (%s)\nto   %s (%s)\n", r.From.Ref, shortDigest(r.From.Digest), r.To.Ref, shortDigest(r.To.Digest))
	if !r.Changed() {
		fmt.Fprintln(w, "\nno changes")
		if !all {
			return nil
		}
	}
	table := func(head []any, rows func(tw io.Writer)) error {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		row(tw, head...)
		rows(tw)
		return tw.Flush()
	}
	fmt.Fprintln(w)
	if err := table([]any{"COMPONENT", "KIND", "CHANGE", "SIZE"}, func(tw io.Writer) {
		for _, c := range r.Components {
			if c.Change != statediff.Unchanged || all {
				row(tw, c.Name, c.Kind, c.Change, arrow(c.SizeBefore, c.SizeAfter, size))
			}
		}
	}); err != nil {
		return err
	}
	for _, c := range r.Components {
		if c.Change == statediff.Unchanged {
			continue
		}
		for _, n := range c.Notes {
			fmt.Fprintf(w, "\n%s: %s\n", c.Name, n)
		}
		if len(c.Tables) > 0 {
			fmt.Fprintf(w, "\n%s: tables\n", c.Name)
			if err := table([]any{"TABLE", "CHANGE", "ROWS", "SIZE"}, func(tw io.Writer) {
				for _, t := range c.Tables {
					row(tw, t.Name, t.Change, both(t.Change, t.RowsBefore, t.RowsAfter, count), both(t.Change, t.BytesBefore, t.BytesAfter, size))
				}
			}); err != nil {
				return err
			}
		}
		if c.SchemaDiff != "" {
			fmt.Fprintf(w, "\n%s: schema\n%s", c.Name, c.SchemaDiff)
		}
		if len(c.Files) > 0 {
			fmt.Fprintf(w, "\n%s: files\n", c.Name)
			if err := table([]any{"PATH", "CHANGE", "SIZE"}, func(tw io.Writer) {
				for _, f := range c.Files {
					sz := arrow(f.SizeBefore, f.SizeAfter, size)
					if f.Type != statepkg.FileRegular {
						sz = f.Type
					}
					row(tw, f.Path, f.Change, sz)
				}
			}); err != nil {
				return err
			}
		}
		if len(c.Keys) > 0 {
			fmt.Fprintf(w, "\n%s: keys\n", c.Name)
			if err := table([]any{"DB", "TYPE", "KEYS"}, func(tw io.Writer) {
				for _, k := range c.Keys {
					row(tw, k.DB, k.Type, arrow(k.Before, k.After, count))
				}
			}); err != nil {
				return err
			}
		}
		if len(c.Meta) > 0 {
			fmt.Fprintf(w, "\n%s: metadata\n", c.Name)
			if err := table([]any{"KEY", "FROM", "TO"}, func(tw io.Writer) {
				for _, m := range c.Meta {
					row(tw, m.Key, dash(m.Before), dash(m.After))
				}
			}); err != nil {
				return err
			}
		}
	}
	return nil
}
