# Restore a PostgreSQL dump downloaded from a URL into a database.
#
# interpreter: bash        image: a PostgreSQL image with psql/pg_restore and
#                                 curl or wget (localhost/postgres:15 in the test cluster)
# variables:   DUMP_URL    (required) where the dump is (pg_dump custom format or plain SQL)
#              PGHOST      (required) the database host, e.g. db.shop.svc.cluster.local
#              PGDATABASE  (default postgres), PGUSER (default postgres), PGPORT (default 5432)
# credentials: a Secret with key PGPASSWORD (it becomes $PGPASSWORD, which psql reads)
#
# Runs under `set -Eeuo pipefail`; a failing command stops it and is reported
# with its line number.
dump="$TMPDIR/dump"
echo "downloading the dump"
if command -v curl >/dev/null 2>&1; then
  curl -fsSL -o "$dump" "$DUMP_URL"
else
  wget -q -O "$dump" "$DUMP_URL"
fi
echo "downloaded $(wc -c < "$dump") bytes"
pg_isready -t 60 >/dev/null
if [ "$(head -c 5 "$dump")" = "PGDMP" ]; then
  pg_restore --clean --if-exists --no-owner --exit-on-error -d "$PGDATABASE" "$dump"
else
  psql -v ON_ERROR_STOP=1 -q -f "$dump"
fi
echo "restored into $PGDATABASE on $PGHOST"
