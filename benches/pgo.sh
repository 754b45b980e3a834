#!/usr/bin/env bash
# Profile-guided optimisation (issue 20): the production binary (`--no-default-features --bin
# prehod`, as the Dockerfile builds it) and the bare pingora floor, each built twice — once
# instrumented, trained on the compare bench's own rows (public, authenticated, certificate-only,
# new connections, bare pingora), then again with the merged profile.
#
#   bash benches/pgo.sh                  # -> target/pgo/prehod, target/pgo/bare_pingora
#   PGO_SECONDS=8 bash benches/pgo.sh    # longer training (4 s per row by default)
#
# Then measure both against each other in one run, PGO on both sides so the floor stays fair:
#   CARGO_BIN_EXE_prehod=$PWD/target/pgo/prehod COMPARE_BARE=$PWD/target/pgo/bare_pingora \
#     bash benches/compare.sh
#
# Two ~9-minute release builds on the 2-core machine. The instrumented processes write their
# profiles only when they exit, so the training run stops them with SIGINT (pingora's quick
# shutdown; PREHOD_TEST_STOP=interrupt in crates/test-support/src/gateway.rs) instead of SIGKILL.
# Installs rustup's llvm-tools (llvm-profdata matching rustc's LLVM) and what compare.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

profdata="$(find "$(rustc --print sysroot)" -name llvm-profdata -type f 2>/dev/null | head -n1)"
if [ -z "$profdata" ]; then
  echo "pgo: installing rustup's llvm-tools"
  rustup component add llvm-tools >/dev/null
  profdata="$(find "$(rustc --print sysroot)" -name llvm-profdata -type f | head -n1)"
fi
[ -x "$profdata" ] || { echo "pgo: no llvm-profdata under $(rustc --print sysroot)" >&2; exit 1; }

source "$root/benches/peers.sh"
peers_install nginx wrk h2load
peers_raise_nofile

out="$root/target/pgo"
raw="$out/raw"
rm -rf "$raw" "$out/build-profiles"
mkdir -p "$raw"

build() { # build <target-dir> <rustflags>
  RUSTFLAGS="${RUSTFLAGS:-} $2" cargo build --quiet --release --locked --no-default-features \
    --bin prehod --example bare_pingora --target-dir "$1"
}

echo "pgo: instrumented build (target/pgo-generate)"
# Build scripts and proc macros are instrumented too and write their profiles as the build runs
# them: those go to build-profiles/ and stay out of the merge.
build "$root/target/pgo-generate" "-Cprofile-generate=$out/build-profiles"

echo "pgo: training on the compare bench's rows, ${PGO_SECONDS:-4} s each"
cargo bench --quiet --bench compare --no-run
bench="$(find target/release/deps -maxdepth 1 -name 'compare-*' -type f -executable -printf '%T@ %p\n' \
  | sort -rn | head -n1 | cut -d' ' -f2)"
[ -n "$bench" ] || { echo "pgo: the compare bench did not build" >&2; exit 1; }
PREHOD_TEST_STOP=interrupt \
  LLVM_PROFILE_FILE="$raw/train-%m.profraw" \
  CARGO_BIN_EXE_prehod="$root/target/pgo-generate/release/prehod" \
  COMPARE_BARE="$root/target/pgo-generate/release/examples/bare_pingora" \
  COMPARE_ONLY="${PGO_ROWS:-prehod|bare pingora}" \
  COMPARE_SECONDS="${PGO_SECONDS:-4}" COMPARE_ROUNDS=1 COMPARE_OUT="$out/training.md" \
  "$bench" --bench
n="$(find "$raw" -name 'train-*.profraw' | wc -l)"
[ "$n" -gt 0 ] || { echo "pgo: training wrote no profiles to $raw" >&2; exit 1; }
"$profdata" merge -o "$out/merged.profdata" "$raw"/train-*.profraw
echo "pgo: merged $n profiles into target/pgo/merged.profdata"

echo "pgo: optimised build (target/pgo-use)"
build "$root/target/pgo-use" "-Cprofile-use=$out/merged.profdata -Cllvm-args=-pgo-warn-missing-function=false"
cp "$root/target/pgo-use/release/prehod" "$out/prehod"
cp "$root/target/pgo-use/release/examples/bare_pingora" "$out/bare_pingora"
echo "pgo: target/pgo/prehod and target/pgo/bare_pingora"
