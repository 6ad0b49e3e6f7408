package images

// The entrypoints follow the official images' environment variables so the
// same manifests run on a kind cluster with the Docker Hub images. They run
// under busybox sh, which each database image carries.

const postgresEntrypoint = `#!/bin/sh
# First start: initdb with POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB, then
# run the server in the foreground (like the official postgres image).
set -eu
if [ "${1:-}" = "postgres" ] && [ "$(id -u)" != 0 ]; then
  : "${PGDATA:=/var/lib/postgresql/data}"
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
      echo "error: database is uninitialized and POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)" >&2
      exit 1
    fi
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA" 2>/dev/null || true
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
      --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\njit = off\n" >> "$PGDATA/postgresql.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
      pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
      psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -q -c "CREATE DATABASE \"$POSTGRES_DB\"" </dev/null
      pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "PostgreSQL init process complete; ready for start up."
  fi
fi
exec "$@"
`

const mariadbConfig = `[mysqld]
datadir = /var/lib/mysql
socket = /run/mysqld/mysqld.sock
bind-address = 0.0.0.0
skip-name-resolve
skip-host-cache
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci

[client]
socket = /run/mysqld/mysqld.sock
default-character-set = utf8mb4
`

const mariadbEntrypoint = `#!/bin/sh
# First start: mariadb-install-db, then an init file that sets the root
# password and creates MARIADB_DATABASE/MARIADB_USER (like the official image).
set -eu
if [ "${1:-}" = "mariadbd" ] || [ "${1:-}" = "mysqld" ]; then
  datadir=/var/lib/mysql
  if [ ! -d "$datadir/mysql" ]; then
    root_pw=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
    allow_empty=${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}
    if [ -z "$root_pw" ] && [ -z "$allow_empty" ]; then
      echo "error: database is uninitialized and MARIADB_ROOT_PASSWORD is not set (or set MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1)" >&2
      exit 1
    fi
    mariadb-install-db --datadir="$datadir" --skip-test-db --skip-name-resolve \
      --auth-root-authentication-method=normal --rpm >/dev/null
    db=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
    user=${MARIADB_USER:-${MYSQL_USER:-}}
    pass=${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}
    sq() { printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g"; }
    init=$(mktemp)
    {
      echo "SET @@SESSION.SQL_LOG_BIN=0;"
      # mariadb-install-db also made password-less root@127.0.0.1/::1/HOSTNAME and anonymous users.
      echo "DROP USER IF EXISTS ''@'localhost', ''@'$(sq "$(hostname)")', 'root'@'127.0.0.1', 'root'@'::1';"
      if [ "$(hostname)" != localhost ]; then echo "DROP USER IF EXISTS 'root'@'$(sq "$(hostname)")';"; fi
      echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$(sq "$root_pw")';"
      echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$(sq "$root_pw")';"
      echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
      if [ -n "$db" ]; then echo "CREATE DATABASE IF NOT EXISTS \` + "`" + `$db\` + "`" + `;"; fi
      if [ -n "$user" ] && [ -n "$pass" ]; then
        echo "CREATE USER IF NOT EXISTS '$(sq "$user")'@'%' IDENTIFIED BY '$(sq "$pass")';"
        if [ -n "$db" ]; then echo "GRANT ALL ON \` + "`" + `$db\` + "`" + `.* TO '$(sq "$user")'@'%';"; fi
      fi
      echo "FLUSH PRIVILEGES;"
    } > "$init"
    chmod 600 "$init"
    echo "MariaDB init process complete; ready for start up."
    exec "$@" --init-file="$init"
  fi
fi
exec "$@"
`

const redisEntrypoint = `#!/bin/sh
# Without a config file, listen on all addresses with protected mode off and
# keep data in /data (like the official redis image).
set -eu
if [ "${1:-}" = "redis-server" ]; then
  case "${2:-}" in
    ""|-*) shift; set -- redis-server --protected-mode no --bind 0.0.0.0 --dir /data "$@" ;;
  esac
fi
exec "$@"
`

const openSearchEntrypoint = `#!/bin/sh
# A single-node OpenSearch on all addresses with security off (the Maven
# artifacts carry no security plugin), data in /usr/share/opensearch/data,
# snapshots allowed under /usr/share/opensearch/data/snapshots (path.repo).
# OPENSEARCH_JAVA_OPTS replaces the default heap flags.
set -eu
if [ "${1:-}" = "opensearch" ]; then
  home=/usr/share/opensearch
  conf=$home/config
  mkdir -p "$conf" "$home/data/snapshots" "$home/logs" /tmp/opensearch
  cat > "$conf/opensearch.yml" <<YML
cluster.name: ${CLUSTER_NAME:-unikube}
node.name: ${NODE_NAME:-$(hostname)}
discovery.type: single-node
network.host: 0.0.0.0
http.port: 9200
transport.port: 9300
path.data: $home/data
path.logs: $home/logs
path.repo: $home/data/snapshots
cluster.routing.allocation.disk.threshold_enabled: false
bootstrap.memory_lock: false
YML
  cat > "$conf/log4j2.properties" <<'LOG'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
LOG
  # shellcheck disable=SC2086
  exec java ${OPENSEARCH_JAVA_OPTS:--Xms256m -Xmx512m} -XX:+UseSerialGC -XX:-UsePerfData -Xss1m \
    -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djava.io.tmpdir=/tmp/opensearch \
    -Dlog4j2.formatMsgNoLookups=true \
    -Dopensearch.path.home=$home -Dopensearch.path.conf=$conf \
    -cp "$home/lib/*" org.opensearch.bootstrap.OpenSearch
fi
exec "$@"
`
