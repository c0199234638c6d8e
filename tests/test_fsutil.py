"""shared/fsutil.atomic_write on real files: the target is the old content or the new one, never
half, no temporary file is left, and the mode holds from the first byte whatever the umask."""

import os
import stat

import pytest

from shared.fsutil import atomic_write, write_text_atomic


def mode_of(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_target_gets_the_content_and_no_temp_is_left(tmp_path):
    target = tmp_path / "out.txt"
    seen = []

    def write(tmp):
        seen.append((tmp.parent, tmp.exists(), target.exists()))
        tmp.write_text("new", encoding="utf-8")
        return 42

    assert atomic_write(target, write) == 42
    assert seen == [(tmp_path, True, False)], "an empty temp file next to the target, the target not yet there"
    assert target.read_text(encoding="utf-8") == "new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_writer_that_raises_leaves_the_old_target_and_no_temp(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old", encoding="utf-8")

    def half_then_fail(tmp):
        tmp.write_text("half of the ne", encoding="utf-8")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, half_then_fail, mode=0o600)
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["state.json"]

    def stopped(tmp):
        raise KeyboardInterrupt  # not only errors: a stop midway too

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "new.txt", stopped)
    assert os.listdir(tmp_path) == ["state.json"]


def test_the_mode_holds_from_the_first_byte_whatever_the_umask(tmp_path, loose_umask):
    target = tmp_path / "reviews.csv"
    during = []

    def write(tmp):
        during.append(mode_of(tmp))
        tmp.write_text("id,name\n1,Ada\n", encoding="utf-8")

    atomic_write(target, write, mode=0o600)
    assert during == [0o600] and mode_of(target) == 0o600
    atomic_write(target, write, mode=0o640)  # wider: only once the content is complete
    assert during[-1] == 0o600 and mode_of(target) == 0o640
    write_text_atomic(tmp_path / "plain.txt", "x")
    assert mode_of(tmp_path / "plain.txt") == 0o644, "no mode: the umask's default, as open() gives"


def test_a_writer_that_replaces_the_temp_file_still_gets_the_mode(tmp_path, loose_umask):
    # SQLite's backup API and VACUUM INTO make their own file where the temp file was.
    def replace(tmp):
        tmp.unlink()
        tmp.write_bytes(b"db")

    atomic_write(tmp_path / "reviews.db", replace, mode=0o600)
    assert mode_of(tmp_path / "reviews.db") == 0o600 and (tmp_path / "reviews.db").read_bytes() == b"db"


def test_a_temp_left_by_a_crash_is_overwritten_and_the_suffix_is_the_callers(tmp_path):
    target = tmp_path / "reviews-delta.db"
    (tmp_path / "reviews-delta.db.partial").write_bytes(b"torn")
    atomic_write(target, lambda tmp: tmp.write_bytes(b"whole"), suffix=".partial")
    assert target.read_bytes() == b"whole" and os.listdir(tmp_path) == ["reviews-delta.db"]
    write_text_atomic(target, "again")
    assert target.read_text(encoding="utf-8") == "again" and os.listdir(tmp_path) == ["reviews-delta.db"]
