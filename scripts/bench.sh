#!/usr/bin/env bash
# The benchmark command (`npm run bench`): installs what is missing and builds (scripts/ensure-deps.sh),
# then runs every benchmark (dist/bench/run-all.js), which writes bench/reports/<name>.json and
# bench/reports/summary.md. A missed goal does not fail the run; a crashing benchmark does (exit 1).
# Extra arguments go to run-all, e.g.: npm run bench -- --only=api-ingest
set -euo pipefail
cd "$(dirname "$0")/.."
if ! bash scripts/ensure-deps.sh; then
  # ensure-deps.sh can fail in `npm ci` (lockfile judged out of sync by this npm) although the
  # installed node_modules are complete. Benchmarks can still run then: build and carry on, loudly.
  if [ -x node_modules/.bin/tsc ] && [ -x .tools/bin/temporal ]; then
    echo "bench: WARNING: scripts/ensure-deps.sh failed; using the installed node_modules and .tools as they are" >&2
    npx tsc -p tsconfig.json
  else
    echo "bench: scripts/ensure-deps.sh failed and node_modules or .tools is incomplete" >&2
    exit 1
  fi
fi
# --expose-gc: gkb-files calls gc() before each run so its RSS baseline is clean.
exec node --expose-gc dist/bench/run-all.js "$@"
