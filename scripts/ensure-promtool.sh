#!/usr/bin/env bash
# promtool for the alert rules test (optional): on a Debian machine as root, installs Debian's
# `prometheus` package (it ships /usr/bin/promtool) when promtool is missing. The test
# (test/unit/alert-rules.test.ts) runs `promtool check rules` and `promtool test rules` on
# monitoring/prometheus/; no Prometheus server is started or enabled here.
#
# Prints one line on stdout when promtool is there:  PROMTOOL=/usr/bin/promtool
# Everything else goes to stderr. Idempotent, and it never fails: when promtool cannot be installed it
# prints a warning and exits 0, and the test then skips, naming the reason.
#
# Usage (as .ci/run does):  bash scripts/ensure-promtool.sh >/dev/null
set -uo pipefail

log() { echo "ensure-promtool: $*" >&2; }
warn() {
  log "WARNING: $* — the alert rules test is skipped"
  exit 0
}

find_promtool() { command -v promtool 2>/dev/null || { [ -x /usr/bin/promtool ] && echo /usr/bin/promtool; }; }

if [ -z "$(find_promtool)" ]; then
  [ "$(id -u)" = 0 ] || warn "promtool is missing and this is not root, cannot install it"
  [ -f /etc/debian_version ] || warn "promtool is missing and this is not a Debian machine"
  log "installing Debian's prometheus (for its promtool)"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || warn "apt-get update failed"
  # policy-rc.d 101: the package must not start a Prometheus server (it would take port 9090).
  policy=/usr/sbin/policy-rc.d
  created_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends prometheus >&2
  installed=$?
  [ -n "$created_policy" ] && rm -f "$policy"
  [ "$installed" = 0 ] || warn "apt-get install prometheus failed"
fi
PROMTOOL=$(find_promtool)
[ -n "$PROMTOOL" ] || warn "promtool is missing after the install"
"$PROMTOOL" --version >/dev/null 2>&1 || warn "$PROMTOOL does not run"
log "$("$PROMTOOL" --version 2>&1 | head -n 1) at $PROMTOOL"
echo "PROMTOOL=$PROMTOOL"
