package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	OutputTable = "table"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

func printOut(w io.Writer, format string, v any, table func(io.Writer) error) error {
	switch format {
	case "", OutputTable:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if err := table(tw); err != nil {
			return err
		}
		return tw.Flush()
	case OutputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case OutputYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return usageErrorf("unknown output format %q: use table, json or yaml", format)
}

func validOutput(f string) error {
	switch f {
	case "", OutputTable, OutputJSON, OutputYAML:
		return nil
	}
	return usageErrorf("unknown output format %q for -o: use table, json or yaml", f)
}

// row writes one tab-separated table row.
func row(w io.Writer, cols ...any) {
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}
