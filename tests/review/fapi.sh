#!/bin/sh
# review-fapi: runs tests/fapi_hostile_op.rs against the RELEASE build of prehod (the test harness
# starts whatever binary CARGO_BIN_EXE_prehod names; the test binary is run directly so that
# cargo does not set it back to the debug build). Each finding's test fails on the reviewed code;
# held_fapi2_against_a_hostile_provider passes.
set -eu
cd "$(dirname "$0")/../.."
cargo build --release --bin prehod
bin=$(cargo test --test fapi_hostile_op --no-run 2>&1 | sed -n 's/.*(\(target\/debug\/deps\/fapi_hostile_op-[0-9a-f]*\)).*/\1/p' | tail -1)
CARGO_BIN_EXE_prehod="$PWD/target/release/prehod" "$bin" --nocapture --test-threads=1 "$@"
