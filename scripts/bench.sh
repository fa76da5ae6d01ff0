#!/usr/bin/env bash
# The benchmark command (`npm run bench`): installs what is missing and builds (scripts/ensure-deps.sh),
# then runs every benchmark (dist/bench/run-all.js), which writes bench/reports/<name>.json and
# bench/reports/summary.md. A missed goal does not fail the run; a crashing benchmark does (exit 1).
# Extra arguments go to run-all, e.g.: npm run bench -- --only=api-ingest
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# --expose-gc: gkb-files calls gc() before each run so its RSS baseline is clean.
exec node --expose-gc dist/bench/run-all.js "$@"
