#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: npm packages (from the lockfile) and the
# pinned Temporal binaries; then compiles TypeScript to dist/. Quick when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.k2-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # `npm install`, not `npm ci`: with the platform-specific optional packages (@swc/core-*, …) the
  # registry serves here, npm 11 writes lockfiles that its own `npm ci` then rejects as out of sync.
  # With the lockfile present, `npm install` installs exactly the locked versions.
  echo "ensure-deps: npm install (from package-lock.json)" >&2
  npm install --no-audit --no-fund --loglevel=error
  sha256sum package-lock.json | cut -d' ' -f1 > "$stamp"
fi
bash scripts/install-temporal.sh >/dev/null
echo "ensure-deps: compiling TypeScript" >&2
rm -rf dist
npx tsc -p tsconfig.json
node dist/scripts/bundle-workflows.js
