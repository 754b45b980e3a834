#!/usr/bin/env bash
# The fuzz targets, as CI runs them: installs cargo-fuzz if missing, builds every target
# (nightly, libFuzzer + AddressSanitizer), replays each target's regression inputs in
# fuzz/regressions/TARGET/ (inputs that once crashed, kept so they never do again), then fuzzes
# each target for FUZZ_SECONDS (default 5), starting from its regression inputs and the seeds
# in fuzz/seeds/TARGET/. Any crash fails the script; the crashing input is in
# fuzz/artifacts/TARGET/: fix the code, then move the input to fuzz/regressions/TARGET/.
#
# login_host builds the whole gateway crate (pingora included) under ASan: about 5 more
# minutes from cold. Time, measured on the project's 2-core machine (2026-12-01, a soak sharing the cores): from
# a cold fuzz/target (nothing built, rm -rf fuzz/target) 4 min 32 s in all, nearly all of it
# the build (a first build while another cargo build shared the cores took 7 min); 8 targets
# × 5 s plus the replays are about 1 min, which is also the time with a warm fuzz/target.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-5}"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi

echo "== cargo +nightly fuzz build"
cargo +nightly fuzz build
mkdir -p target

targets=$(cargo +nightly fuzz list)
for target in $targets; do
  regressions="regressions/$target"
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    echo "== $target: replaying $(ls "$regressions" | wc -l) regression inputs"
    cargo +nightly fuzz run "$target" "$regressions" -- -runs=0 >"target/$target.replay.log" 2>&1 ||
      { tail -60 "target/$target.replay.log"; echo "== $target: a regression input crashes"; exit 1; }
  fi
done

for target in $targets; do
  corpus="target/corpus/$target"
  mkdir -p "$corpus"
  dirs=("$corpus")
  for extra in "regressions/$target" "seeds/$target"; do
    [ -d "$extra" ] && dirs+=("$extra")
  done
  echo "== $target: fuzzing for ${seconds}s"
  # libFuzzer's output (its log and the dictionary it recommends) goes to a file; on a crash
  # its last lines are shown.
  cargo +nightly fuzz run "$target" "${dirs[@]}" -- -max_total_time="$seconds" >"target/$target.log" 2>&1 ||
    { tail -60 "target/$target.log"; echo "== $target: crash, input in fuzz/artifacts/$target/"; exit 1; }
  grep -E '^Done [0-9]+ runs' "target/$target.log" || true
done
echo "== fuzzing found no crash"
