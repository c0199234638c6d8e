"""The dataset card (README.md) pushed with every backup.

Readers get `configs:` pointing at the typed Parquet shards (so the viewer,
`load_dataset` and pandas over hf:// see exact values), a schema, the
license, what personal data the files hold, and how to restore. The last
line is a machine-readable marker the worker reads to learn what the newest
backup holds without downloading the database.
"""

from __future__ import annotations

import json

from shared.db import Summary
from shared.reviews import RANGE_TEXT, RATINGS, WITHHELD_NAME_TEXT
from worker.parquet import DATA_DIR, SHARD_ROWS
from worker.privacy import BLANK
from worker.manifest import BackupManifest
from worker.tree import BASE_FILE, CSV_DIR, DELTA_FILE

DB_FILE = BASE_FILE
CARD_FILE = "README.md"

# The Hub's size_categories buckets.
_SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                 (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


def size_category(rows: int) -> str:
    for limit, name in _SIZE_BUCKETS:
        if rows < limit:
            return name
    return "1B<n<10B"


def _license_text(license_id: str) -> str:
    if license_id == "unknown":
        return ("No license is granted (`unknown`, the default): the reviews are the words of the people who "
                "wrote them, and this backup is the form owner's copy. Ask the owner before reusing them.")
    if license_id == "other":
        return "A license of the form owner's own (`other`): ask the owner for its terms."
    return f"`{license_id}`, chosen by the form's owner (`HF_DATASET_LICENSE`)."


def _privacy_text(*, private: bool, names: str) -> str:
    holds = ("The files hold, for every review: the **name** the person typed (optional free text; it may be a "
             "real name), their **comments** (free text, which may contain anything they chose to write, "
             "personal data included), the **rating** and the **time** it was submitted (UTC), and the owner's "
             "moderation (status, public reply). They hold no IP "
             "address, e-mail, account, cookie or device data.")
    if names == BLANK:
        state = ("**Names are withheld** (`HF_DATASET_PUBLISH_NAMES=false`): `name` is empty in every file of "
                 f"this dataset ({WITHHELD_NAME_TEXT}). A restore from this dataset brings "
                 "back every review, its rating, time and comments, but **not the names**: they exist only in the "
                 "form's own database.")
    elif private:
        state = ("This dataset is **private**: it is the form owner's backup and keeps the names. Before making it "
                 "public, set `HF_DATASET_PUBLISH_NAMES` (`false` blanks the names in every file).")
    else:
        state = ("This dataset is **public and includes names**: the owner chose so explicitly "
                 "(`HF_DATASET_PUBLISH_NAMES=true`).")
    return f"{holds}\n\n{state}"


def render_card(repo_id: str, info: BackupManifest, summary: Summary, *, license_id: str = "unknown",
                private: bool = True, names: str = "keep") -> str:
    meta = json.dumps(info.to_json() | {"revision": None}, sort_keys=True)
    average = f"{summary.average:.2f}" if summary.average is not None else "-"
    counts = " | ".join(str(n) for n in summary.counts)
    scale = " | ".join(str(r) for r in RATINGS)
    name_note = f" (withheld here: {WITHHELD_NAME_TEXT})" if names == BLANK else ""
    return f"""---
pretty_name: Feedback form reviews
license: {license_id}
size_categories:
- {size_category(info.rows)}
tags:
- feedback
- reviews
configs:
- config_name: default
  data_files:
  - split: train
    path: {DATA_DIR}/*.parquet
---
# Feedback form reviews

Written by the feedback app's backup worker. Each commit is one consistent backup: the database, the CSV
and the Parquet files of a commit all come from the same snapshot and hold the same rows.

- Backup time (UTC): {info.at}
- Reviews: {info.rows:,} (highest id {info.max_id}), average rating {average}
- Reviews per rating {scale}: {counts}

## Which file for what

| file | use it for |
|---|---|
| `{DATA_DIR}/reviews-*.parquet` | reading and analysis: `load_dataset`, pandas, polars, DuckDB, the dataset viewer. Typed, exact values. |
| `{CSV_DIR}/reviews-*.csv` | opening in a spreadsheet, one file per shard of ids as for Parquet. Text cells that begin with `=`, `+`, `-`, `@`, tab or carriage return carry a leading `'` so spreadsheets do not run them; NULL and `''` are both an empty cell. The guard exists **only** in the CSV. |
| `{DB_FILE}` + `{DELTA_FILE}` | restoring the form (SQLite). `{DB_FILE}` is a base checked with `PRAGMA integrity_check` (reviews up to id {info.base_max_id if info.base_max_id is not None else info.max_id}), `{DELTA_FILE}` the reviews since; `python -m worker restore` puts them together. The source of truth. |

## Schema

| column | Parquet type | null? | meaning |
|---|---|---|---|
| `id` | int64 | never | the review's number, in submission order |
| `created_at` | timestamp[ms, tz=UTC] | never from the form | when it was submitted, UTC, millisecond precision (text `YYYY-MM-DDTHH:MM:SS.sssZ` in the db and CSV) |
| `name` | string | yes | the name as typed, surrounding spaces removed{name_note}; `''` when none was given (the form never stores NULL; older or hand-edited databases may) |
| `rating` | int8 | never from the form | {RANGE_TEXT} |
| `comments` | string | yes | the comments exactly as typed; `''` when none |
| `status` | string | never | the owner's decision: `public` (on the form's page), `hidden` (taken down by the owner, kept) or `pending` (waiting for the owner's approval in pre-moderation mode) |
| `reply` | string | yes | the owner's public reply under the review, as written; NULL when none |
| `reply_at` | timestamp[ms, tz=UTC] | yes | when the reply was written; NULL when none |

A review the owner deleted is in no file of this commit (its id is missing); `{DB_FILE}` keeps only its
id and time (`tombstones`), so a restore or merge never brings it back, and the owner's actions
(`moderation_log`: what, when, which review; never a review's text).

Values are raw in the Parquet files and the db: NULL, the empty string `''` and the text `NULL` (or `NA`)
are three different values. The Parquet files are shards of {SHARD_ROWS:,} ids each
(`reviews-<first id>-<last id>.parquet`); a full shard never changes again.

```python
from datasets import load_dataset
reviews = load_dataset("{repo_id}", split="train")

import pandas as pd
frame = pd.read_parquet("hf://datasets/{repo_id}/{DATA_DIR}/")
```

## Personal data

{_privacy_text(private=private, names=names)}

## License

{_license_text(license_id)}

## Restore

On the form's machine, with `HF_DATASET_REPO={repo_id}` and `HF_TOKEN` set:

    python -m worker backups                             # every backup: revision, time, reviews; newest first
    python -m worker restore                             # the newest backup, into an empty data folder
    python -m worker restore --at 2026-11-20T10:00Z      # the newest backup at or before that time (UTC)
    python -m worker restore --revision <commit>         # a given backup
    python -m worker restore --force                     # replace a non-empty database (a copy is kept)

A fresh machine with an empty data folder restores the newest backup by itself at start.

<!-- feedback-backup {meta} -->
"""
