#!/usr/bin/env bash
# prehod against real peers in one run (benches/compare.rs): nginx static upstream, nginx TLS
# reverse proxy, a bare pingora proxy, prehod public / authenticated (a real login through the
# simulator) / certificate-only, nginx with `auth_request` to prehod's forward-auth endpoint
# (deploy/nginx/forward-auth.conf.template, authenticated), new connection per request with and
# without a client certificate, HTTP/2. Prints one table (medians of interleaved rounds).
#
#   bash benches/compare.sh            # release build, 3 rounds of 10 s per target
#   bash benches/compare.sh --smoke    # debug build, 1 s per target, every response checked
#
#   COMPARE_ONLY=auth_request bash benches/compare.sh --smoke   # one row only
#
# Env: COMPARE_SECONDS, COMPARE_ROUNDS, COMPARE_CONNECTIONS, COMPARE_THREADS, COMPARE_OUT,
# COMPARE_ONLY (only the rows whose name holds it or one of its |-separated parts; no paced runs
# unless COMPARE_PACED=1), COMPARE_H2_STREAMS (h2load -m, 10).
#
#   COMPARE_ONLY=HTTP/2 bash benches/compare.sh   # the HTTP/2 rows (nginx, prehod) and their peak RSS
# Installs Debian nginx, wrk and nghttp2-client (h2load) when missing; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# benches/peers.sh: Debian packages when missing, /usr/sbin on PATH, the open-files limit raised.
source benches/peers.sh
peers_install nginx wrk h2load
peers_raise_nofile

if [ "${1:-}" = "--smoke" ]; then
  cargo build --quiet --example bare_pingora
  COMPARE_BARE="$PWD/target/debug/examples/bare_pingora" cargo test --quiet --bench compare -- --smoke
else
  cargo build --quiet --release --example bare_pingora
  COMPARE_BARE="$PWD/target/release/examples/bare_pingora" cargo bench --quiet --bench compare
fi
