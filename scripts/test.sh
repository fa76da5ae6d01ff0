#!/usr/bin/env bash
# The test command: installs what is missing, type-checks and builds (the end-to-end tests run the
# compiled processes), then runs every jest suite. Non-interactive; exits by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
export CI=${CI:-true}
npx jest --ci "$@"
