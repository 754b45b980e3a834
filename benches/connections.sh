#!/usr/bin/env bash
# 10 000 idle keep-alive TLS connections held against the real gateway: memory per connection,
# and whether it returns once they close (benches/connections.rs; figures in README.md).
# CONN_COUNT (default 10000); CONN_RELEASE=1 measures a release build (default: debug, the
# binary the tests use); CONN_HOLD_SECONDS keeps them a while longer before closing.
set -euo pipefail
cd "$(dirname "$0")/.."
# The client holds one descriptor per connection, the gateway two (client and upstream pool).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $(( ${CONN_COUNT:-10000} + 1000 )) ]; then
  echo "ulimit -n is $(ulimit -n): too few descriptors for ${CONN_COUNT:-10000} connections" >&2
  exit 1
fi
if [ "${CONN_RELEASE:-0}" = 1 ]; then
  cargo bench --bench connections
else
  cargo test --bench connections
fi
