#!/usr/bin/env bash
# Installs the Debian packages the tests run for real and that are
# missing: postgresql, whose server binaries test/postgres starts (a
# throwaway cluster per test binary, run as the postgres user). Debian
# starts a cluster as a service on install; the tests run their own, so
# a policy-rc.d keeps that one from starting, unless the machine already
# has a policy of its own. Tests fail, never skip, when these are missing.
set -euo pipefail

missing=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
[ ${#missing[@]} = 0 ] && exit 0

echo "==> installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
