#!/usr/bin/env bash
# schemathesis, the independent API fuzzer of test/e2e/fuzz-api.test.ts and `npm run fuzz`: a pinned
# version from PyPI in a project-local virtual environment, .tools/schemathesis/. Idempotent and
# quiet: when the pinned version is there it returns at once.
#
# Prints one line on stdout, the path of the `st` binary; everything else goes to stderr. When PyPI
# cannot be reached it prints no path, warns and exits 0 (the fuzz test then skips, naming the
# reason); any other failure (PyPI answers but the install breaks) exits non-zero, loudly.
#
# Usage (as .ci/run does):  bash scripts/ensure-schemathesis.sh >/dev/null
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV="$PWD/.tools/schemathesis"
ST="$VENV/bin/st"

log() { echo "ensure-schemathesis: $*" >&2; }

installed() { [ -x "$ST" ] && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" = "$SCHEMATHESIS_VERSION" ]; }

if ! installed; then
  # pip's own index (pip.conf, PIP_INDEX_URL) decides what "PyPI" is here.
  probe=$(mktemp -d)
  trap 'rm -rf "$probe"' EXIT
  if ! timeout 120 python3 -m pip download --quiet --disable-pip-version-check --no-deps --dest "$probe" "schemathesis==$SCHEMATHESIS_VERSION" >/dev/null 2>&1; then
    log "WARNING: schemathesis $SCHEMATHESIS_VERSION cannot be fetched from the package index (unreachable?) — the API fuzz test is skipped"
    exit 0
  fi
  log "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2
  timeout 900 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
  installed || { log "schemathesis $SCHEMATHESIS_VERSION is not in $VENV after the install"; exit 1; }
fi
echo "$ST"
