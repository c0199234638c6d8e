"""The shard arithmetic (worker/shards.py): which ids a shard holds and what its files are called."""

from tests.backup_tree_support import use_small_shards
from worker import shards
from worker.shards import csv_name, parquet_name, shard_bounds, shard_index, shards_between


def test_shards_between():
    assert shards_between(0, 0) == []
    assert shards_between(0, 1, 10) == [0]
    assert shards_between(10, 11, 10) == [1]
    assert shards_between(9, 31, 10) == [0, 1, 2, 3]
    assert shards_between(5, 3, 10) == []


def test_bounds_and_names_agree_and_only_the_first_shard_is_open_below():
    assert [shard_index(i, 10) for i in (1, 10, 11, 20, 21)] == [0, 0, 1, 1, 2]
    assert shard_bounds(1, 10) == (11, 20)
    low, high = shard_bounds(0, 10)
    assert high == 10 and low < -(2 ** 62), "ids below 1 (a hand-edited file) still land in a shard"
    assert csv_name(1, 10) == "csv/reviews-0000000011-0000000020.csv"
    assert parquet_name(1, 10) == "data/reviews-0000000011-0000000020.parquet"
    assert csv_name(0) == f"csv/reviews-0000000001-{shards.SHARD_ROWS:010d}.csv"


def test_small_shards_are_patched_in_one_place(monkeypatch):
    use_small_shards(monkeypatch, rebase_min_rows=5)
    assert shards_between(0, 25) == [0, 1, 2]
    assert shard_bounds(2) == (21, 30)
    assert parquet_name(2) == "data/reviews-0000000021-0000000030.parquet"
    assert csv_name(2) == "csv/reviews-0000000021-0000000030.csv"
