#!/usr/bin/env python3
"""UK surname frequencies for the own harness's realistic profile (examples/match_quality/realistic.rs).

    python3 bench/matching/uk_surnames.py      # writes examples/match_quality/uk_surnames.csv

Source: the 500 most common surnames in Great Britain with their share of the population (39.5 %
of people in all), from Faker's en_GB person provider (the `faker` package 40.63.0 on PyPI, MIT
licence), the same table bench/matching/short_surnames.py reads. Fetched with pip, not installed.
"""
import pathlib
import re

from pypi_data import package_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "examples/match_quality/uk_surnames.csv"


def main():
    faker = package_file("faker==40.63.0", "providers/person/en_GB/__init__.py")
    start = faker.index("last_names = OrderedDict(")
    rows = re.findall(r'\("([^"]+)", ([0-9.]+)\)', faker[start:])
    rows.sort(key=lambda r: (-float(r[1]), r[0]))
    header = [
        "# The 500 most common surnames in Great Britain and their share of people in per cent (39.5 % in all),",
        "# from Faker's en_GB person provider (faker 40.63.0 on PyPI, MIT licence). Written by",
        "# bench/matching/uk_surnames.py; read by examples/match_quality/realistic.rs.",
        "surname,percent",
    ]
    OUT.write_text("\n".join(header + [f"{n},{p}" for n, p in rows]) + "\n")
    print(f"wrote {OUT} ({len(rows)} surnames, {sum(float(p) for _, p in rows):.2f} % of people)")


if __name__ == "__main__":
    main()
