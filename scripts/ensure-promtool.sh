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

source "$(dirname "$0")/apt-install.sh"
[ -n "$(find_promtool)" ] || apt_install prometheus promtool
PROMTOOL=$(find_promtool)
[ -n "$PROMTOOL" ] || warn "promtool is missing after the install"
"$PROMTOOL" --version >/dev/null 2>&1 || warn "$PROMTOOL does not run"
log "$("$PROMTOOL" --version 2>&1 | head -n 1) at $PROMTOOL"
echo "PROMTOOL=$PROMTOOL"
