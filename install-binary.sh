#!/bin/sh
# Places the helm-state binary at $HELM_PLUGIN_DIR/helm-state; run by
# `helm plugin install/update` (the hooks in plugin.yaml), after helm-diff's
# install-binary.sh. In order:
#   HELM_STATE_BINARY=PATH    copy this prebuilt binary
#   a release archive         keep the helm-state it brought
#   HELM_STATE_SKIP_BUILD=1   keep an existing helm-state (local installs)
#   a git clone or checkout   download the release archive of plugin.yaml's
#                             version for this OS/arch from
#                             $HELM_STATE_RELEASE_URL (default: the GitHub
#                             release), verify it against the release's
#                             SHA256SUMS (and SHA256SUMS against its
#                             signature SHA256SUMS.sig with gpg when
#                             HELM_STATE_GPG_KEY names the release's public
#                             key file); only when the download fails and Go
#                             is on PATH, build from the source tree, saying
#                             so. A bad checksum or signature never builds.
#   HELM_STATE_BUILD=1        build from source without trying a download
set -eu

repo=unikubehq/terraform-provider-unikube
dir="${HELM_PLUGIN_DIR:-$(cd "$(dirname "$0")" && pwd)}"
bin="$dir/helm-state"
say() { echo "helm-state: $*"; }
fail() { echo "helm-state: $*" >&2; exit 1; }

if [ -n "${HELM_STATE_BINARY:-}" ]; then
  cp "$HELM_STATE_BINARY" "$bin.tmp" && chmod 0755 "$bin.tmp" && mv "$bin.tmp" "$bin"
  say "installed $HELM_STATE_BINARY"
  exit 0
fi

# The plugin directory may be a symlink into the source tree (local and
# VCS installs); a release archive has no go.mod beside plugin.yaml.
src="$(cd "$dir" && pwd -P)"
if [ ! -f "$src/go.mod" ]; then
  [ -x "$bin" ] || fail "no helm-state binary in $dir: install a release archive (helm-state_<version>_<os>_<arch>.tar.gz) or the git repository"
  say "using the bundled $bin"
  exit 0
fi
if [ "${HELM_STATE_SKIP_BUILD:-}" = "1" ] && [ -x "$bin" ]; then
  say "keeping $bin"
  exit 0
fi

version="${HELM_STATE_VERSION:-$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$dir/plugin.yaml" | head -n 1)}"
version="${version#v}"

build() { # version the binary reports (internal/buildinfo)
  pkg="github.com/$repo/internal/buildinfo"
  commit="$(cd "$src" && git rev-parse HEAD 2>/dev/null)" || commit=""
  (cd "$src" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $pkg.version=$1 -X $pkg.commit=$commit -X $pkg.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -o "$bin.tmp" ./helmplugin/cmd/helm-state) || fail "go build failed (see above)"
  mv "$bin.tmp" "$bin"
  say "built $bin ($1) from source with $(go version)"
}

if [ "${HELM_STATE_BUILD:-}" = "1" ]; then
  command -v go >/dev/null 2>&1 || fail "HELM_STATE_BUILD=1 but go is not on PATH"
  # A build of a working tree is a development build: it reports dev and
  # works with an agent built as dev from the same tree (make images
  # VERSION=dev), as the agent handshake demands.
  build "${HELM_STATE_VERSION:-dev}"
  exit 0
fi

os="$(uname -s | tr '[:upper:]' '[:lower:]')"
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac
base="${HELM_STATE_RELEASE_URL:-https://github.com/$repo/releases/download/v$version}"
base="${base%/}"
archive="helm-state_${version}_${os}_${arch}.tar.gz"
sums="terraform-provider-unikube_${version}_SHA256SUMS"

fetch() { # url file
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    echo "helm-state: neither curl nor wget is installed" >&2
    return 1
  fi
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  else
    shasum -a 256 "$1" | cut -d ' ' -f 1
  fi
}

