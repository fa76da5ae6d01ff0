#!/usr/bin/env bash
# A longer API fuzzing run by hand: test/e2e/fuzz-api.test.ts with extra `st run` arguments, which
# come after the test's defaults and so win (e.g. `npm run fuzz -- --max-examples 5000 --seed 7`).
# Installs what is missing and builds dist/ first, as `npm test` does (the test runs the real
# processes). The cassette, schemathesis's output and a summary are in artifacts/fuzz-api/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
K2_FUZZ_ST_ARGS=$(node -e 'process.stdout.write(JSON.stringify(process.argv.slice(1)))' -- "$@")
export K2_FUZZ_ST_ARGS
exec npx jest --ci test/e2e/fuzz-api.test.ts
