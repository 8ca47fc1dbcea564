#!/usr/bin/env bash
# The whole test suite, as the README gives it: `cargo test` on both engines (PostgreSQL is found
# or started by tests/common, see `postgres_url`), then one closing line that also counts what
# could not run: libtest can only say ok or failed, so a suite that had to skip notes itself in
# target/test-skips.txt and is counted here as skipped, never as passed.
set -uo pipefail
cd "$(dirname "$0")/.."
SKIPS=target/test-skips.txt
mkdir -p target && rm -f "$SKIPS"
LOG=$(mktemp)
cargo test --locked "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
skipped=0
if [ -s "$SKIPS" ]; then
  skipped=$(sort -u "$SKIPS" | wc -l)
  printf '\nSKIPPED (did not run, so not counted as passed):\n'
  sort -u "$SKIPS" | sed 's/^/  /'
fi
awk -v skipped="$skipped" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\nsummary: %d passed, %d failed, %d skipped\n", p, f, skipped }' "$LOG"
rm -f "$LOG"
exit "$status"
