#!/bin/sh
# Reproduces the forward-auth review's findings against the RELEASE build of prehod, behind a
# real Debian nginx rendered from deploy/nginx/forward-auth.conf.template (tests/review_fwd.rs).
# Every test printed as FAILED is a finding reproduced; its panic message says what got through.
#   sh tests/review/fwd_repro.sh
set -eu
cd "$(dirname "$0")/../.."
cargo build --release --bin prehod
bin=$(cargo test --test review_fwd --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and "review_fwd" in m["executable"]: print(m["executable"])' | tail -1)
CARGO_BIN_EXE_prehod="$PWD/target/release/prehod" RUST_BACKTRACE=0 "$bin" --test-threads=2 || true
