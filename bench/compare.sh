#!/usr/bin/env bash
# A/B: the same index served by two builds of `locator`, alternately, under the same load.
# The caseload is generated and imported once (by the first binary); every run starts from a copy
# of it (SQLite: the files; PostgreSQL, with ENGINE=postgres: a database made from the imported
# one as its template), so neither side inherits the other's audit trail. Machine speed drifts by the
# minute here: compare the two sides within one round, and run several rounds.
# Usage: [ENGINE=postgres] bench/compare.sh BIN_DIR_A BIN_DIR_B [N] [ROUNDS]
#   each BIN_DIR holds `locator`; build the other side in a worktree and copy it aside, e.g.
#   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && cargo build --release) &&
#   mkdir -p /tmp/a && cp /tmp/before/target/release/locator /tmp/a/
# A must be the older build: B may add migrations that A would refuse.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1"); B=$(realpath "$2"); N=${3:-1000000}; ROUNDS=${4:-2}
SECONDS_EACH=${SECONDS_EACH:-10}; RATE=${RATE:-500}; ENGINE=${ENGINE:-sqlite}
WORK=$(mktemp -d /tmp/locator-compare.XXXXXX)
PG=postgres://postgres@127.0.0.1:5432; INDEX_DB=compare_index_$$; RUN_DB=compare_run_$$
pg() { psql -q -h 127.0.0.1 -U postgres -d test -c "$1"; }
cleanup() {
  kill "${SERVER:-0}" 2>/dev/null || true
  rm -rf "$WORK"
  if [ "$ENGINE" = postgres ]; then pg "DROP DATABASE IF EXISTS $RUN_DB" && pg "DROP DATABASE IF EXISTS $INDEX_DB"; fi
}
trap cleanup EXIT
cargo build --release --quiet --example gen_caseload --example loadgen
EXAMPLES=${CARGO_TARGET_DIR:-target}/release/examples
export LOCATOR_KEY_FILE=$WORK/locator.key LOCATOR_AUDIT_KEY_FILE=$WORK/audit.key LOCATOR_LOG=warn
if [ "$ENGINE" = postgres ]; then
  pg "CREATE DATABASE $INDEX_DB"
  export LOCATOR_DATABASE_URL=$PG/$INDEX_DB
else
  export LOCATOR_DATABASE_URL=sqlite://$WORK/index.db
fi
"$EXAMPLES/gen_caseload" --holdings "$N" --orgs 4 --out "$WORK/data"
for o in 0 1 2 3; do
  "$A/locator" org add --code "BENCH$o" --name "Bench Council $o" --kind local-authority \
    --duty-phone "01632 960$((100 + o))" --secure-email "duty$o@bench.invalid" > /dev/null
  "$A/locator" import --org "BENCH$o" "$WORK/data/org$o.csv" | tail -1
done
TOKEN=$("$A/locator" user add --org BENCH0 --name "Bench Worker" --role practitioner | tail -n1)
# On PostgreSQL a node keeps the latest audit checkpoint it saw in a file beside the audit key,
# and refuses to start on a shorter trail (a rollback): each run starts from the index's own.
HIGH_WATER=$WORK/audit.key.checkpoint
if [ -f "$HIGH_WATER" ]; then cp "$HIGH_WATER" "$WORK/index.checkpoint"; fi
load() { "$EXAMPLES/loadgen" --url http://127.0.0.1:18182 --token "$TOKEN" --lookups "$WORK/data/lookups.ndjson" "$@"; }
for round in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    BIN=$([ "$side" = A ] && echo "$A" || echo "$B")
    if [ "$ENGINE" = postgres ]; then
      # A copy of the imported database (nothing is connected to it now), for this run alone.
      pg "DROP DATABASE IF EXISTS $RUN_DB" && pg "CREATE DATABASE $RUN_DB TEMPLATE $INDEX_DB"
      RUN_URL=$PG/$RUN_DB
      rm -f "$HIGH_WATER"
      if [ -f "$WORK/index.checkpoint" ]; then cp "$WORK/index.checkpoint" "$HIGH_WATER"; fi
    else
      # The closed index's files (a WAL not yet checkpointed included), copied for this run alone.
      rm -f "$WORK"/run*.db*
      for suffix in "" -wal; do
        if [ -f "$WORK/index.db$suffix" ]; then cp "$WORK/index.db$suffix" "$WORK/run.db$suffix"; fi
        if [ -f "$WORK/index-audit.db$suffix" ]; then cp "$WORK/index-audit.db$suffix" "$WORK/run-audit.db$suffix"; fi
      done
      RUN_URL=sqlite://$WORK/run.db
    fi
    LOCATOR_DATABASE_URL=$RUN_URL LOCATOR_RATE_LIMITS=off LOCATOR_BIND=127.0.0.1:18182 \
      "$BIN/locator" serve 2> "$WORK/serve-$side.log" &
    SERVER=$!
    for _ in $(seq 1 1500); do curl -sf http://127.0.0.1:18182/readyz > /dev/null && break; sleep 0.2; done
    echo "== round $round, $side ($BIN)"
    load --seconds "$SECONDS_EACH" --concurrency 16 | grep -v '^concurrency'
    load --seconds 5 --concurrency 1 | grep lookups
    load --seconds "$SECONDS_EACH" --rate "$RATE" | grep -v '^lookups sent'
    kill -TERM "$SERVER"; wait "$SERVER" || true
  done
done
