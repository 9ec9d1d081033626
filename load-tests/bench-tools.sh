#!/usr/bin/env bash
# Installs the comparison tools of bench:optimize and bench:images from Debian, the way
# .ci/run installs the test dependencies: only what is missing, without starting services.
set -euo pipefail
need=()
for pkg in libjpeg-turbo-progs jpegoptim webp libavif-bin pngquant optipng imagemagick libvips-tools butteraugli; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -eq 0 ]; then echo "bench-tools: all installed"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "bench-tools: missing ${need[*]}; as root: apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
echo "bench-tools: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
