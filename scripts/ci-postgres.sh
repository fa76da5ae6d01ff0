#!/usr/bin/env bash
# PostgreSQL for the test suite (optional): on a Debian machine as root, installs Debian's
# `postgresql` when it is missing, starts a cluster (pg_ctlcluster; no systemd), makes sure the
# role and database `k2test` exist, and prints one line on stdout:
#
#   K2_TEST_PG_URL=postgres://k2test:k2test@127.0.0.1:<port>/k2test
#
# Everything else goes to stderr. Idempotent: a second run finds the package, the running cluster,
# the role and the database in place and prints the same line. It never fails: when PostgreSQL
# cannot be installed or started it prints a warning, prints no URL and exits 0, and the database
# tests then run on SQLite only (test/helpers/databases.ts).
#
# Usage (as .ci/run does):  url=$(bash scripts/ci-postgres.sh | sed -n 's/^K2_TEST_PG_URL=//p')
set -uo pipefail

ROLE=k2test
DB=k2test
PASSWORD=k2test

log() { echo "ci-postgres: $*" >&2; }
warn() {
  log "WARNING: $* — the database tests run on SQLite only"
  exit 0
}

# Already given (e.g. a developer's own server): keep it.
if [ -n "${K2_TEST_PG_URL:-}" ]; then
  log "K2_TEST_PG_URL is already set; leaving it as it is"
  echo "K2_TEST_PG_URL=${K2_TEST_PG_URL}"
  exit 0
fi

[ "$(id -u)" = 0 ] || warn "not root, cannot install or start PostgreSQL"
[ -f /etc/debian_version ] || warn "not a Debian machine"

# --- install ----------------------------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null)" ]; then
  log "installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq >&2 || warn "apt-get update failed"
  timeout 900 apt-get install -y -qq --no-install-recommends postgresql >&2 || warn "apt-get install postgresql failed"
fi
command -v pg_ctlcluster >/dev/null 2>&1 || warn "pg_ctlcluster is missing after the install"
VERSION=$(ls /usr/lib/postgresql/ 2>/dev/null | sort -n | tail -1)
[ -n "$VERSION" ] && [ -x "/usr/lib/postgresql/$VERSION/bin/postgres" ] || warn "no PostgreSQL server binaries under /usr/lib/postgresql"

# --- cluster ----------------------------------------------------------------------------------
CLUSTER=main
if ! pg_lsclusters -h 2>/dev/null | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
  log "creating cluster $VERSION/$CLUSTER"
  pg_createcluster "$VERSION" "$CLUSTER" >&2 || warn "pg_createcluster $VERSION $CLUSTER failed"
fi
status=$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c { print $4 }')
if [ "$status" != "online" ]; then
  log "starting cluster $VERSION/$CLUSTER"
  pg_ctlcluster "$VERSION" "$CLUSTER" start >&2 || {
    tail -n 20 "/var/log/postgresql/postgresql-$VERSION-$CLUSTER.log" >&2 2>/dev/null
    warn "pg_ctlcluster $VERSION $CLUSTER start failed"
  }
fi
PORT=$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c { print $3 }')
[ -n "$PORT" ] || warn "cannot tell the port of cluster $VERSION/$CLUSTER"

# --- role and database ------------------------------------------------------------------------
as_postgres() { runuser -u postgres -- "$@"; }
psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@"; }

ready=
for _ in $(seq 1 30); do
  if as_postgres pg_isready -q -p "$PORT" 2>/dev/null; then ready=1; break; fi
  sleep 1
done
[ -n "$ready" ] || warn "the server on port $PORT does not accept connections"

psql_admin >&2 <<SQL || warn "could not create the role $ROLE"
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
SQL
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  as_postgres createdb -p "$PORT" -O "$ROLE" "$DB" >&2 || warn "could not create the database $DB"
fi

URL="postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
# The same way the tests will connect: TCP with the password (pg_hba: scram-sha-256 on 127.0.0.1).
PGPASSWORD=$PASSWORD psql -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DB" -tAc 'SELECT 1' >/dev/null 2>&1 ||
  warn "cannot connect as $ROLE over TCP on 127.0.0.1:$PORT"
log "PostgreSQL $VERSION ready on 127.0.0.1:$PORT (role and database $DB)"
echo "K2_TEST_PG_URL=$URL"
