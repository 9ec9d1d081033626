#!/usr/bin/env bash
# The Debian packages the test suite needs, in one place: `.ci/run` and `npm test` both use it.
#   test/system-deps.sh            print the missing packages (nothing when all are there); exit 0
#   test/system-deps.sh --install  install the missing ones with apt-get (root on Debian)
# Tests start their own redis-server and nginx on free loopback ports, so nothing here
# starts a service.
set -euo pipefail

need=()
# Real redis-server topologies (standalone, TLS, Sentinel, Cluster), redis-cli for the harness.
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || need+=(redis-server)
# A throwaway CA and certificates for every TLS test.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# deploy/prometheus's rules are checked and unit-tested with promtool.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# The loadtest report test renders report.html in headless Chromium (playwright-core drives it).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The README quick-start test runs its curl commands as written.
command -v curl >/dev/null 2>&1 || need+=(curl)
# The fault harness (load-tests/faults): hosts as network namespaces (ip), faults as packet
# filters (iptables), latency held in an NFQUEUE by a stdlib-only python3 script where the
# kernel has no netem. It skips itself, saying why, where namespaces cannot be made.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The routing, import and lua-compat tests run a real nginx with its Lua module.
if command -v dpkg >/dev/null 2>&1; then
  for pkg in nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
else
  command -v nginx >/dev/null 2>&1 || need+=(nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache)
fi

if [ "${1:-}" != --install ]; then
  [ "${#need[@]}" -eq 0 ] || echo "${need[*]}"
  exit 0
fi
[ "${#need[@]}" -gt 0 ] || exit 0
echo "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# Keep apt from starting the packaged daemons: the tests run their own instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
