#!/usr/bin/env bash
# Short fuzz run of every target (default 20 s each), from the seed corpus in fuzz/seeds/.
# Usage: bash fuzz/run.sh [SECONDS]. Exits non-zero if any target crashes; crash inputs are
# kept in fuzz/artifacts/<target>/. Needs only the stable toolchain (RUSTC_BOOTSTRAP=1).
set -uo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${1:-20}"
TARGETS=(identifiers sync_rows token json_input)
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet || { echo "could not install cargo-fuzz" >&2; exit 1; }
fi

# No sanitizer: the crate has no unsafe code, and ASan roughly doubles the cold build.
# Keep fuzz builds (instrumented, so never shareable with the main build) apart from it.
target_args=()
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  target_args=(--target-dir "$CARGO_TARGET_DIR/fuzz")
fi

# A short smoke run builds unoptimised (about half the cold build time, and 15 s of fuzzing needs
# no speed); longer runs build optimised.
mode_args=()
if (( SECONDS_PER_TARGET <= 60 )); then
  mode_args=(--dev)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# cargo fuzz has no --locked: check that fuzz/Cargo.lock is up to date first.
if ! cargo metadata --locked --format-version 1 >/dev/null; then
  echo "fuzz/Cargo.lock is out of date: run cargo update -w in fuzz/ and commit it" >&2
  exit 1
fi

start=$(date +%s)
if ! cargo fuzz build -s none "${mode_args[@]}" "${target_args[@]}" >"$work/build.log" 2>&1; then
  tail -n 80 "$work/build.log"
  echo "fuzz build failed" >&2
  exit 1
fi
echo "fuzz build: $(( $(date +%s) - start )) s"

failed=0
summary=()
for t in "${TARGETS[@]}"; do
  corpus="$work/$t"
  mkdir -p "$corpus"
  cp seeds/"$t"/* "$corpus"/
  log="$work/$t.log"
  t0=$(date +%s)
  cargo fuzz run -s none "${mode_args[@]}" "${target_args[@]}" "$t" "$corpus" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+' || true)
  if [[ $rc -eq 0 ]]; then
    summary+=("$t: ok, ${runs:-?} runs, coverage ${cov:-?}, corpus $(ls "$corpus" | wc -l) inputs, $(( $(date +%s) - t0 )) s")
  else
    failed=1
    summary+=("$t: FAILED (exit $rc), see the log above and fuzz/artifacts/$t/")
    echo "== $t failed; the end of its log:"
    tail -n 60 "$log"
  fi
done

printf '%s\n' "${summary[@]}"
exit "$failed"
