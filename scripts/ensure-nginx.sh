#!/usr/bin/env bash
# nginx for the Temporal TLS test (optional): on a Debian machine as root, installs Debian's `nginx`
# when it is missing. The test (test/integration/tls-temporal.test.ts) puts it in front of the
# Temporal dev server as a gRPC TLS proxy, because the dev server speaks no TLS of its own; it starts
# its own nginx with its own configuration, so no service is started or enabled here.
#
# Prints one line on stdout when nginx is there:  NGINX=/usr/sbin/nginx
# Everything else goes to stderr. Idempotent, and it never fails: when nginx cannot be installed it
# prints a warning and exits 0, and the test then skips, naming the reason.
#
# Usage (as .ci/run does):  bash scripts/ensure-nginx.sh >/dev/null
set -uo pipefail

log() { echo "ensure-nginx: $*" >&2; }
warn() {
  log "WARNING: $* — the Temporal TLS test is skipped"
  exit 0
}

find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }; }

source "$(dirname "$0")/apt-install.sh"
[ -n "$(find_nginx)" ] || apt_install nginx nginx
NGINX=$(find_nginx)
[ -n "$NGINX" ] || warn "nginx is missing after the install"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_v2_module' || warn "$NGINX has no HTTP/2 module (needed for gRPC)"
log "$("$NGINX" -v 2>&1) at $NGINX"
echo "NGINX=$NGINX"
