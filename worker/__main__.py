"""`python -m worker [run|backup|status|backups|restore|verify|publish|erase-history]`: the backup worker and its ops commands."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
import threading

from shared.config import REVIEWS_AT_RISK_WARNING, Config, ConfigError, load_config
from shared.logs import setup_logging
from worker.backup import Backup
from worker.drill import RestoreDrill, verify
from worker.errors import describe_error
from worker.loop import BackupLoop, StopSignal
from worker.restore import NoBackup, RestoreRefused, restore
from worker.startup import prepare
from worker.state import load_state
from worker.targets import LocalFolderTarget, Target

log = logging.getLogger("worker")

# Coupled with supervisord.conf [program:worker] stopwaitsecs=60: on SIGTERM the final
# backup gets FINAL_BACKUP_TIMEOUT_SECONDS (45 s by default, at most 55 s; 8 s in the
# container, see the Dockerfile), the watchdog exits this margin later, and supervisord
# SIGKILLs only after 60 s, so a final backup is never cut short by a kill.
# tests/test_config.py checks the pair from the real files.
STOP_WATCHDOG_MARGIN_SECONDS = 4.0


def make_target(config: Config) -> Target:
    if config.hub_enabled:
        from worker.hub import HubTarget  # imported only when used: huggingface_hub is heavy

        return HubTarget.from_env(config)
    return LocalFolderTarget(config.backups_dir, keep=config.backup_keep)


def _exit_now() -> None:
    log.error("stop took too long, exiting without a final backup")
    logging.shutdown()
    os._exit(1)


def cmd_run(config: Config, target: Target) -> int:
    # `kill -USR1 <pid>` prints every thread's stack to the error log: for a worker that seems stuck.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    stop = StopSignal()

    def on_signal(signum: int, _frame) -> None:
        stop.set()  # first: nothing below may keep the loop from seeing it
        # A second signal takes the default action: the process ends at once,
        # even inside a long C call such as a snapshot.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        # Whatever the loop is stuck in, exit before supervisord's stopwaitsecs.
        watchdog = threading.Timer(config.final_backup_timeout_seconds + STOP_WATCHDOG_MARGIN_SECONDS, _exit_now)
        watchdog.daemon = True
        watchdog.start()
        log.info("stop requested signal=%s; making a final backup (send again to exit at once)",
                 signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if config.worker_nice:
        os.nice(config.worker_nice)  # backups must not take CPU from the form
    if config.reviews_at_risk:
        # At every start, not once: a Space restarts often, and its owner reads the latest log.
        log.warning("NO BACKUP: %s", REVIEWS_AT_RISK_WARNING)
    elif not config.hub_enabled:
        log.info("Hub sync is off (HF_DATASET_REPO not set); backups go to %s", config.backups_dir)
    log.info("worker starting interval_s=%s target=%s", config.backup_interval_seconds, target.name)
    prepare(config, target)
    backup = Backup(config, target)
    loop = BackupLoop(backup, interval=config.backup_interval_seconds, backoff_cap=config.backoff_cap_seconds,
                      drill=RestoreDrill(config, target))
    try:
        loop.run(stop)
    finally:
        final = threading.Thread(target=loop.tick, kwargs={"final": True}, name="final-backup", daemon=True)
        final.start()
        final.join(config.final_backup_timeout_seconds)
        if final.is_alive():
            log.error("final backup did not finish in %.0fs, exiting anyway", config.final_backup_timeout_seconds)
        log.info("shutdown complete")
    return 0


def cmd_backup(config: Config, target: Target, *, allow_fewer: bool = False, full: bool = False) -> int:
    if not config.db_path.exists():
        print(f"no database at {config.db_path} yet: start the app first", file=sys.stderr)
        return 1
    outcome = Backup(config, target).run(allow_fewer=allow_fewer, full=full)
    if outcome.published:
        print(f"published rows={outcome.published.rows} to {outcome.published.location} cycle={outcome.cycle}")
    elif outcome.rows == 0:
        print("no reviews yet: an empty database is not published")
    else:
        print(f"no change since the last backup (rows={outcome.rows}); nothing published")
    return 0


def cmd_status(config: Config, target: Target, *, as_json: bool) -> int:
    state = load_state(config.state_path)
    last = state.last_published
    info = {
        "target": target.name,
        "hub_sync": "on" if config.hub_enabled else "off",
        "dataset": config.hf_dataset_repo,
        "last_backup_at": last.at if last else None,
        "last_backup_rows": last.rows if last else None,
        "last_backup_location": last.location if last else None,
        "last_backup_revision": last.revision if last else None,  # the Hub commit, or the local pair's name
        "consecutive_failures": state.consecutive_failures,
        "last_error": state.last_error,
        "pending_merge": state.pending_merge,
        "conflict": state.conflict,
        "last_drill_at": state.last_drill_at,  # the newest backup restored into a scratch folder and checked
        "last_drill_ok": state.last_drill_ok,
        "last_drill_revision": state.last_drill_revision,
        "last_drill_detail": state.last_drill_detail,
    }
    if as_json:
        print(json.dumps(info, indent=1))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {'-' if value is None else value}")
    # Non-zero whenever ops should look: backups failing, a conflict, or a backup that would not restore.
    return 1 if state.conflict or state.consecutive_failures or state.last_drill_ok is False else 0


def cmd_verify(config: Config, target: Target, *, revision: str | None) -> int:
    verdict = verify(config, target, revision)
    print(f"{'ok' if verdict.ok else 'FAILED'} revision={verdict.revision or 'newest'}: {verdict.detail}")
    return 0 if verdict.ok else 1


def parse_utc(text: str) -> str:
    """`2026-11-20T10:00Z`, `2026-11-20T10:00:30Z` or `2026-11-20` (UTC) -> `YYYY-MM-DDTHH:MM:SSZ`."""
    from datetime import datetime, timezone

    raw = text.strip().upper().removesuffix("Z").replace(" ", "T")
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            continue
    raise ValueError(f"--at {text!r} is not a UTC time: use e.g. 2026-11-20T10:00Z")


def cmd_backups(target: Target, *, as_json: bool) -> int:
    entries = target.history()
    if as_json:
        print(json.dumps([{"revision": e.revision, "at": e.at, "rows": e.rows} for e in entries], indent=1))
        return 0
    if not entries:
        print(f"no backups at {target.name}")
        return 0
    width = max(len("revision"), *(len(e.revision) for e in entries))
    print(f"{'revision':<{width}}  {'time (UTC)':<20}  {'reviews':>10}")
    for e in entries:
        print(f"{e.revision:<{width}}  {e.at:<20}  {'-' if e.rows is None else f'{e.rows:,}':>10}")
    return 0


def backup_at(target: Target, at: str):
    """The newest backup made at or before `at` (like Litestream's -timestamp)."""
    entries = [e for e in target.history() if e.at <= at]
    if not entries:
        raise NoBackup(f"no backup at or before {at} at {target.name}")
    return max(entries, key=lambda e: e.at)


def cmd_restore(config: Config, target: Target, *, revision: str | None, force: bool, at: str | None = None) -> int:
    if at is not None:
        chosen = backup_at(target, at)
        print(f"restoring the backup of {chosen.at} ({'-' if chosen.rows is None else chosen.rows} reviews), "
              f"revision {chosen.revision}")
        revision = chosen.revision
    info = restore(config, target, revision=revision, force=force)
    print(f"restored rows={info.rows} from {info.location}{' at ' + info.revision if info.revision else ''}")
    return 0


def cmd_erase_history(config: Config, target: Target) -> int:
    from worker import erase_history

    if not hasattr(target, "squash_history"):
        print("erase-history rewrites the Hub dataset's history; no Hub dataset is configured (HF_DATASET_REPO). "
              "Local backups holding a deleted review are removed by the next backup cycle.", file=sys.stderr)
        return 2
    result = erase_history.run_request(config, target)
    print(result.describe())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="back up on a schedule until stopped (the default)")
    backup = sub.add_parser("backup", help="back up now, once")
    backup.add_argument("--full", action="store_true",
                        help="a full snapshot, every file rewritten and published (normally only new reviews are)")
    publish = sub.add_parser("publish", help="back up now, once; --allow-fewer publishes even a smaller database")
    publish.add_argument("--allow-fewer", action="store_true",
                         help="publish although the newest backup holds reviews the local database lacks")
    status = sub.add_parser("status", help="last backup, failures, conflicts")
    status.add_argument("--json", action="store_true")
    rest = sub.add_parser("restore", help="bring a backup back into the local database")
    rest.add_argument("--revision", help="an earlier backup (commit id, or local backup name)")
    rest.add_argument("--at", metavar="UTC_TIME",
                      help="the newest backup at or before this UTC time, e.g. 2026-11-20T10:00Z")
    rest.add_argument("--force", action="store_true", help="replace a non-empty local database (a copy is kept)")
    backups = sub.add_parser("backups", help="list the backups: revision, time, reviews; newest first")
    backups.add_argument("--json", action="store_true")
    check = sub.add_parser("verify", help="download a backup into a scratch folder and check it as a restore "
                                          "would; the live database is not touched")
    check.add_argument("--revision", help="an earlier backup (commit id, or local backup name); default the newest")
    sub.add_parser("erase-history", help="rewrite the Hub dataset's history without the reviews deleted on the "
                                         "owner's page (older backups are rebuilt; commit ids change)")
    args = parser.parse_args(argv)
    command = args.command or "run"
    at = None
    if command == "restore" and args.at is not None:
        if args.revision:
            parser.error("--at and --revision choose a backup each: give one of them")
        try:
            at = parse_utc(args.at)
        except ValueError as exc:
            parser.error(str(exc))

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    secrets = [os.environ.get("HF_TOKEN", ""), os.environ.get("HUGGING_FACE_HUB_TOKEN", "")]
    if config.hub_enabled:
        from huggingface_hub import get_token  # also a token from a saved login

        secrets.append(get_token() or "")
    setup_logging("worker", "INFO" if command in ("status", "backups", "verify") else config.log_level, secrets=secrets)
    try:
        target = make_target(config)
        if command == "run":
            return cmd_run(config, target)
        if command == "backup":
            return cmd_backup(config, target, full=args.full)
        if command == "publish":
            return cmd_backup(config, target, allow_fewer=args.allow_fewer)
        if command == "status":
            return cmd_status(config, target, as_json=args.json)
        if command == "restore":
            return cmd_restore(config, target, revision=args.revision, force=args.force, at=at)
        if command == "backups":
            return cmd_backups(target, as_json=args.json)
        if command == "verify":
            return cmd_verify(config, target, revision=args.revision)
        if command == "erase-history":
            return cmd_erase_history(config, target)
    except RestoreRefused as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - one clear line for ops, no traceback
        log.debug("command failed", exc_info=True)
        print(f"{command} failed: {describe_error(exc)}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
