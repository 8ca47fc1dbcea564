#!/usr/bin/env bash
# Negative and property-based API testing with schemathesis (from PyPI) against the served
# /openapi.json: generated valid and invalid requests must never get a 5xx, every status answered
# must be documented for its operation, and every documented response must match its schema.
# Runs once per role with a real token.
#
#   bash tests/schemathesis/run.sh            # CI: bounded, about a minute
#   MAX_EXAMPLES=200 bash tests/schemathesis/run.sh   # a longer search
#
# schemathesis goes in a venv under $SCHEMATHESIS_VENV (default: ~/.cache/child-locator/schemathesis),
# created on first use; nothing is installed into the clone.
set -euo pipefail
cd "$(dirname "$0")/../.."
MAX_EXAMPLES=${MAX_EXAMPLES:-15}
ROLES=${ROLES:-"practitioner org-admin ig-officer operator"}
VENV=${SCHEMATHESIS_VENV:-$HOME/.cache/child-locator/schemathesis}
VERSION=4.32.5

if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version | grep -q "$VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$VERSION"
fi

# The binary the test suite built (CI has just run it): `cargo build --bin` alone would unify
# features without the dev-dependencies and rebuild half the dependency tree.
cargo test --no-run --quiet --locked
BIN=$(realpath "${CARGO_TARGET_DIR:-target}")/debug/locator
WORK=$(mktemp -d /tmp/locator-schemathesis.XXXXXX)
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
for var in $(env | grep -o '^LOCATOR_[A-Z_]*'); do unset "$var"; done
export LOCATOR_LOG=warn
"$BIN" org add --code E08000003 --name "Schema North" --kind local-authority \
  --duty-phone "01632 960001" --secure-email "north@example.org" > /dev/null
"$BIN" org add --code E06000010 --name "Schema South" --kind local-authority \
  --duty-phone "01632 960002" --secure-email "south@example.org" > /dev/null

LOCATOR_LOG=info LOCATOR_LOG_FORMAT=json LOCATOR_RATE_LIMITS=off LOCATOR_BIND=127.0.0.1:0 "$BIN" serve 2> serve.log &
SERVER=$!
for _ in $(seq 1 100); do grep -q 'child-locator listening' serve.log && break; sleep 0.1; done
ADDR=$(grep -o '"addr":"[^"]*"' serve.log | head -n1 | cut -d'"' -f4)
[ -n "$ADDR" ] || { cat serve.log; exit 1; }
BASE="http://$ADDR"

# Something to find: a holding at North, so lookups, matches and requests have real paths.
ADMIN=$("$BIN" user add --org E08000003 --name "Schema Admin" --role org-admin | tail -n1)
curl -sf -X PUT "$BASE/api/v1/holdings/SCHEMA-1" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"category": "child-in-need", "status": "open", "subject": {"given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2014-05-09"}}' > /dev/null

status=0
for role in $ROLES; do
  org=E06000010
  [ "$role" = operator ] && org=E08000003
  TOKEN=$("$BIN" user add --org "$org" --name "Schema $role" --role "$role" | tail -n1)
  echo "== schemathesis as $role ($MAX_EXAMPLES examples an operation)"
  # Revoking is fuzzed last: a generated user id can be the caller's own, and a revoked token
  # would turn every later operation into a 401.
  # One worker: with two threads, CPython 3.11's ast.parse (which hypothesis calls to describe
  # its filters) can raise "AST constructor recursion depth mismatch" and abort the run.
  for scope in "--exclude-path-regex /revoke$" "--include-path-regex /revoke$"; do
    # shellcheck disable=SC2086
    "$VENV/bin/schemathesis" run "$BASE/openapi.json" $scope \
      --header "Authorization: Bearer $TOKEN" \
      --checks not_a_server_error,response_schema_conformance,status_code_conformance \
      --max-examples "$MAX_EXAMPLES" --phases examples,coverage,fuzzing \
      --workers 1 --request-timeout 10 --suppress-health-check all \
      --seed 2026 --no-color > "$WORK/$role.log" 2>&1 || { cat "$WORK/$role.log"; status=1; }
    grep -E 'generated,|Authentication failed|warnings? in|passed in|failed in' "$WORK/$role.log" || true
  done
done
if grep -q '"level":"ERROR"' serve.log; then
  echo "the server logged errors:"; grep '"level":"ERROR"' serve.log | head -20; status=1
fi
exit $status
