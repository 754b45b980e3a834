#!/usr/bin/env bash
# Installs what building and testing prehod needs on a fresh Debian machine (run as root, or
# with sudo available). Safe to run again: it installs only what is missing.
#   cmake        pingora builds zlib-ng
#   pkg-config, libssl-dev   link the system OpenSSL (see .cargo/config.toml)
#   openssl      the command-line tool used by tests and docs
#   chromium, chromium-driver   the headless browser the end-to-end browser tests drive
#   redis-server the shared state the two-replica tests start (tests/fleet.rs)
set -euo pipefail

packages=(cmake pkg-config libssl-dev openssl chromium chromium-driver redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is needed (https://rustup.rs)" >&2; exit 1; }
