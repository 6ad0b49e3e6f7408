#!/bin/sh
# Places the helm-state binary at $HELM_PLUGIN_DIR/bin/helm-state, run by
# `helm plugin install/update`:
#   HELM_STATE_SKIP_BUILD=1   keep an existing bin/helm-state (local installs)
#   HELM_STATE_BINARY=PATH    copy a prebuilt binary
#   otherwise                 go build from the source tree around the plugin
set -eu
dir="${HELM_PLUGIN_DIR:-$(cd "$(dirname "$0")" && pwd)}"
bin="$dir/bin/helm-state"
mkdir -p "$dir/bin"
if [ "${HELM_STATE_SKIP_BUILD:-}" = "1" ] && [ -x "$bin" ]; then
  echo "helm-state: keeping $bin"
  exit 0
fi
if [ -n "${HELM_STATE_BINARY:-}" ]; then
  cp "$HELM_STATE_BINARY" "$bin.tmp" && chmod 0755 "$bin.tmp" && mv "$bin.tmp" "$bin"
  echo "helm-state: installed $HELM_STATE_BINARY"
  exit 0
fi
# The plugin directory may be a symlink into the source tree (local installs).
src="$(cd "$dir" && pwd -P)/.."
if ! command -v go >/dev/null 2>&1; then
  echo "helm-state: go is not installed; set HELM_STATE_BINARY to a prebuilt helm-state binary" >&2
  exit 1
fi
if [ ! -f "$src/go.mod" ]; then
  echo "helm-state: no source tree at $src; set HELM_STATE_BINARY to a prebuilt helm-state binary" >&2
  exit 1
fi
# The version of the checkout (as `make images` tags the agent image, so the
# plugin's default agent image is the one built from the same source); the
# plugin.yaml version outside a git checkout.
pkg=github.com/unikubehq/terraform-provider-unikube/internal/buildinfo
version="$(cd "$src" && git describe --tags --always --dirty 2>/dev/null)" ||
  version="$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$dir/plugin.yaml")"
commit="$(cd "$src" && git rev-parse HEAD 2>/dev/null)" || commit=""
date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
(cd "$src" && CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X $pkg.version=${version} -X $pkg.commit=${commit} -X $pkg.date=${date}" \
  -o "$bin.tmp" ./helmplugin/cmd/helm-state)
mv "$bin.tmp" "$bin"
echo "helm-state: built $bin"
