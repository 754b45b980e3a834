#!/usr/bin/env bash
# Instructions per request of the release gateway, counted by callgrind (repeatable on a
# noisy machine, unlike wall-clock figures): the public route, the authenticated route (a
# session from a real login through the simulator) and the certificate-only portal, each as
# the median of INSTR_BLOCKS (5) blocks of INSTR_REQUESTS (1000) requests on one keep-alive
# connection — and the floors they are measured against: the bare pingora proxy
# (benches/bare_pingora.rs) and nginx as the TLS reverse proxy (one process,
# `master_process off`, access log on; skipped with a line when nginx is missing).
# Profiles stay in target/callgrind/ for callgrind_annotate, the figures in
# target/callgrind/per-request.json.
# Then the cost of a new connection: INSTR_BLOCKS blocks of INSTR_NEW_CONNECTIONS (100)
# requests, each on a new TLS connection (full handshake, no resumption, Connection: close),
# for the public route, the certificate-only portal (client certificate), the bare proxy and
# nginx (with and without a client certificate), in target/callgrind/new-connection.json
# (INSTR_NEW_CONNECTIONS=0 leaves them out).
#
# --check (tests/run.sh, CI): no floors (bare pingora, nginx), no new connections (no budget),
# INSTR_REQUESTS defaults to 200, and the
# figures are held to benches/budget.toml by benches/budget.py (fails when a path is more than
# its tolerance over its budget). The spread of three runs on one tree: benches/README.md,
# "instructions per request".
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/peers.sh
peers_install valgrind nginx
check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  export INSTR_REQUESTS="${INSTR_REQUESTS:-200}"
  /usr/bin/python3 benches/budget.py --self-test
fi
rm -rf target/callgrind
if ((check)); then
  # The floors are left out (they have no budget).
  COMPARE_BARE=none INSTR_NGINX=none INSTR_NEW_CONNECTIONS=0 INSTR_DIR="$PWD/target/callgrind" \
    cargo bench --quiet --bench compare -- --instructions
else
  cargo build --quiet --release --example bare_pingora
  COMPARE_BARE="$PWD/target/release/examples/bare_pingora" INSTR_DIR="$PWD/target/callgrind" \
    cargo bench --quiet --bench compare -- --instructions
fi
if ((check)); then
  /usr/bin/python3 benches/budget.py target/callgrind/per-request.json
fi
