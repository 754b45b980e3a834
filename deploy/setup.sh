#!/usr/bin/env bash
# Installs what building and testing prehod needs on a fresh Debian machine (run as root, or
# with sudo available). Safe to run again: it installs only what is missing.
#   cmake        pingora builds zlib-ng
#   pkg-config, libssl-dev   link the system OpenSSL (see .cargo/config.toml)
#   openssl      the command-line tool used by tests and docs
#   chromium, chromium-driver   the headless browser the end-to-end browser tests drive
#   nodejs, npm  install axe-core (tests/a11y), the accessibility check the browser tests run
#   redis-server the shared state the two-replica tests start (tests/fleet.rs)
#   redis-sentinel  the Sentinel the failover test starts three of (tests/failover.rs)
#   nginx        the front proxy of the forward-auth test (tests/forward_auth.rs)
set -euo pipefail

packages=(cmake pkg-config libssl-dev openssl chromium chromium-driver redis-server redis-sentinel nginx)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# node and npm by command, not by package: a machine may have them from elsewhere (NodeSource's
# nodejs bundles npm, and Debian's npm package would conflict with it).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is needed (https://rustup.rs)" >&2; exit 1; }
