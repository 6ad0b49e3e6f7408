# Restore a PostgreSQL dump downloaded from a URL into a database.
#
# interpreter: sh          image: a PostgreSQL image with psql/pg_restore and
#                                 curl or wget (10.213.0.1:5000/postgres:15 in the test cluster)
# variables:   DUMP_URL    (required) where the dump is (pg_dump custom format or plain SQL)
#              PGHOST      (required) the database host, e.g. db.shop.svc.cluster.local
#              PGDATABASE  (default postgres), PGUSER (default postgres), PGPORT (default 5432)
# credentials: a Secret with key PGPASSWORD (it becomes $PGPASSWORD, which psql reads)
#
# Runs under sh -e (and set -u below): the first failing command stops it.
# (The postgres image has no bash; with bash, the run would also record the
# failing line and command.)
set -u
dump="$TMPDIR/dump"
echo "downloading the dump"
if command -v curl >/dev/null 2>&1; then
  curl -fsSL -o "$dump" "$DUMP_URL"
else
  wget -q -O "$dump" "$DUMP_URL"
fi
echo "downloaded $(wc -c < "$dump") bytes"
tries=0
until pg_isready -q; do
  tries=$((tries + 1))
  if [ "$tries" -ge 90 ]; then
    echo "database $PGHOST is not ready after 90s" >&2
    exit 1
  fi
  sleep 1
done
if [ "$(head -c 5 "$dump")" = "PGDMP" ]; then
  pg_restore --clean --if-exists --no-owner --exit-on-error -d "$PGDATABASE" "$dump"
else
  psql -v ON_ERROR_STOP=1 -q -f "$dump"
fi
echo "restored into $PGDATABASE on $PGHOST"
