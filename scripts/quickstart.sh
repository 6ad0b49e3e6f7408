#!/usr/bin/env bash
# make quickstart: build the binaries, start the platform server in the
# background (.quickstart/), use the cluster in KUBECONFIG or start the local
# one, install the `helm state` plugin and the shop chart, seed the release
# with `terraform apply` (examples/quickstart/terraform), and show what landed.
# Safe to run again. The steps are in test/quickstart (Go, so they can use
# client-go for what kubectl would do); see its package comment for the
# QUICKSTART_* settings.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./test/quickstart/cmd/quickstart up
