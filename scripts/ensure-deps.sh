#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: npm packages (from the lockfile) and the
# pinned Temporal binaries; then compiles TypeScript to dist/. Quick when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.k2-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "ensure-deps: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
bash scripts/install-temporal.sh >/dev/null
echo "ensure-deps: compiling TypeScript" >&2
rm -rf dist
npx tsc -p tsconfig.json
