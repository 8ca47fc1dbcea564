#!/usr/bin/env bash
# End-to-end benchmark: generate N synthetic holdings, import them (timed), serve with rate
# limits off, and drive /healthz, GET /api/v1/me (the yardstick: token check + point read), lookups,
# then mixed traffic (lookups, record requests, small
# syncs) from a separate process, then lookups from one client at a time, then lookups sent at a
# fixed rate (RATE a second, default 1000) whatever the answers do.
# Usage: bench/run.sh [N] [sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
ENGINE=${2:-sqlite}
ORGS=${ORGS:-4}
SECONDS_EACH=${SECONDS_EACH:-15}
CONCURRENCY=${CONCURRENCY:-32}
WORK=$(mktemp -d /tmp/locator-bench.XXXXXX)
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# BENCH_PROFILE=debug reuses the test build: CI's smoke run, which proves the harness works, not
# how fast anything is.
if [ "${BENCH_PROFILE:-release}" = debug ]; then
  cargo build --quiet --bin locator --example gen_caseload --example loadgen
  BIN=${CARGO_TARGET_DIR:-target}/debug
else
  cargo build --release --quiet --bin locator --example gen_caseload --example loadgen
  BIN=${CARGO_TARGET_DIR:-target}/release
fi
export LOCATOR_KEY_FILE=$WORK/locator.key LOCATOR_AUDIT_KEY_FILE=$WORK/audit.key LOCATOR_LOG=warn
if [ "$ENGINE" = postgres ]; then
  SCHEMA=bench_$$
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA"
  export LOCATOR_DATABASE_URL="postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D$SCHEMA"
else
  export LOCATOR_DATABASE_URL="sqlite://$WORK/bench.db"
fi

"$BIN/examples/gen_caseload" --holdings "$N" --orgs "$ORGS" --out "$WORK/data"
for o in $(seq 0 $((ORGS - 1))); do
  "$BIN/locator" org add --code "BENCH$o" --name "Bench Council $o" --kind local-authority \
    --duty-phone "01632 960$((100 + o))" --secure-email "duty$o@bench.invalid" > /dev/null
done
echo "== import ($N holdings, $ORGS organisations, $ENGINE)"
for o in $(seq 0 $((ORGS - 1))); do
  /usr/bin/time -f "org$o: %e s, max RSS %M KB" "$BIN/locator" import --org "BENCH$o" "$WORK/data/org$o.csv" | tail -1
done
echo "== re-import of org0 (unchanged)"
/usr/bin/time -f "org0 again: %e s, max RSS %M KB" "$BIN/locator" import --org BENCH0 "$WORK/data/org0.csv" | tail -1
TOKEN=$("$BIN/locator" user add --org BENCH0 --name "Bench Worker" --role practitioner | tail -n1)
# Mixed traffic: small syncs go to an organisation of their own, so the measured caseloads stay put.
"$BIN/locator" org add --code BENCHX --name "Bench Churn Council" --kind local-authority \
  --duty-phone "01632 960199" --secure-email "churn@bench.invalid" > /dev/null
ADMIN_TOKEN=$("$BIN/locator" user add --org BENCHX --name "Bench Admin" --role org-admin | tail -n1)
# The load generator is one address standing in for many clients: under an open-loop load it
# holds more connections than the per-client cap a real deployment wants, so the bench lifts it.
printf '[connections]\nmax_per_client = 100000\n' > "$WORK/bench.toml"
LOCATOR_RATE_LIMITS=off LOCATOR_BIND=127.0.0.1:18181 "$BIN/locator" --config "$WORK/bench.toml" serve 2> "$WORK/serve.log" &
SERVER=$!
# Ready once the lookup prefilter is loaded (seconds at a million holdings).
STARTED=$(date +%s%N)
for _ in $(seq 1 1500); do curl -sf http://127.0.0.1:18181/readyz > /dev/null && break; sleep 0.2; done
echo "== ready after $(( ($(date +%s%N) - STARTED) / 1000000 )) ms"
echo "== load"
"$BIN/examples/loadgen" --url http://127.0.0.1:18181 --token "$TOKEN" --lookups "$WORK/data/lookups.ndjson" \
  --seconds "$SECONDS_EACH" --concurrency "$CONCURRENCY" --admin-token "$ADMIN_TOKEN"
echo "== one client at a time (latency without queueing)"
"$BIN/examples/loadgen" --url http://127.0.0.1:18181 --token "$TOKEN" --lookups "$WORK/data/lookups.ndjson" \
  --seconds "$((SECONDS_EACH < 5 ? SECONDS_EACH : 5))" --concurrency 1 | grep -v healthz
RATE=${RATE:-1000}
echo "== lookups sent at $RATE/s (open loop: latency under a fixed load, queueing included)"
"$BIN/examples/loadgen" --url http://127.0.0.1:18181 --token "$TOKEN" --lookups "$WORK/data/lookups.ndjson" \
  --seconds "$SECONDS_EACH" --rate "$RATE"
kill -TERM "$SERVER"; wait "$SERVER" || true
if [ "$ENGINE" = postgres ]; then psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA $SCHEMA CASCADE"; fi
