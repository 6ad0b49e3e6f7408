#!/usr/bin/env bash
# Installs what the tests need, idempotently: Debian packages through apt-get
# (only when something is missing) and Go tools into $UNIKUBE_TOOLS_DIR/bin.
set -euo pipefail

TOOLS_DIR=${UNIKUBE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/unikube-state}
mkdir -p "$TOOLS_DIR/bin"

# command -> Debian package providing it
declare -A DEB=(
  [mariadbd]=mariadb-server
  [mariadb]=mariadb-client
  [redis-server]=redis-server
  [pg_restore]=postgresql-client-15
  [initdb]=postgresql-15
)

missing=()
for cmd in "${!DEB[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$cmd" >/dev/null 2>&1 && ! ls /usr/sbin/"$cmd" >/dev/null 2>&1; then
    missing+=("${DEB[$cmd]}")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start their services; the tests start their own on free ports.
  for svc in mariadb redis-server; do
    (service "$svc" stop || systemctl stop "$svc") >/dev/null 2>&1 || true
  done
fi

# Go tools, each pinned, installed once into the cache.
go_tool() { # name module@version
  local name=$1 mod=$2
  if [ ! -x "$TOOLS_DIR/bin/$name" ]; then
    echo "install-deps: go install $mod"
    GOBIN="$TOOLS_DIR/bin" go install "$mod"
  fi
}
go_tool versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0
