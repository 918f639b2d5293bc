#!/usr/bin/env bash
# BIRD 1.6 (Debian package `bird`) conflicts with bird2, so it is unpacked, not installed:
# `apt-get download bird` + `dpkg -x` into a private prefix. Prints the prefix on stdout;
# binaries are <prefix>/usr/sbin/{bird,bird6,birdc,birdc6}. Idempotent.
set -euo pipefail
prefix=${NETPERF_BIRD1_PREFIX:-/opt/net-perf/bird1}
if [[ ! -x $prefix/usr/sbin/bird ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download bird >/dev/null 2>&1 || { apt-get update -qq && apt-get download bird >/dev/null; })
  mkdir -p "$prefix"
  dpkg -x "$tmp"/bird_*.deb "$prefix"
fi
echo "$prefix"
