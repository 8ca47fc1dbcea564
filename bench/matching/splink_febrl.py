#!/usr/bin/env python3
"""The peer to beat: a plaintext probabilistic linker (Splink 4, DuckDB) on the same converted
FEBRL files and the same distractors as examples/febrl_quality.rs, names and date of birth only.

    python3 bench/matching/splink_febrl.py FILE...     (bench/matching/febrl.sh runs it)

For each file, the originals plus the distractors (other children; the same records
febrl_quality indexes) are linked to the corrupted copies. Splink's model: Jaro-Winkler levels on each name, exact / one
edit / year-only levels on the date, u from random sampling, m by EM over two blocking rules.
Blocking for prediction: same date of birth, or same family name, or same given name and birth
year. The report gives Splink's best recall while its false matches per 5,000 copies stay within
budgets of 0, 5, 10, 20 and 50: compare each with the product's row at the same false count.
"""
import sys

import pandas as pd
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink_model import comparisons


def load(path):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df["unique_id"] = [f"r{i}" for i in range(len(df))]
    left = df[df["copy"].isin(["org", "distractor"])].copy()
    copies = df[~df["copy"].isin(["org", "distractor"])].copy()
    for frame in (left, copies):
        frame.replace({"": None}, inplace=True)
        frame["birth_year"] = frame["date_of_birth"].str[:4]
    return left, copies


def run(path, seed):
    left, copies = load(path)
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[
            block_on("date_of_birth"),
            block_on("family_name"),
            block_on("given_name", "birth_year"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker([left, copies], settings, db_api=DuckDBAPI())
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("family_name"))
    pairs = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    entity_l = dict(zip(left["unique_id"], left["entity"]))
    entity_r = dict(zip(copies["unique_id"], copies["entity"]))
    # Orient every pair as (index record, copy): Splink may put either input on either side.
    rows = []
    for l, r, p in zip(pairs["unique_id_l"], pairs["unique_id_r"], pairs["match_probability"]):
        if l in entity_r and r in entity_l:
            l, r = r, l
        rows.append((r, entity_l.get(l), p))
    return copies, entity_r, rows


def recall_at_budgets(copies, entity_r, rows, budgets):
    """Splink's best recall while its false matches per 5,000 copies stay within each budget:
    walk the candidate pairs from the most probable down, as a threshold falling."""
    per_5000 = 5000 / len(copies)
    found, false, best = set(), 0, {}
    for copy, entity, p in sorted(rows, key=lambda r: -r[2]):
        if entity == entity_r[copy]:
            found.add(copy)
        else:
            false += 1
        for budget in budgets:
            if false * per_5000 <= budget:
                best[budget] = (len(found) / len(copies), p)
    return best


BUDGETS = (0, 5, 10, 20, 50)


def main():
    print("\n| data set (Splink 4, plaintext, names + date of birth) | " + " | ".join(f"recall at ≤ {b} false per 5,000" for b in BUDGETS) + " |")
    print("| --- |" + " ---: |" * len(BUDGETS))
    for path in sys.argv[1:]:
        copies, entity_r, rows = run(path, 2026)
        name = path.rsplit("/", 1)[-1].removesuffix(".csv")
        best = recall_at_budgets(copies, entity_r, rows, BUDGETS)
        cells = [f"{100 * best[b][0]:.1f} % (p ≥ {best[b][1]:.3f})" if b in best else "—" for b in BUDGETS]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
