#!/usr/bin/env python3
"""Writes src/domain/identity/nicknames_imported.csv: short forms in US and other English usage,
taken from a public, licensed list and filtered so that no name in its own right is linked.

    python3 bench/matching/import_nicknames.py        # fetches both packages from PyPI with pip

Source: the `nicknames` package (PyPI 1.0.1, Carlton Northern and Nick Crews, Apache-2.0), its
names.csv of `name1,has_nickname,name2` rows. A form is imported only when it is not a name in
its own right, judged by three lists: our own common children's names (given_names.txt), the
names the source itself lists as full names, and the US Census 1990 first names (public domain,
via the `names` package, PyPI 0.3.0, MIT). So Carl (for Charles), Mark (for Marcus), Micah
(for Michael), Erin (for Aaron) stay separate names, as twins and siblings need; Cait, Jenn,
Zakk and Steffi are linked. Forms our own table already has are left to it, a form with more
than three full names is too ambiguous to store, and a "short form" longer than its full name
by more than one letter (Wilbur for Will) is not one.
"""
import collections
import csv
import io
import pathlib
import sys

from pypi_data import package_file

HERE = pathlib.Path(__file__).resolve().parents[2] / "src/domain/identity"
MAX_CANONICALS = 3


def own_names(path):
    return {l.strip().upper() for l in path.read_text().splitlines() if l.strip() and not l.startswith("#")}


def main():
    source = package_file("nicknames==1.0.1", "nicknames/names.csv")
    census = set()
    for part in ("dist.male.first", "dist.female.first"):
        census |= {line.split()[0] for line in package_file("names==0.3.0", part).splitlines() if line.strip()}

    rows = [r for r in csv.DictReader(io.StringIO(source)) if r["relationship"] == "has_nickname"]
    full_names = {r["name1"].upper() for r in rows}
    curated = set()
    for line in (HERE / "nicknames.csv").read_text().splitlines()[1:]:
        if line and not line.startswith("#") and "," in line and line != "canonical,variant":
            curated |= set(line.split(","))
    common = own_names(HERE / "given_names.txt")

    by_form = collections.defaultdict(list)
    for r in rows:
        by_form[r["name2"].upper()].append(r["name1"].upper())

    kept, left_out = [], collections.Counter()
    for form, names in sorted(by_form.items()):
        reason = (
            "a common children's name (given_names.txt)" if form in common
            else "already in our own table" if form in curated
            else "a full name in the source" if form in full_names
            else "a US Census 1990 first name" if form in census
            else "not letters only" if not form.isalpha()
            else f"more than {MAX_CANONICALS} full names" if len(names) > MAX_CANONICALS
            else None
        )
        if reason is None:
            names = [n for n in names if len(form) <= len(n) + 1]
            reason = None if names else "longer than its full name"
        if reason:
            left_out[reason] += 1
            continue
        kept += [(name, form) for name in names]

    header = [
        "# Short forms in US and other English usage, imported by bench/matching/import_nicknames.py;",
        "# do not edit by hand: edit nicknames.csv (our own table, which wins) or the script's rule.",
        "# Source: the `nicknames` package 1.0.1 (https://github.com/carltonnorthern/nicknames),",
        "# Copyright Carlton Northern and Nick Crews, Apache License 2.0; filtered with the US Census",
        "# 1990 first-name lists (public domain, from the `names` package 0.3.0, MIT).",
        "# Rule: a form is imported only when it is not a name in its own right (not in given_names.txt,",
        "# not a full name in the source, not a Census first name), not already in nicknames.csv, has",
        f"# at most {MAX_CANONICALS} full names and is at most one letter longer than each.",
        f"# {len(kept)} rows ({len({f for _, f in kept})} forms) kept; forms left out: "
        + "; ".join(f"{n} {why}" for why, n in left_out.most_common()) + ".",
        "canonical,variant",
    ]
    (HERE / "nicknames_imported.csv").write_text("\n".join(header + [f"{c},{v}" for c, v in kept]) + "\n")
    print(header[-2][2:])


if __name__ == "__main__":
    main()
