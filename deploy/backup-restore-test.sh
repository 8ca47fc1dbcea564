#!/usr/bin/env bash
# Proves backup and restore on both engines: make data (organisations, users, a caseload, so the audit
# trail has entries), back up, destroy, restore, then `locator audit verify` and a holding still there.
# Usage: deploy/backup-restore-test.sh [sqlite|postgres ...]  (default: both). Needs a built `locator`
# (LOCATOR_BIN, default $CARGO_TARGET_DIR/debug/locator or target/debug/locator) and, for PostgreSQL, pg_dump/pg_restore and a server at
# LOCATOR_TEST_POSTGRES_URL's host (default postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${LOCATOR_BIN:-${CARGO_TARGET_DIR:-target}/debug/locator}
if [[ ! -x $BIN ]]; then
  cargo build --locked --bin locator
fi
BIN=$(realpath "$BIN")
ENGINES=("$@")
[[ ${#ENGINES[@]} -eq 0 ]] && ENGINES=(sqlite postgres)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# No inherited LOCATOR_* setting may change what this script tests.
while IFS= read -r name; do unset "$name"; done < <(env | sed -n 's/^\(LOCATOR_[A-Z_]*\)=.*/\1/p')
export LOCATOR_LOG=warn PGOPTIONS="-c client_min_messages=warning"

step() { printf '  - %s\n' "$*"; }
fail() { printf 'FAILED (%s): %s\n' "$ENGINE" "$*" >&2; exit 1; }
locator() { "$BIN" "$@"; }

make_data() {
  locator org add --code E08000003 --name "Manchester (backup test)" --kind local-authority \
    --duty-phone "0161 234 5001" --secure-email mash@manchester.example >/dev/null
  locator org add --code E08000009 --name "Trafford (backup test)" --kind local-authority \
    --duty-phone "0161 912 5125" --secure-email mash@trafford.example >/dev/null
  locator user add --org E08000003 --name "Pat Duty" --role practitioner >/dev/null
  locator user add --org E08000009 --name "Sam Admin" --role org-admin >/dev/null
  # Clearly fake people; the NHS numbers pass the Modulus 11 check.
  cat >"$WORK/caseload.csv" <<'CSV'
local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode
R-1,child-in-need,open,9074833780,,Amy,Okafor,2015-06-01,M1 1AE
R-2,early-help,open,,,Ben,Kowalski,2019-11-23,M2 3BB
R-3,looked-after,open,8762328603,,Cara,Singh-Patel,2012-01-30,
CSV
  locator import --org E08000003 "$WORK/caseload.csv" >"$WORK/import.txt"
  grep -q "3 added" "$WORK/import.txt" || fail "import did not add 3 holdings: $(cat "$WORK/import.txt")"
}

check_restored() {
  local out
  out=$(locator audit verify) || fail "audit verify after restore: $out"
  [[ $out == *"signatures valid"* ]] || fail "audit verify did not check signatures: $out"
  step "audit verify: $out"
  locator org list | grep -q E08000009 || fail "organisation missing after restore"
  # The same caseload again, as a dry run: every holding is found unchanged, which needs the rows,
  # their pseudonyms and the index key to agree.
  out=$(locator import --dry-run --org E08000003 "$WORK/caseload.csv")
  [[ $out == *"3 unchanged"* ]] || fail "holdings missing after restore: $out"
  step "holdings present: $out"
}

sqlite_round_trip() {
  local dir=$WORK/sqlite
  mkdir -p "$dir/keys" "$dir/backups"
  export LOCATOR_DATABASE_URL="sqlite://$dir/locator.db"
  export LOCATOR_KEY_FILE="$dir/keys/locator.key" LOCATOR_AUDIT_KEY_FILE="$dir/keys/locator-audit.key"
  make_data
  locator backup "$dir/backups/locator.db" >"$WORK/backup.txt"
  step "$(cat "$WORK/backup.txt")"
  [[ $(stat -c %a "$dir/backups/locator.db") == 600 ]] || fail "backup file is not mode 0600"
  # Destroy: the database, its audit trail's file and their WALs are gone.
  rm -f "$dir"/locator.db "$dir"/locator.db-wal "$dir"/locator.db-shm "$dir"/locator-audit.db*
  step "destroyed $dir/locator.db and $dir/locator-audit.db"
  # Restore (service stopped): copy the backup into place.
  install -m 0600 "$dir/backups/locator.db" "$dir/locator.db"
  step "restored from the backup"
  check_restored
}

postgres_round_trip() {
  local base=${LOCATOR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
  local server=${base%/*} db="locator_backup_test_$$"
  local dir=$WORK/postgres
  mkdir -p "$dir/keys"
  psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  export LOCATOR_DATABASE_URL="$server/$db"
  export LOCATOR_KEY_FILE="$dir/keys/locator.key" LOCATOR_AUDIT_KEY_FILE="$dir/keys/locator-audit.key"
  make_data
  # The documented backup: a custom-format dump (compressed, restorable table by table).
  pg_dump --format=custom --no-owner --file="$dir/locator.dump" "$LOCATOR_DATABASE_URL"
  step "pg_dump wrote $(stat -c %s "$dir/locator.dump") bytes"
  psql -q "$server/postgres" -c "DROP DATABASE $db" >/dev/null
  step "dropped database $db"
  psql -q "$server/postgres" -c "CREATE DATABASE $db" >/dev/null
  pg_restore --no-owner --exit-on-error --dbname="$LOCATOR_DATABASE_URL" "$dir/locator.dump"
  step "pg_restore into a new, empty $db"
  check_restored
  psql -q "$server/postgres" -c "DROP DATABASE $db" >/dev/null
}

for ENGINE in "${ENGINES[@]}"; do
  start=$(date +%s)
  echo "backup and restore on $ENGINE"
  case $ENGINE in
    sqlite) sqlite_round_trip ;;
    postgres) postgres_round_trip ;;
    *) fail "unknown engine (sqlite or postgres)" ;;
  esac
  echo "  ok ($(($(date +%s) - start))s)"
done
