"""Read a backup dataset as its readers do, in a fresh process, and print what they get as JSON.

    python tests/dataset_reader.py REPO REV [REV ...]

With HF_ENDPOINT/HF_TOKEN/HF_HOME set by the caller (both libraries read
them at import). For each revision: `datasets.load_dataset` (the card's
`configs:`), pandas over `hf://` (fsspec's HfFileSystem) for the Parquet
files and for the CSV, each as types plus rows. A separate process, because
huggingface_hub and datasets fix the endpoint when they are imported.
"""

import json
import sys


def _cell(value):
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, float) and value != value:  # NaN: pandas' missing value
        return None
    return value.item() if hasattr(value, "item") else value


def main() -> int:
    import datasets
    import pandas as pd
    from huggingface_hub import HfFileSystem

    repo, revisions = sys.argv[1], sys.argv[2:]
    datasets.disable_progress_bars()
    fs = HfFileSystem()
    out = {}
    for rev in revisions:
        ds = datasets.load_dataset(repo, split="train", revision=rev)
        parquet = fs.glob(f"datasets/{repo}@{rev}/data/*.parquet")
        frame = pd.read_parquet(f"hf://datasets/{repo}@{rev}/data/")
        # The CSV is in shards of ids (issue 14), like the Parquet files.
        csv = pd.concat([pd.read_csv(f"hf://{path}", dtype=str, keep_default_na=False)
                         for path in sorted(fs.glob(f"datasets/{repo}@{rev}/csv/*.csv"))], ignore_index=True)
        out[rev] = {
            "features": {name: str(feature.dtype) for name, feature in ds.features.items()},
            "datasets_rows": [[_cell(row[c]) for c in ds.column_names] for row in ds],
            "parquet_files": sorted(p.rsplit("/", 1)[1] for p in parquet),
            "pandas_dtypes": {c: str(t) for c, t in frame.dtypes.items()},
            "pandas_rows": [[_cell(v) if not pd.isna(v) else None for v in row] for row in
                            frame.astype(object).itertuples(index=False)],
            "csv_columns": list(csv.columns),
            "csv_rows": csv.values.tolist(),
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
