#!/usr/bin/env bash
# Builds the production-shaped Temporal pieces from their Go modules (never a prebuilt download) into .tools/bin:
#   temporal-server     go.temporal.io/server/cmd/server            (all services in one process)
#   temporal-sql-tool   go.temporal.io/server/cmd/tools/sql         (schema setup/update)
#   temporal-ui-server  github.com/temporalio/ui-server/v2/cmd/server (Web UI, assets embedded)
# and copies the server module's PostgreSQL schema files to .tools/temporal-schema.
# Idempotent: a stamp with the versions makes a second run return at once. Takes minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-v1.32.0}"
TEMPORAL_UI_SERVER_VERSION="${TEMPORAL_UI_SERVER_VERSION:-v2.54.1}"
BIN_DIR="$PWD/.tools/bin"
SCHEMA_DIR="$PWD/.tools/temporal-schema"
STAMP="$BIN_DIR/.cluster-tools-server-$TEMPORAL_SERVER_VERSION-ui-$TEMPORAL_UI_SERVER_VERSION"
mkdir -p "$BIN_DIR"

if [ -f "$STAMP" ] && [ -x "$BIN_DIR/temporal-server" ] && [ -x "$BIN_DIR/temporal-sql-tool" ] && [ -x "$BIN_DIR/temporal-ui-server" ] && [ -d "$SCHEMA_DIR/postgresql" ]; then
  echo "$BIN_DIR"; exit 0
fi
command -v go >/dev/null || { echo "install-cluster-tools: Go is required (go install builds the server from source)" >&2; exit 1; }
echo "install-cluster-tools: $(go version); building Temporal server $TEMPORAL_SERVER_VERSION and UI server $TEMPORAL_UI_SERVER_VERSION" >&2

# A temp GOBIN so the binaries get their final names only when the build succeeded.
BUILD_BIN="$(mktemp -d)"
trap 'rm -rf "$BUILD_BIN"' EXIT
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="${GOFLAGS:--buildvcs=false}"

GOBIN="$BUILD_BIN" go install "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION"
install -m 0755 "$BUILD_BIN/server" "$BIN_DIR/temporal-server"
GOBIN="$BUILD_BIN" go install "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
install -m 0755 "$BUILD_BIN/sql" "$BIN_DIR/temporal-sql-tool"
GOBIN="$BUILD_BIN" go install "github.com/temporalio/ui-server/v2/cmd/server@$TEMPORAL_UI_SERVER_VERSION"
install -m 0755 "$BUILD_BIN/server" "$BIN_DIR/temporal-ui-server"

# The schema the server version expects ships in its module (read-only in the module cache).
MOD_DIR="$(go env GOMODCACHE)/go.temporal.io/server@$TEMPORAL_SERVER_VERSION"
rm -rf "$SCHEMA_DIR" && mkdir -p "$SCHEMA_DIR"
cp -r "$MOD_DIR/schema/postgresql" "$SCHEMA_DIR/postgresql" && chmod -R u+w "$SCHEMA_DIR"

rm -f "$BIN_DIR"/.cluster-tools-server-* && touch "$STAMP"
echo "$BIN_DIR"