# verify_signature checks SHA256SUMS against SHA256SUMS.sig (a detached
# gpg signature, as `make release` makes it) with only the key in
# HELM_STATE_GPG_KEY, in a keyring of its own: the user's keyring and its
# trust settings play no part. Without HELM_STATE_GPG_KEY it says the
# checksums are unsigned as far as it knows.
verify_signature() { # dir-holding-sums
  if [ -z "${HELM_STATE_GPG_KEY:-}" ]; then
    say "HELM_STATE_GPG_KEY is not set: not checking the signature of $sums"
    return 0
  fi
  command -v gpg >/dev/null 2>&1 || fail "HELM_STATE_GPG_KEY is set but gpg is not installed: install gnupg (Debian: apt-get install gnupg), or unset HELM_STATE_GPG_KEY to rely on the checksum alone"
  [ -f "$HELM_STATE_GPG_KEY" ] && [ -r "$HELM_STATE_GPG_KEY" ] || fail "HELM_STATE_GPG_KEY=$HELM_STATE_GPG_KEY is not a readable file: point it at the release's public key (armored or binary)"
  fetch "$base/$sums.sig" "$1/$sums.sig" || fail "download of $base/$sums.sig failed: HELM_STATE_GPG_KEY asks for a signed release; not installing without the signature"
  gnupg="$1/gnupg"
  mkdir -m 0700 "$gnupg"
  gpg --batch --quiet --homedir "$gnupg" --import "$HELM_STATE_GPG_KEY" >"$1/gpg.log" 2>&1 ||
    fail "gpg could not import the key in $HELM_STATE_GPG_KEY: $(cat "$1/gpg.log")"
  ok=0
  gpg --batch --homedir "$gnupg" --status-fd 3 --verify "$1/$sums.sig" "$1/$sums" 3>"$1/gpg.status" >"$1/gpg.log" 2>&1 && ok=1
  gpgconf --homedir "$gnupg" --kill all >/dev/null 2>&1 || true
  fpr="$(awk '$2 == "VALIDSIG" { print $3; exit }' "$1/gpg.status")"
  if [ "$ok" != 1 ] || [ -z "$fpr" ]; then
    fail "the signature $base/$sums.sig does not verify $sums with the key in $HELM_STATE_GPG_KEY; not installing: $(grep -v '^$' "$1/gpg.log" | head -n 3)"
  fi
  say "$sums: good signature by $fpr"
}

# download prints why it failed and returns 1; the caller decides whether a
# source build may stand in.
download() {
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  say "downloading $base/$archive"
  fetch "$base/$archive" "$tmp/$archive" || { echo "helm-state: download of $base/$archive failed" >&2; return 1; }
  fetch "$base/$sums" "$tmp/$sums" || { echo "helm-state: download of $base/$sums failed" >&2; return 1; }
  verify_signature "$tmp"
  want="$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$tmp/$sums")"
  [ -n "$want" ] || { echo "helm-state: $sums lists no $archive" >&2; return 1; }
  got="$(sha256 "$tmp/$archive")"
  if [ "$got" != "$want" ]; then
    # A tampered or truncated archive is never a reason to build instead.
    fail "checksum mismatch for $archive: got sha256 $got, $sums says $want; not installing it"
  fi
  mkdir -p "$tmp/x"
  tar -xzf "$tmp/$archive" -C "$tmp/x" helm-state || { echo "helm-state: $archive holds no helm-state binary" >&2; return 1; }
  # A link would make chmod and the plugin act on a file outside the
  # archive (the checksums come from the same server as the archive).
  if [ -L "$tmp/x/helm-state" ] || [ ! -f "$tmp/x/helm-state" ]; then
    fail "helm-state in $archive is not a regular file; not installing it"
  fi
  chmod 0755 "$tmp/x/helm-state"
  mv "$tmp/x/helm-state" "$bin"
  say "installed $archive (sha256 verified)"
}

if download; then
  exit 0
fi
if command -v go >/dev/null 2>&1; then
  say "no release archive for $version $os/$arch; building from source with Go instead"
  build "v$version"
  exit 0
fi
fail "could not install the release archive for $version $os/$arch and go is not on PATH to build from source: check the network or HELM_STATE_RELEASE_URL, or set HELM_STATE_BINARY to a helm-state binary"
