#!/usr/bin/env bash
# The production build has no development code: `prehod` built without its default `dev`
# feature (as the Dockerfile and deploy/ build it) must offer no `dev`, `rekono-sim`, `pki` or
# `hash-password` command, and its binary must hold none of the Rekono simulator's routes, the
# demo portal's page or the dev PKI's names. The same markers are first looked for in the
# default (development) build, so that a marker that no longer exists there fails this check
# instead of passing it for ever.
#
# Debug builds of the same selection as the test run (`--workspace --bins --examples` resolves
# the dependencies' features as `cargo test --workspace` does), so that CI pays only for
# compiling the `prehod` package again without the feature: every library is the test run's.
# (A plain `--bin prehod` would resolve serde, hyper, … with other features and rebuild most of
# the tree.) The production binary built this way links a superset of what the Dockerfile's
# `--bin prehod` build links, so what it lacks, that one lacks too. Both builds share
# target/debug: the development binary is built last, so target/debug/prehod is the one the
# tests use.
# Run from tests/run.sh; alone: bash tests/production_build.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "tests/production_build.sh: $*" >&2; exit 1; }

# What only development code contains: the simulator's routes (crates/rekono-sim/src/server.rs),
# the demo portal's page, the dev PKI's CA name, and the three crates' own symbol names.
markers=(
  /factor/sms/verify
  /factor/otp/verify
  /factor/push/wait
  /dev/keys/rotate
  /dev/outbox
  "Request headers the portal received"
  "prehod dev intermediate CA"
  prehod_rekono_sim
  prehod_demo_portal
  prehod_devpki
)
dev_commands=(dev rekono-sim pki hash-password)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The executable cargo built, from its JSON messages (not the path target/debug/prehod, which
# both builds write).
build() {
  cargo build --quiet --locked --workspace --bins --examples "$@" --message-format=json \
    | python3 -c '
import json, sys
exe = [m["executable"] for m in map(json.loads, sys.stdin)
       if m.get("reason") == "compiler-artifact" and m.get("executable")
       and m["target"]["name"] == "prehod" and m["target"]["kind"] == ["bin"]]
print(exe[-1])'
}

# The commands `prehod --help` lists (the first word of each line under "Commands:").
commands() {
  "$1" --help | awk '/^Commands:/ {on=1; next} on && /^[^ ]/ {on=0} on && NF {print $1}'
}

echo "== production build: cargo build --no-default-features (prehod without the dev feature)"
cp "$(build --no-default-features)" "$work/prehod-production"
echo "== development build: cargo build (prehod with the dev feature)"
cp "$(build)" "$work/prehod-dev"

# The development build has every marker and command: the check below can fail.
for m in "${markers[@]}"; do
  grep -qF -- "$m" "$work/prehod-dev" || fail "the development build has no \"$m\" any more: update the markers"
done
dev_listed=$(commands "$work/prehod-dev")
for c in "${dev_commands[@]}"; do
  grep -qx -- "$c" <<<"$dev_listed" || fail "the development build's --help has no $c command any more: update this check"
done

problems=()
prod_listed=$(commands "$work/prehod-production")
for c in "${dev_commands[@]}"; do
  if grep -qx -- "$c" <<<"$prod_listed"; then
    problems+=("--help lists the development command $c")
  fi
done
for c in run check reload; do
  grep -qx -- "$c" <<<"$prod_listed" || problems+=("--help does not list $c")
done
for m in "${markers[@]}"; do
  if grep -qF -- "$m" "$work/prehod-production"; then
    problems+=("the binary contains \"$m\"")
  fi
done
# A development command is an unknown command there (clap's usage error, exit 2).
set +e
"$work/prehod-production" dev --config /dev/null >/dev/null 2>&1
status=$?
set -e
[ "$status" -eq 2 ] || problems+=("\`prehod dev\` exited $status, not 2 (unknown command)")

if ((${#problems[@]})); then
  printf 'tests/production_build.sh: the production build has development code:\n' >&2
  printf '  %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "== production build: no development command and none of ${#markers[@]} development markers"
