"""Helpers shared by the incremental-backup tests (test_mirror, test_tree, test_incremental)."""

from shared.schema import COLUMNS
from tests.store_support import all_rows
from worker import shards
from worker import tree as tree_mod

COLS = ", ".join(COLUMNS)


def review_rows(path):
    """Every review of a database file, in id order."""
    return all_rows(path)


def shard_names(*ranges):
    """The CSV and the Parquet shard of each id range ("0000000001-0000000010", ...)."""
    return {f"csv/reviews-{r}.csv" for r in ranges} | {f"data/reviews-{r}.parquet" for r in ranges}


def use_small_shards(monkeypatch, *, rebase_min_rows: int) -> None:
    """Tiny shards (10 ids) and a low rebase threshold, so that a few dozen rows cross them."""
    monkeypatch.setattr(shards, "SHARD_ROWS", 10)
    monkeypatch.setattr(tree_mod, "REBASE_MIN_ROWS", rebase_min_rows)
