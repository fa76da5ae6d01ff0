#!/usr/bin/env bash
# The start command: installs what is missing, builds, and runs the whole system with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# --cluster: the production topology (cluster/README.md) needs the Temporal server built from Go and nginx.
for arg in "$@"; do
  if [ "$arg" = --cluster ]; then
    bash scripts/install-cluster-tools.sh >/dev/null
    bash scripts/ensure-nginx.sh >/dev/null
  fi
done
exec node dist/scripts/up.js "$@"
