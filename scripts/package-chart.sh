#!/usr/bin/env bash
# Package charts/unikube-platform at the platform's version, so chart X
# deploys image tag X by default.
#
#   scripts/package-chart.sh [VERSION] [DEST]
#
# VERSION defaults to $VERSION, else `git describe --tags --always --dirty`
# (the tag `make images` gives the images). A release tag v1.4.0 gives chart
# version 1.4.0 (Helm wants SemVer without the "v") and appVersion v1.4.0
# (the image tag as pushed); anything else, e.g. a commit 1a2b3c4-dirty,
# gives chart version 0.0.0-1a2b3c4-dirty. DEST defaults to dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-${VERSION:-$(git describe --tags --always --dirty)}}"
dest="${2:-dist}"
helm="${HELM_BIN:-helm}"
if [[ "$version" =~ ^v?([0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?)$ ]]; then
  chart_version="${BASH_REMATCH[1]}"
else
  chart_version="0.0.0-${version//[^0-9A-Za-z.-]/-}"
fi
mkdir -p "$dest"
"$helm" lint --strict charts/unikube-platform >/dev/null
"$helm" package charts/unikube-platform --version "$chart_version" --app-version "$version" --destination "$dest"
