#!/usr/bin/env bash
# Installs elasticdump (npm) under $TOOLS_DIR/elasticdump for make bench's
# opensearch comparison. Not part of make tools: it pulls ~100 MB of npm
# packages (the AWS SDK among them) that only the benchmark uses.
set -euo pipefail

TOOLS_DIR=${UNIKUBE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/unikube-state}
VERSION=6.125.1
DIR="$TOOLS_DIR/elasticdump"

if [ -x "$DIR/node_modules/.bin/elasticdump" ] && [ "$(cat "$DIR/.version" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install-elasticdump: npm not found; install Node.js and npm (Debian: nodejs npm)" >&2
  exit 1
fi
mkdir -p "$DIR"
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "elasticdump@$VERSION"
echo "$VERSION" >"$DIR/.version"
