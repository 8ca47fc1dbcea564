#!/usr/bin/env python3
"""The peer on the own harness's realistic profile: Splink 4 (plaintext, DuckDB) on the same
holdings and the same query records as `match_quality --profile realistic --export DIR`.

    python3 bench/matching/splink_own.py DIR/own.csv [BUDGET ...]    (bench/matching/own.sh runs it)

Same model as bench/matching/splink_febrl.py (Jaro-Winkler levels on each name, Levenshtein on
the date, u by random sampling, m by EM). Blocking for prediction: same date of birth, same family
name and birth year, same given name and birth year, same given and family name (a family name
alone makes too many pairs at 1,000,000 holdings on 2 cores). Names are standardised first (accents
off, upper case, letters only), as any plaintext linkage would. Like the harness, the overall figures
weight each name-origin group by its share of children; the report gives Splink's best weighted
recall while its weighted false matches per 5,000 queries stay within each budget (the default
budgets plus any given, e.g. the product's own counts), with recall by group at that threshold,
and the twins whose co-twin scores at or above it.
"""
import re
import sys
import unicodedata

import pandas as pd
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink_model import comparisons

SHARES = {
    "English/Welsh": 0.74,
    "South Asian": 0.10,
    "East African": 0.02,
    "West African": 0.03,
    "Eastern European": 0.06,
    "Arabic": 0.015,
    "Chinese/East Asian": 0.015,
    "Irish": 0.02,
}


def clean(name):
    """The usual standardisation before a plaintext linker: accents off, upper case, letters only
    (the product normalises the same way, docs/matching.md §2)."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub("[^A-Z]", "", plain.upper())


def load(path):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in ("given_name", "family_name"):
        df[col] = df[col].map(clean)
    df["unique_id"] = [f"r{i}" for i in range(len(df))]
    left = df[df["copy"] == "org"].copy()
    right = df[df["copy"] != "org"].copy()
    for frame in (left, right):
        frame.replace({"": None}, inplace=True)
        frame["birth_year"] = frame["date_of_birth"].str[:4]
    return left, right


def predict(left, right):
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[
            block_on("date_of_birth"),
            block_on("family_name", "birth_year"),
            block_on("given_name", "birth_year"),
            block_on("given_name", "family_name"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    cols = ["unique_id", "given_name", "family_name", "date_of_birth", "birth_year"]
    linker = Linker([left[cols], right[cols]], settings, db_api=DuckDBAPI())
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=2026)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("family_name", "birth_year"))
    return linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()


def main():
    path = sys.argv[1]
    extra = [float(b) for b in sys.argv[2:]]
    budgets = sorted(set([0.0, 5.0, 10.0, 20.0, 50.0] + extra))
    left, right = load(path)
    pairs = predict(left, right)
    entity_l = dict(zip(left["unique_id"], left["entity"]))
    queries = right[right["copy"].str.startswith("dup-")]
    twins = right[right["copy"].str.startswith("twin-")]
    group_of = dict(zip(queries["unique_id"], queries["group"]))
    truth = dict(zip(queries["unique_id"], queries["entity"]))
    cotwin = dict(zip(twins["unique_id"], twins["cotwin"]))
    asked = queries["group"].value_counts().to_dict()
    weight = {g: SHARES[g] / sum(SHARES[x] for x in asked) / asked[g] for g in asked}

    rows = []
    for l, r, p in zip(pairs["unique_id_l"], pairs["unique_id_r"], pairs["match_probability"]):
        if l not in entity_l:
            l, r = r, l
        rows.append((p, r, entity_l.get(l)))
    rows.sort(key=lambda x: -x[0])

    # A falling threshold: weighted recall and weighted false matches per 5,000 as pairs come in.
    found, false_w, recall_w = set(), 0.0, 0.0
    best = {}
    for i, (p, r, entity) in enumerate(rows):
        if r in group_of:
            if entity == truth[r]:
                if r not in found:
                    found.add(r)
                    recall_w += weight[group_of[r]]
            else:
                false_w += 5000 * weight[group_of[r]]
        if i + 1 < len(rows) and rows[i + 1][0] == p:
            continue  # a threshold takes all pairs of equal probability or none
        for b in budgets:
            if false_w <= b + 1e-9:
                best[b] = (recall_w, p, set(found))
    print("\n| Splink 4, plaintext (names + date of birth) | weighted recall | threshold | "
          + " | ".join(SHARES) + " | twins: co-twin at or above |")
    print("| --- | ---: | ---: |" + " ---: |" * len(SHARES) + " ---: |")
    twin_scores = {}
    for p, r, entity in rows:
        if r in cotwin and entity == cotwin[r]:
            twin_scores[r] = max(twin_scores.get(r, 0), p)
    for b in budgets:
        if b not in best:
            print(f"| ≤ {b:g} false per 5,000 | — | — |" + " — |" * len(SHARES) + " — |")
            continue
        recall, threshold, got = best[b]
        by_group = []
        for g in SHARES:
            members = [u for u, gg in group_of.items() if gg == g]
            by_group.append(f"{100 * sum(u in got for u in members) / max(len(members), 1):.1f} %")
        confused = sum(1 for s in twin_scores.values() if s >= threshold)
        print(f"| ≤ {b:g} false per 5,000 | {100 * recall:.1f} % | {threshold:.4f} | " + " | ".join(by_group)
              + f" | {confused} of {len(twins)} |")


if __name__ == "__main__":
    main()
