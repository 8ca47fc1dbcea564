#!/usr/bin/env bash
# The whole test suite, as the README gives it: `cargo test` runs the one suite binary
# (tests/suite) on both engines, with PostgreSQL found or started by tests/suite/common (see
# `postgres_server`), then one closing line. A test that could not run here (no PostgreSQL, no
# browser) is reported `ignored` by the harness and counted as skipped, never as passed; the
# reasons are listed from target/test-skips.txt. Under CI (`CI=true`) such a test fails instead.
set -uo pipefail
cd "$(dirname "$0")/.."
SKIPS=target/test-skips.txt
mkdir -p target && rm -f "$SKIPS"
LOG=$(mktemp)
cargo test --locked "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
if [ -s "$SKIPS" ]; then
  printf '\nSKIPPED (did not run, so not counted as passed), by reason:\n'
  cut -f1 "$SKIPS" | sort | uniq -c | sed 's/^ */  /'
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "\nsummary: %d passed, %d failed, %d skipped\n", p, f, s }' "$LOG"
rm -f "$LOG"
exit "$status"
