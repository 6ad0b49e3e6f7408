package mysql

// Drift the marker cannot see: the marker says which version a schema
// received, not whether someone changed its rows since. MySQL and MariaDB
// have no cheap per-table write counter that survives a restart (InnoDB's
// UPDATE_TIME is kept in memory only, and MySQL 8 caches it for a day),
// so the marker records each table's CHECKSUM TABLE right after the
// restore and a plan computes them again: exact for the rows, at the cost
// of reading every table.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

// OptDrift says whether a plan compares the tables' checksums with those
// recorded at apply time: "checksum" (default) or "off" (a large schema,
// whose every table a plan would read, or an app that writes on its own).
const OptDrift = "drift"

// Drift settings.
const (
	DriftChecksum = "checksum"
	DriftOff      = "off"
)

// tableChecksums are CHECKSUM TABLE of every base table of a schema but
// the marker, by table name (nil: none recorded).
type tableChecksums map[string]uint64

func readChecksums(ctx context.Context, db *sql.DB, schema string) (tableChecksums, error) {
	names, err := listNames(ctx, db, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> ?", schema, MarkerTable)
	if err != nil {
		return nil, fmt.Errorf("list the tables of %s: %w", schema, err)
	}
	out := tableChecksums{}
	if len(names) == 0 {
		return out, nil
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = qi(schema) + "." + qi(n)
	}
	rows, err := db.QueryContext(ctx, "CHECKSUM TABLE "+strings.Join(q, ", "))
	if err != nil {
		return nil, fmt.Errorf("checksum the tables of %s: %w", schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var sum sql.NullInt64
		if err := rows.Scan(&name, &sum); err != nil {
			return nil, fmt.Errorf("checksum the tables of %s: %w", schema, err)
		}
		// "schema.table"; a table dropped meanwhile has no checksum.
		if sum.Valid {
			out[strings.TrimPrefix(name, schema+".")] = uint64(sum.Int64)
		}
	}
	return out, rows.Err()
}

// compareChecksums names the tables that differ, with what happened.
func compareChecksums(at, now tableChecksums) []string {
	var out []string
	for name, a := range at {
		switch n, ok := now[name]; {
		case !ok:
			out = append(out, name+": dropped")
		case n != a:
			out = append(out, name+": rows changed")
		}
	}
	for name := range now {
		if _, ok := at[name]; !ok {
			out = append(out, name+": created")
		}
	}
	slices.Sort(out)
	return out
}

// planDrift turns a schema that holds the planned version back into a
// replace when its tables changed since the apply.
func planDrift(ctx context.Context, e endpoint, m *Marker, t planTarget, pl *driver.ComponentPlan, size int64) error {
	if t.drift == DriftOff {
		return nil
	}
	if m.Tables == "" {
		pl.Warnings = append(pl.Warnings, "changes since the apply cannot be seen: the marker was written by an older version (the next apply records the tables' checksums)")
		return nil
	}
	var at tableChecksums
	if err := json.Unmarshal([]byte(m.Tables), &at); err != nil {
		pl.Warnings = append(pl.Warnings, "changes since the apply cannot be seen: the marker's checksums are unreadable")
		return nil //nolint:nilerr // a damaged marker only loses the drift check
	}
	db, err := e.open(e.db)
	if err != nil {
		return err
	}
	defer db.Close()
	now, err := readChecksums(ctx, db, e.db)
	if err != nil {
		return err
	}
	if changed := compareChecksums(at, now); len(changed) > 0 {
		pl.Action, pl.Bytes = driver.ActionReplace, size
		pl.Changed = changed[:min(len(changed), driver.MaxChanged)]
		named := changed[:min(len(changed), 5)]
		pl.Reason = driver.ReasonChanged + ": " + strings.Join(named, "; ")
		if more := len(changed) - len(named); more > 0 {
			pl.Reason += fmt.Sprintf("; and %d more", more)
		}
	}
	return nil
}

// planTarget is what the plan reads from a target's options.
type planTarget struct{ drift string }

func targetDrift(t driver.Target) (planTarget, error) {
	v := t.Option(OptDrift, DriftChecksum)
	if v != DriftChecksum && v != DriftOff {
		return planTarget{}, fmt.Errorf("option %s=%q: want %s or %s", OptDrift, v, DriftChecksum, DriftOff)
	}
	return planTarget{drift: v}, nil
}
