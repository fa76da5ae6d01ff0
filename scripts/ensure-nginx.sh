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

if [ -z "$(find_nginx)" ]; then
  [ "$(id -u)" = 0 ] || warn "nginx is missing and this is not root, cannot install it"
  [ -f /etc/debian_version ] || warn "nginx is missing and this is not a Debian machine"
  log "installing Debian's nginx"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || warn "apt-get update failed"
  # policy-rc.d 101: the package must not start (or fail to start) a system nginx on port 80.
  policy=/usr/sbin/policy-rc.d
  created_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends nginx >&2
  installed=$?
  [ -n "$created_policy" ] && rm -f "$policy"
  [ "$installed" = 0 ] || warn "apt-get install nginx failed"
fi
NGINX=$(find_nginx)
[ -n "$NGINX" ] || warn "nginx is missing after the install"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_v2_module' || warn "$NGINX has no HTTP/2 module (needed for gRPC)"
log "$("$NGINX" -v 2>&1) at $NGINX"
echo "NGINX=$NGINX"
