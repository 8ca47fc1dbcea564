#!/usr/bin/env python3
"""Short family names (3-4 letters) with one edit: a typo, or another family? Decided by numbers.

    python3 bench/matching/short_surnames.py            # prints the table for docs/matching.md
    python3 bench/matching/short_surnames.py --write    # also writes src/domain/identity/family_names_short.txt

Data (fetched from PyPI with pip): UK surname frequencies, the 500 most common surnames in
Great Britain with their share of the population (39.5 % of people), from Faker's en_GB person
provider (faker, MIT); and the US Census 1990 surname list (88,799 names, public domain, from the
`names` package 0.3.0, MIT) for the long tail.

For each UK surname S it measures u(S): the share of the population whose surname is one edit
from S (insertion, deletion, substitution, adjacent swap). u is what a lookup's one-edit key
meets by chance among children of the same given name and date of birth: the false matches a
typo rule can make. And for the typos of S (every one-edit string X), how many are real surnames
(in the dictionary) — those stay "similar" (possible) under the rule the code uses for given
names, the rest count as typos (can reach probable).
"""
import collections
import pathlib
import re
import statistics
import sys

from pypi_data import package_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "src/domain/identity/family_names_short.txt"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def one_edits(word):
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in LETTERS}
    out |= {a + c + b for a, b in splits for c in LETTERS}
    out.discard(word)
    return out


def main():
    faker = package_file("faker==40.63.0", "providers/person/en_GB/__init__.py")
    census = package_file("names==0.3.0", "dist.all.last")
    start = faker.index("last_names = OrderedDict(")
    uk = {re.sub('[^A-Z]', '', n.upper()): float(p) / 100 for n, p in re.findall(r'\("([^"]+)", ([0-9.]+)\)', faker[start:])}
    us = {line.split()[0]: float(line.split()[1]) / 100 for line in census.splitlines() if line.strip()}
    short_dictionary = {n for n in set(uk) | set(us) if 2 <= len(n) <= 4 and n.isalpha()}

    groups = collections.defaultdict(list)
    for name, share in uk.items():
        group = "3" if len(name) == 3 else "4" if len(name) == 4 else "5" if len(name) == 5 else "6+"
        edits = one_edits(name)
        u = sum(uk.get(x, 0) for x in edits)
        short_typos = [x for x in edits if len(x) <= 4]
        real = [x for x in short_typos if x in short_dictionary]
        groups[group].append((name, share, u, len(short_typos), len(real)))

    print("| family name length | names (UK top 500) | their share of people | u: share one edit away, mean | median | worst | short typos that are real surnames |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for group in ("3", "4", "5", "6+"):
        rows = groups[group]
        worst = max(rows, key=lambda r: r[2])
        typos = sum(r[3] for r in rows)
        real = sum(r[4] for r in rows)
        real_share = f"{100 * real / typos:.1f} % of {typos:,}" if typos else "—"
        print(
            f"| {group} | {len(rows)} | {100 * sum(r[1] for r in rows):.2f} % | {100 * statistics.mean(r[2] for r in rows):.3f} % "
            f"| {100 * statistics.median(r[2] for r in rows):.3f} % | {worst[0].title()} {100 * worst[2]:.2f} % | {real_share} |"
        )
    missing = [n for n in uk if n not in us]
    covered = 1 - sum(uk[n] for n in missing) / sum(uk.values())
    print(f"\nUS Census 1990 covers {100 * covered:.1f} % of people with a UK top-500 surname (missing: {', '.join(sorted(m.title() for m in missing))}).")
    print(f"Short-name dictionary: {len(short_dictionary):,} surnames of 2-4 letters.")
    if "--write" in sys.argv:
        header = [
            "# Family names of 2-4 letters, one a line: the UK's 500 most common surnames (Faker en_GB,",
            "# MIT) and the US Census 1990 surname list (public domain, via the `names` package 0.3.0,",
            "# MIT), written by bench/matching/short_surnames.py --write. Used only to tell a typo of a",
            "# short family name from another family one letter away (Hall/Hill): docs/matching.md.",
        ]
        OUT.write_text("\n".join(header + sorted(short_dictionary)) + "\n")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
