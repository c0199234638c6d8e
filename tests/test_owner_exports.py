"""The owner's CSV exports: a 0700 folder in this instance's data folder, not Gradio's machine-wide temp.

Real files: web/admin.write_export writes from a real SQLite database."""

from __future__ import annotations

import os
import stat
import time

from shared.schema import open_store_db
from shared.store import insert_review
from shared.reviews import Review
from web.admin import EXPORT_FOLDER_NAME, write_export


def _instance(root, name):
    data = root / name / "data"
    data.mkdir(parents=True)
    conn = open_store_db(data / "reviews.db")
    insert_review(conn, Review(f"{name}-person", 4, f"{name} comment"))
    conn.close()
    return data


def test_exports_go_to_the_data_folder_and_one_instance_never_removes_anothers(tmp_path, monkeypatch):
    gradio_temp = tmp_path / "gradio-temp"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(gradio_temp))  # shared by every instance on the machine
    # Another instance's export in Gradio's shared folder, older than the clean-up's age limit.
    other_gradio = gradio_temp / EXPORT_FOLDER_NAME / ("0" * 32)
    other_gradio.mkdir(parents=True)
    (other_gradio / "reviews-old.csv").write_text("someone else's")
    old = time.time() - 24 * 3600
    os.utime(other_gradio, (old, old))
    a, b = _instance(tmp_path, "a"), _instance(tmp_path, "b")
    b_export = write_export(b / "reviews.db")
    for _ in range(4):  # more than the clean-up keeps: a's own old exports go, b's stays
        a_export = write_export(a / "reviews.db")
    assert a_export.parent.parent == a / EXPORT_FOLDER_NAME
    assert stat.S_IMODE((a / EXPORT_FOLDER_NAME).stat().st_mode) == 0o700
    assert stat.S_IMODE(a_export.stat().st_mode) == 0o600
    assert "a comment" in a_export.read_text() and "b comment" not in a_export.read_text()
    assert b_export.exists() and (other_gradio / "reviews-old.csv").exists()
    assert not list(gradio_temp.rglob("*.csv"))[1:]  # nothing of ours was written there
