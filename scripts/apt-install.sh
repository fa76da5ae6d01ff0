# Sourced by the scripts/ensure-*.sh of optional Debian tools: installs one Debian package as root,
# without letting it start (or fail to start) a system service. Needs `log` and `warn` defined by the
# caller (warn exits 0: the tool's test then skips, naming the reason).
#
#   apt_install <package> <what is missing>
apt_install() {
  local package=$1 missing=$2
  [ "$(id -u)" = 0 ] || warn "$missing is missing and this is not root, cannot install it"
  [ -f /etc/debian_version ] || warn "$missing is missing and this is not a Debian machine"
  log "installing Debian's $package"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || warn "apt-get update failed"
  # policy-rc.d 101: the package must not start a system service (nginx on port 80, Prometheus on 9090).
  local policy=/usr/sbin/policy-rc.d created_policy= installed
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$package" >&2
  installed=$?
  [ -n "$created_policy" ] && rm -f "$policy"
  [ "$installed" = 0 ] || warn "apt-get install $package failed"
}
