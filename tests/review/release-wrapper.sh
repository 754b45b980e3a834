#!/bin/sh
# PREHOD_TEST_WRAPPER for tests/revocation_attacks.rs: the harness appends the debug binary's path and
# the gateway's arguments; this runs the release build instead (same pid: exec).
# Usage: PREHOD_TEST_WRAPPER=$PWD/tests/review/release-wrapper.sh \
#        CARGO_TARGET_DIR=... cargo test --test revocation_attacks
shift
exec "${PREHOD_RELEASE_BIN:-${CARGO_TARGET_DIR:-target}/release/prehod}" "$@"
