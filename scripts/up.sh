#!/usr/bin/env bash
# The start command: installs what is missing, builds, and runs the whole system with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec node dist/scripts/up.js "$@"
