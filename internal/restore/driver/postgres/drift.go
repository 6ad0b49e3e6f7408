package postgres

// Drift the marker cannot see: the marker says which version a database
// received, not whether someone changed its rows since. PostgreSQL counts
// every row a table receives, changes and loses (pg_stat_user_tables:
// n_tup_ins, n_tup_upd, n_tup_del) and gives a table a new file when it
// is truncated or rewritten (pg_class.relfilenode). The marker records
// these per table right after the restore; a plan reads them again and
// names the tables whose figures moved.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
)

// OptDrift says whether a plan compares the tables' write counters with
// those recorded at apply time: "tables" (default) or "off" (an app that
// writes to its database on its own would otherwise always be "changed
// since apply").
const OptDrift = "drift"

// Drift settings.
const (
	DriftTables = "tables"
	DriftOff    = "off"
)

// TableStat is what PostgreSQL's statistics say about one table: rows
// inserted, updated and deleted since the statistics began, and the
// table's file (a TRUNCATE, VACUUM FULL or CLUSTER gives it a new one).
type TableStat struct {
	Ins  int64  `json:"i"`
	Upd  int64  `json:"u"`
	Del  int64  `json:"d"`
	File uint32 `json:"f"`
}

func (s TableStat) zero() bool { return s.Ins == 0 && s.Upd == 0 && s.Del == 0 }

// TableStats are the figures of every user table but the marker, by
// "schema.table".
type TableStats map[string]TableStat

const tableStatsQuery = `SELECT s.schemaname || '.' || s.relname, s.n_tup_ins, s.n_tup_upd, s.n_tup_del, c.relfilenode::bigint
	FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
	WHERE NOT (s.schemaname = 'public' AND s.relname = '` + MarkerTable + `')`

func readTableStats(ctx context.Context, c *pgx.Conn) (TableStats, error) {
	// A new snapshot each time: within a transaction the statistics are
	// otherwise read once and cached.
	if _, err := c.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return nil, fmt.Errorf("read table statistics: %w", err)
	}
	rows, err := c.Query(ctx, tableStatsQuery)
	if err != nil {
		return nil, fmt.Errorf("read table statistics: %w", err)
	}
	out := TableStats{}
	for rows.Next() {
		var name string
		var s TableStat
		var file int64
		if err := rows.Scan(&name, &s.Ins, &s.Upd, &s.Del, &file); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read table statistics: %w", err)
		}
		s.File = uint32(file)
		out[name] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read table statistics: %w", err)
	}
	return out, nil
}

// settledTableStats reads the figures until two reads 200 ms apart agree
// (at most about 3 s): the restoring sessions hand their counts to the
// statistics as they end, which may be just after they returned.
func settledTableStats(ctx context.Context, c *pgx.Conn) (TableStats, error) {
	last, err := readTableStats(ctx, c)
	if err != nil {
		return nil, err
	}
	for range 15 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		now, err := readTableStats(ctx, c)
		if err != nil {
			return nil, err
		}
		if equalStats(last, now) {
			return now, nil
		}
		last = now
	}
	return last, nil
}

func equalStats(a, b TableStats) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Drift is what the statistics say changed since the apply.
type Drift struct {
	// Changed names the tables with rows inserted, updated or deleted,
	// truncated or rewritten, created or dropped since the apply, each
	// with what happened ("public.users: 2 updated").
	Changed []string
	// Reset names the tables whose counters are back at zero (a
	// pg_stat_reset(), or a crash or immediate shutdown, which loses the
	// statistics): changes before the reset cannot be seen.
	Reset []string
}

// CompareTableStats says how now differs from the figures recorded at
// apply time.
func CompareTableStats(at, now TableStats) Drift {
	var d Drift
	for name, a := range at {
		n, ok := now[name]
		switch {
		case !ok:
			d.Changed = append(d.Changed, name+": dropped")
		case n == a:
		case n.File != a.File:
			d.Changed = append(d.Changed, name+": truncated or rewritten")
		case n.zero() && !a.zero():
			d.Reset = append(d.Reset, name)
		case n.Ins < a.Ins || n.Upd < a.Upd || n.Del < a.Del:
			// Reset since, and written after the reset.
			d.Changed = append(d.Changed, name+": "+counts(n))
		default:
			d.Changed = append(d.Changed, name+": "+counts(TableStat{Ins: n.Ins - a.Ins, Upd: n.Upd - a.Upd, Del: n.Del - a.Del}))
		}
	}
	for name := range now {
		if _, ok := at[name]; !ok {
			d.Changed = append(d.Changed, name+": created")
		}
	}
	slices.Sort(d.Changed)
	slices.Sort(d.Reset)
	return d
}

func counts(s TableStat) string {
	var parts []string
	for _, p := range []struct {
		n    int64
		verb string
	}{{s.Ins, "inserted"}, {s.Upd, "updated"}, {s.Del, "deleted"}} {
		if p.n != 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.verb))
		}
	}
	if len(parts) == 0 {
		return "counters changed"
	}
	return strings.Join(parts, ", ")
}

// maxNamed is how many tables a plan names; the rest are counted.
const maxNamed = 5

// list names at most maxNamed of names, then says how many more.
func list(names []string) string {
	if len(names) <= maxNamed {
		return strings.Join(names, "; ")
	}
	return strings.Join(names[:maxNamed], "; ") + fmt.Sprintf("; and %d more", len(names)-maxNamed)
}

// planDrift turns a database that holds the planned version back into a
// replace when its tables changed since the apply.
func planDrift(ctx context.Context, e endpoint, m *Marker, t driver.Target, pl *driver.ComponentPlan, size int64) error {
	if t.Option(OptDrift, DriftTables) == DriftOff {
		return nil
	}
	if m.Tables == nil {
		pl.Warnings = append(pl.Warnings, "changes since the apply cannot be seen: the marker was written by an older version (the next apply records the tables' statistics)")
		return nil
	}
	c, err := e.connect(ctx, e.db)
	if err != nil {
		return fmt.Errorf("read table statistics of %s: %w", e.db, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	now, err := readTableStats(ctx, c)
	if err != nil {
		return err
	}
	d := CompareTableStats(m.Tables, now)
	if len(d.Reset) > 0 {
		pl.Warnings = append(pl.Warnings, fmt.Sprintf("the statistics of %s were reset since the apply (pg_stat_reset() or a crash): changes made before the reset cannot be seen", list(d.Reset)))
	}
	if len(d.Changed) > 0 {
		pl.Action, pl.Bytes = driver.ActionReplace, size
		pl.Changed = d.Changed[:min(len(d.Changed), driver.MaxChanged)]
		pl.Reason = driver.ReasonChanged + ": " + list(d.Changed)
	}
	return nil
}

func validDrift(t driver.Target) error {
	if v := t.Option(OptDrift, DriftTables); v != DriftTables && v != DriftOff {
		return fmt.Errorf("option %s=%q: want %s or %s", OptDrift, v, DriftTables, DriftOff)
	}
	return nil
}
