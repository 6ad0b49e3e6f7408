#!/usr/bin/env bash
# Installs what the tests need, idempotently: Debian packages through apt-get
# (only when something is missing; apt-get update only then) and pinned Go
# tools into $UNIKUBE_TOOLS_DIR/bin. A second run on the same machine does
# nothing and takes well under a second.
set -euo pipefail

TOOLS_DIR=${UNIKUBE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/unikube-state}
mkdir -p "$TOOLS_DIR/bin"

# command -> Debian package providing it. internal/testenv looks for these in
# PATH, /usr/lib/postgresql/*/bin, /usr/sbin and $TOOLS_DIR/bin, as here.
declare -A DEB=(
  [mariadbd]=mariadb-server
  [mariadb-install-db]=mariadb-server
  [mariadb]=mariadb-client
  [mariadb-dump]=mariadb-client
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  # The plugin's install hook checks a release's signature with gpg
  # (test/helmplugin signs one with a throwaway key).
  [gpg]=gnupg
  [gpgconf]=gnupg
  [initdb]=postgresql-15
  [pg_ctl]=postgresql-15
  [pg_restore]=postgresql-client-15
  [pg_dump]=postgresql-client-15
  [psql]=postgresql-client-15
  # scripts/install-opensearch.sh: the test node runs on Java 17, Maven resolves it.
  [java]=openjdk-17-jre-headless
  [mvn]=maven
  # The console's browser tests (internal/platform/console) drive Debian's
  # Chromium headless; the machine cannot download a browser of its own.
  [chromium]=chromium
)

have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local d
  for d in /usr/lib/postgresql/*/bin /usr/sbin /usr/local/sbin /sbin; do
    [ -x "$d/$1" ] && return 0
  done
  return 1
}

missing=()
for cmd in "${!DEB[@]}"; do
  if ! have "$cmd"; then
    pkg=${DEB[$cmd]}
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO=sudo
    else
      echo "install-deps: need root (or sudo) to apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start their own services; the tests start private servers
  # on free ports instead, so stop the system ones (no-ops where nothing runs).
  for svc in mariadb redis-server postgresql; do
    { $SUDO service "$svc" stop || $SUDO systemctl stop "$svc"; } >/dev/null 2>&1 || true
  done
fi

# Go tools, each pinned; reinstalled only when missing or when the pin changes
# (recorded next to the binary, since e.g. versitygw reports no version).
go_tool() { # name module@version
  local name=$1 mod=$2 stamp="$TOOLS_DIR/bin/.$1.version"
  if [ ! -x "$TOOLS_DIR/bin/$name" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$mod" ]; then
    echo "install-deps: go install $mod"
    GOBIN="$TOOLS_DIR/bin" GOFLAGS= go install "$mod"
    echo "$mod" >"$stamp"
  fi
}
# Helm 4 beside Helm 3 (helm on PATH stays Helm 3): the `helm state` plugin's
# tests run under both (test/helmplugin, test/e2e).
helm4_mod=helm.sh/helm/v4/cmd/helm@v4.3.2
if [ ! -x "$TOOLS_DIR/helm4/bin/helm" ] || [ "$(cat "$TOOLS_DIR/helm4/bin/.helm.version" 2>/dev/null)" != "$helm4_mod" ]; then
  echo "install-deps: go install $helm4_mod (into $TOOLS_DIR/helm4/bin)"
  mkdir -p "$TOOLS_DIR/helm4/bin"
  GOBIN="$TOOLS_DIR/helm4/bin" GOFLAGS= go install "$helm4_mod"
  echo "$helm4_mod" >"$TOOLS_DIR/helm4/bin/.helm.version"
fi
go_tool versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0
# The OpenID Connect provider of the SSO tests (internal/testenv.StartOIDCProvider):
# zitadel/oidc's OpenID Provider built from test/oidcprovider, its own module so
# its dependencies stay out of the provider's go.mod; rebuilt when its source changes.
oidc_src="$(cd "$(dirname "$0")/../test/oidcprovider" && pwd)"
oidc_stamp=$(cat "$oidc_src/go.mod" "$oidc_src/go.sum" "$oidc_src"/*.go | sha256sum | cut -d' ' -f1)
if [ ! -x "$TOOLS_DIR/bin/oidcprovider" ] || [ "$(cat "$TOOLS_DIR/bin/.oidcprovider.version" 2>/dev/null)" != "$oidc_stamp" ]; then
  echo "install-deps: go install ./test/oidcprovider (zitadel/oidc)"
  (cd "$oidc_src" && GOBIN="$TOOLS_DIR/bin" GOFLAGS= go install .)
  echo "$oidc_stamp" >"$TOOLS_DIR/bin/.oidcprovider.version"
fi
# The CNCF distribution registry: internal/testenv.StartRegistry (image push tests).
go_tool registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2
# The real helm CLI for the `helm state` plugin's e2e tests (latest v3).
go_tool helm helm.sh/helm/v3/cmd/helm@v3.22.0
# GoReleaser for make release-snapshot / make release and goreleaser check in
# make lint (test/release builds the provider archive with it).
go_tool goreleaser github.com/goreleaser/goreleaser/v2@v2.17.0
# A single-node OpenSearch from Maven for internal/testenv.StartOpenSearch
# (the opensearch driver's tests).
bash "$(dirname "$0")/install-opensearch.sh"
