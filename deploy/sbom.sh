#!/usr/bin/env bash
# The SBOM of the production build: CycloneDX 1.5 JSON of the `prehod` binary as the Dockerfile
# builds it (`--no-default-features`: no development code), every crate it links with its
# version, license, source and checksum, made by cargo-cyclonedx (pinned below; installed if
# missing, as a debug build: it runs for a second, and compiles in a fraction of the time).
# The Dockerfile's build stage runs it (the image carries the SBOM, and `docker build --target
# sbom` writes it out); CI runs it from tests/run.sh, so that it cannot rot.
# Usage: bash deploy/sbom.sh [OUT]      (default: target/sbom/prehod.cdx.json)
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.5.9
out=${1:-target/sbom/prehod.cdx.json}
fail() { echo "deploy/sbom.sh: $*" >&2; exit 1; }

# (`cargo cyclonedx --version` prints "cargo-cyclonedx-cyclonedx 0.5.9".)
if [[ "$(cargo cyclonedx --version 2>/dev/null)" != *" $version" ]]; then
  echo "deploy/sbom.sh: installing cargo-cyclonedx $version"
  cargo install --quiet --locked --debug cargo-cyclonedx --version "$version"
fi
# Reproducible: the time of the commit built, where the history is at hand.
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && git rev-parse --git-dir >/dev/null 2>&1; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
  export SOURCE_DATE_EPOCH
fi
# One SBOM for the binary (for the host's target, which is the image's), written beside
# Cargo.toml as prehod_bin.cdx.json, then moved.
cargo cyclonedx --quiet --manifest-path Cargo.toml --no-default-features --describe binaries \
  --format json --spec-version 1.5
mkdir -p "$(dirname "$out")"
mv prehod_bin.cdx.json "$out"

# What it must say: a CycloneDX document for the prehod application, with the gateway's crates
# and none of the development ones (grep, not jq or python: the build stage has neither).
has() { grep -Eq "\"name\": *\"$1\"" "$out"; }
grep -Eq '"bomFormat": *"CycloneDX"' "$out" || fail "$out is not a CycloneDX document"
for c in prehod prehod-gateway prehod-config prehod-identity pingora openssl; do
  has "$c" || fail "$out does not list $c"
done
for c in prehod-rekono-sim prehod-demo-portal prehod-devpki argon2 rcgen; do
  ! has "$c" || fail "$out lists $c, development code, which the production build must not have"
done
echo "deploy/sbom.sh: wrote $out ($(grep -Ec '"bom-ref"' "$out") components)"
