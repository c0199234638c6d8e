import pytest

from shared.config import DEFAULT_BACKUP_INTERVAL_SECONDS, ConfigError, load_config


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config({})
    assert config.data_dir == tmp_path / "data"
    assert config.db_path == tmp_path / "data" / "reviews.db"
    assert config.backup_interval_seconds == DEFAULT_BACKUP_INTERVAL_SECONDS == 60
    assert config.server_name == "127.0.0.1" and config.server_port == 7860
    assert not config.hub_enabled and config.hf_dataset_private


@pytest.mark.parametrize("name, value", [
    ("BACKUP_INTERVAL_SECONDS", "soon"), ("BACKUP_INTERVAL_SECONDS", "-5"), ("GRADIO_SERVER_PORT", "70000"),
    ("GRADIO_SERVER_PORT", "http"), ("BACKUP_KEEP", "0"), ("HF_DATASET_REPO", "no-slash"),
    ("HF_DATASET_PRIVATE", "maybe"), ("FEEDBACK_RATE_LIMIT_PER_MINUTE", "-1"), ("LOG_LEVEL", "LOUD"),
])
def test_bad_values_name_the_variable_and_the_value(name, value):
    with pytest.raises(ConfigError) as err:
        load_config({name: value})
    assert name in str(err.value) and repr(value) in str(err.value)


def test_config_is_frozen():
    config = load_config({})
    with pytest.raises(AttributeError):
        config.backup_keep = 3  # type: ignore[misc]


def test_worker_and_web_refuse_to_start_on_a_bad_value(tmp_path):
    import subprocess
    import sys
    for module in ("web", "worker"):
        r = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "FEEDBACK_DATA_DIR": str(tmp_path),
                                "BACKUP_INTERVAL_SECONDS": "often"})
        assert r.returncode == 2
        assert "BACKUP_INTERVAL_SECONDS='often'" in r.stderr


def test_dataset_license_and_publish_names(monkeypatch):
    config = load_config({})
    assert config.hf_dataset_license == "unknown"  # no rights granted unless the owner says so
    assert config.hf_dataset_publish_names is None  # no choice made
    config = load_config({"HF_DATASET_LICENSE": "CC-BY-4.0", "HF_DATASET_PUBLISH_NAMES": "false"})
    assert config.hf_dataset_license == "cc-by-4.0" and config.hf_dataset_publish_names is False


@pytest.mark.parametrize("name, value, listed", [
    ("HF_DATASET_LICENSE", "gpl-9", ["unknown", "cc0-1.0", "cc-by-4.0", "odbl"]),
    ("HF_DATASET_PUBLISH_NAMES", "sometimes", ["true or false"]),
    ("HF_DATASET_PRIVATE", "secret", ["true or false"]),
])
def test_unknown_license_or_privacy_value_lists_the_valid_ones(name, value, listed):
    with pytest.raises(ConfigError) as err:
        load_config({name: value})
    message = str(err.value)
    assert name in message and repr(value) in message
    assert all(item in message for item in listed), message


def test_supervisord_waits_longer_than_the_workers_final_backup():
    """The timeout pair, read from the real files: supervisord must not SIGKILL a final backup."""
    import configparser
    from pathlib import Path

    from worker.__main__ import STOP_WATCHDOG_MARGIN_SECONDS

    conf = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    conf.read(Path(__file__).resolve().parent.parent / "supervisord.conf")
    stopwaitsecs = conf.getint("program:worker", "stopwaitsecs")
    final = load_config({}).final_backup_timeout_seconds
    # The largest value the setting accepts must fit too, not only the default.
    largest = final
    for value in range(int(final), 200):
        try:
            largest = load_config({"FINAL_BACKUP_TIMEOUT_SECONDS": str(value)}).final_backup_timeout_seconds
        except ConfigError:
            break
    watchdog = largest + STOP_WATCHDOG_MARGIN_SECONDS
    assert final <= largest < watchdog < stopwaitsecs, (
        f"final backup up to {largest}s, watchdog {watchdog}s, supervisord stopwaitsecs {stopwaitsecs}s")


def test_waiting_for_the_worker_says_what_it_waits_for(tmp_path, caplog):
    import logging

    from web.gate import wait_for_worker

    config = load_config({"FEEDBACK_DATA_DIR": str(tmp_path)})
    with caplog.at_level(logging.INFO, logger="web.gate"):
        assert wait_for_worker(config, max_wait=0) is False  # nothing writes the file here
    first = caplog.records[0].getMessage()
    from shared.supervisor_run import supervisor_run_id

    assert str(config.ready_path) in first and f"expected_run={supervisor_run_id()}" in first
    assert "FEEDBACK_WAIT_FOR_WORKER" in first


@pytest.mark.parametrize("value", ["0", "56", "soon"])
def test_final_backup_timeout_must_fit_supervisords_stopwaitsecs(value):
    with pytest.raises(ConfigError, match="FINAL_BACKUP_TIMEOUT_SECONDS"):
        load_config({"FINAL_BACKUP_TIMEOUT_SECONDS": value})


def test_reviews_at_risk_only_without_a_dataset_on_a_wiped_disk():
    assert not load_config({}).reviews_at_risk  # a checkout's disk persists
    assert load_config({"FEEDBACK_DATA_PERSISTENT": "false"}).reviews_at_risk
    assert not load_config({"FEEDBACK_DATA_PERSISTENT": "false", "HF_DATASET_REPO": "me/feedback"}).reviews_at_risk


def test_the_containers_final_backup_fits_the_grace_period_the_space_card_asks_for():
    """The Dockerfile's bound against the card's `termination_grace_period`: the web's stop (at most
    uvicorn's 5 s graceful bound, ~0.2 s in practice) comes first, then the final backup and its
    watchdog's margin, then the log copier's 1 s (space/supervisord.conf)."""
    import re
    from pathlib import Path

    from worker.__main__ import STOP_WATCHDOG_MARGIN_SECONDS

    root = Path(__file__).resolve().parent.parent
    dockerfile, card = root / "Dockerfile", root / "space" / "README.md"
    if not dockerfile.exists():
        pytest.skip("no Dockerfile in this checkout")
    match = re.search(r"FINAL_BACKUP_TIMEOUT_SECONDS=(\d+(?:\.\d+)?)", dockerfile.read_text())
    assert match, "the Dockerfile no longer sets FINAL_BACKUP_TIMEOUT_SECONDS"
    front = card.read_text(encoding="utf-8").split("---")[1]
    grace = re.search(r"^termination_grace_period:\s*(\d+)([sm])\s*$", front, re.M)
    assert grace, "the Space card no longer asks for a grace period before SIGKILL"
    grace_s = int(grace.group(1)) * (60 if grace.group(2) == "m" else 1)
    web_stop, log_copier = 5.0, 1.0
    assert web_stop + float(match.group(1)) + STOP_WATCHDOG_MARGIN_SECONDS + log_copier < grace_s <= 600
