"""The one Splink model both peer runs use (splink_febrl.py, splink_own.py): names and date of
birth compared as the product compares them, so the two reports measure the same fields."""
import splink.comparison_library as cl


def comparisons():
    """Given and family name by Jaro-Winkler at 0.92 and 0.8; the date by edit distance 1 and 2."""
    return [
        cl.JaroWinklerAtThresholds("given_name", [0.92, 0.8]),
        cl.JaroWinklerAtThresholds("family_name", [0.92, 0.8]),
        cl.LevenshteinAtThresholds("date_of_birth", [1, 2]),
    ]
