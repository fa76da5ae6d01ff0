#!/usr/bin/env bash
# Chromium for the real-browser test (test/e2e/web-ui.test.ts): on a Debian machine as root, installs
# Debian's `chromium` package when /usr/bin/chromium is missing (never a browser download of its own)
# and prints one line on stdout:
#
#   K2_CHROMIUM=/usr/bin/chromium                 the browser is there
#   K2_CHROMIUM_UNAVAILABLE=<reason>              it is not, and cannot be installed here
#
# Everything else goes to stderr. Idempotent and quick once installed. It never fails: the browser
# test runs this script itself and is skipped (saying why) only on the second line; any other outcome
# fails the test.
#
# Usage (as .ci/run does):  bash scripts/ensure-chromium.sh >/dev/null
set -uo pipefail

BROWSER=/usr/bin/chromium

log() { echo "ensure-chromium: $*" >&2; }
unavailable() {
  log "WARNING: $* — the real-browser test is skipped"
  echo "K2_CHROMIUM_UNAVAILABLE=$*"
  exit 0
}
works() { "$BROWSER" --headless --no-sandbox --version >/dev/null 2>&1; }

if [ -x "$BROWSER" ] && works; then
  echo "K2_CHROMIUM=$BROWSER"
  exit 0
fi

[ "$(id -u)" = 0 ] || unavailable "not root, cannot install Debian's chromium"
[ -f /etc/debian_version ] || unavailable "not a Debian machine"
command -v apt-get >/dev/null 2>&1 || unavailable "apt-get is missing"

log "installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
# Another apt run (e.g. scripts/ci-postgres.sh) may hold the lock for a while: wait for it.
apt_opts=(-o DPkg::Lock::Timeout=600)
if ! timeout 900 apt-get install -y -qq --no-install-recommends "${apt_opts[@]}" chromium fonts-dejavu-core >&2; then
  timeout 600 apt-get update -qq "${apt_opts[@]}" >&2 || unavailable "apt-get update failed"
  timeout 1200 apt-get install -y -qq --no-install-recommends "${apt_opts[@]}" chromium fonts-dejavu-core >&2 || unavailable "apt-get install chromium failed"
fi
[ -x "$BROWSER" ] || unavailable "$BROWSER is missing after the install"
works || unavailable "$BROWSER is installed but does not start"
log "$("$BROWSER" --headless --no-sandbox --version 2>/dev/null) ready at $BROWSER"
echo "K2_CHROMIUM=$BROWSER"
