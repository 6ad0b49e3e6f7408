package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// keepPreviousCopy applies option keep_previous at the end of a successful
// restore into db: made is the previous copy this restore left ("" when it
// made none: in place, or a database that did not exist). Only one copy is
// ever kept, so a copy older than this apply goes, and with keep_previous=0
// this apply's copy goes too. It returns the copy left behind, if any: the
// data is already in place, so a copy that cannot be dropped is reported
// (ComponentResult.Previous) rather than failing the apply, and the next
// apply drops it.
func keepPreviousCopy(ctx context.Context, mc *pgx.Conn, db, made string, keep int) string {
	if made != "" && keep > 0 {
		return made // swap already dropped the older copy to make room
	}
	prev := stagingName(db, prevSuffix)
	if _, err := mc.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(prev)+" WITH (FORCE)"); err != nil {
		return prev
	}
	return ""
}
