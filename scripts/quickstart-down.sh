#!/usr/bin/env bash
# make quickstart-down: uninstall the shop release and delete its namespace,
# stop the platform server, stop the local cluster if the quickstart started
# it (QUICKSTART_KEEP_CLUSTER=1 keeps it), and remove .quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./test/quickstart/cmd/quickstart down
