#!/usr/bin/env bash
# The own harness's realistic profile, end to end, against Splink on the same records
# (#21 item 7; results in docs/matching.md, "The realistic profile").
#
#   bash bench/matching/own.sh [HOLDINGS] [QUERIES_PER_GROUP]      # default 1000000 2000
#
# 1. `match_quality --profile realistic` builds the population, indexes HOLDINGS children
#    (names and date of birth only), asks QUERIES_PER_GROUP lookups and signalling probes for
#    each name-origin group plus as many twins, and writes the same holdings and queries to
#    target/own/own.csv.
# 2. Splink 4 (bench/matching/splink_own.py) links the same files, read at the product's own
#    false-match counts. Its Python venv is bench/matching/febrl.sh's (target/febrl/venv).
# The report is target/own/report.md. About 15 minutes on 2 cores at 1,000,000 holdings.
set -euo pipefail
cd "$(dirname "$0")/../.."
HOLDINGS=${1:-1000000}
QUERIES=${2:-2000}
OUT=target/own
mkdir -p "$OUT"
VENV=target/febrl/venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet recordlinkage==0.16 splink==4.0.17
fi
cargo build --quiet --locked --release --example match_quality
./target/release/examples/match_quality --profile realistic --children "$HOLDINGS" --seed 2026 \
  --queries "$QUERIES" --export "$OUT" >"$OUT/product.md" 2>"$OUT/product.err"
# The product's own false matches per 5,000 (overall), as Splink's budgets.
BUDGETS=$(sed -n 's/^PRODUCT_FALSE_PER_5000 //p' "$OUT/product.err" | tr ' ' '\n' | cut -d= -f2)
# shellcheck disable=SC2086 # one budget a word
"$VENV/bin/python" bench/matching/splink_own.py "$OUT/own.csv" $BUDGETS >"$OUT/splink.md" 2>"$OUT/splink.err"
cat "$OUT/product.md" "$OUT/splink.md" >"$OUT/report.md"
cat "$OUT/report.md"
