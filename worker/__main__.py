"""`python -m worker [run|backup|status|backups|restore|verify|publish|erase-history]`: the backup worker and its ops commands."""

from __future__ import annotations

# First, before the token is used or anything else is imported: the worker holds HF_TOKEN,
# and no other process of our user (the web) may read it from /proc (shared/undumpable.py).
from shared.undumpable import make_undumpable

make_undumpable()

import argparse  # noqa: E402
import faulthandler  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from shared import utc  # noqa: E402
from shared.config import REVIEWS_AT_RISK_WARNING, Config, ConfigError, load_config  # noqa: E402
from shared.logs import setup_logging  # noqa: E402
from worker.backup import Backup  # noqa: E402
from worker.drill import RestoreDrill, verify  # noqa: E402
from worker.errors import describe_error  # noqa: E402
from worker.loop import BackupLoop, StopSignal  # noqa: E402
from worker.notify import secrets_from_env, start_notifier, status_info  # noqa: E402
from worker.restore import NoBackup, RestoreRefused, restore  # noqa: E402
from worker.startup import prepare  # noqa: E402
from worker.state import load_state  # noqa: E402
from shared.storage import StorageRefused, check_data_dir, mount_of  # noqa: E402
from worker.startup import choose_source  # noqa: E402
from worker.targets import FolderTarget, Target  # noqa: E402

log = logging.getLogger("worker")

# Coupled with supervisord.conf [program:worker] stopwaitsecs=60: on SIGTERM the final
# backup gets FINAL_BACKUP_TIMEOUT_SECONDS (45 s by default, at most 55 s; the container's
# grace period is asked for in the Space card, see the Dockerfile), the watchdog exits this
# margin later, and supervisord SIGKILLs only after 60 s, so a final backup is never cut
# short by supervisord. tests/test_config.py checks the pair from the real files.
STOP_WATCHDOG_MARGIN_SECONDS = 4.0


def make_target(config: Config) -> Target:
    """The primary target: the Hub dataset, or a local folder when Hub sync is off."""
    if config.hub_enabled:
        from worker.hub import HubTarget  # imported only when used: huggingface_hub is heavy

        return HubTarget.from_env(config)
    return FolderTarget(config.backups_dir, keep=config.backup_keep)


def make_targets(config: Config) -> list[Target]:
    """Every configured target, the fastest first (restore prefers it when two hold the same backup):
    the folder on a mounted bucket (BACKUP_MOUNT_DIR), then the primary target."""
    targets: list[Target] = []
    if config.backup_mount_dir is not None:
        targets.append(FolderTarget(config.backup_mount_dir, keep=config.backup_keep, on_mount=True))
    return [*targets, make_target(config)]


def target_intervals(config: Config, targets: list[Target]) -> dict[str, float]:
    return {t.name: config.backup_mount_interval_seconds if getattr(t, "on_mount", False)
            else config.backup_interval_seconds for t in targets}


def log_storage(config: Config) -> None:
    """One line: what the data folder and the backup mount are on, and what was chosen (refuses a
    network or FUSE data folder unless overridden: shared/storage.py)."""
    data = check_data_dir(config.data_dir, allow_network=config.allow_network_data_dir)
    mount = mount_of(config.backup_mount_dir) if config.backup_mount_dir is not None else None
    level = logging.WARNING if data is not None and data.kind == "network" else logging.INFO
    log.log(level, "storage data_dir=%s on=%s live_db=%s backup_mount=%s on=%s%s", config.data_dir,
            data.describe() if data else "unknown", config.db_path,
            config.backup_mount_dir or "-", mount.describe() if mount else "-",
            " (FEEDBACK_ALLOW_NETWORK_DATA_DIR=true: the live database on a network or FUSE folder, "
            "reviews at risk)" if level == logging.WARNING else "")


def _exit_now() -> None:
    log.error("stop took too long, exiting without a final backup")
    logging.shutdown()
    os._exit(1)


def cmd_run(config: Config, targets: list[Target]) -> int:
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
    try:
        log_storage(config)
    except StorageRefused as exc:
        log.critical("refusing to start: %s", exc)
        return 2
    if config.reviews_at_risk:
        # At every start, not once: a Space restarts often, and its owner reads the latest log.
        log.warning("NO BACKUP: %s", REVIEWS_AT_RISK_WARNING)
    elif not config.hub_enabled:
        log.info("Hub sync is off (HF_DATASET_REPO not set); backups go to %s", config.backups_dir)
    intervals = target_intervals(config, targets)
    log.info("worker starting interval_s=%s target=%s targets=%s", config.backup_interval_seconds, targets[-1].name,
             ",".join(f"{t.name}(every {intervals[t.name]:g}s)" for t in targets))
    prepare(config, targets)
    # Word of new reviews: its own thread, reading the live database; it never touches a backup.
    notifier = start_notifier(config)
    # The drill checks the primary target (the Hub, or the local folder): the one a Space relies on.
    # Its own instance: the drill runs in the loop's thread while that target publishes in its own.
    loop = BackupLoop([Backup(config, t) for t in targets], interval=config.backup_interval_seconds,
                      backoff_cap=config.backoff_cap_seconds, drill=RestoreDrill(config, make_target(config)),
                      intervals=intervals)
    try:
        loop.run(stop)
    finally:
        final = threading.Thread(target=loop.tick, kwargs={"final": True}, name="final-backup", daemon=True)
        final.start()
        final.join(config.final_backup_timeout_seconds)
        if final.is_alive():
            log.error("final backup did not finish in %.0fs, exiting anyway", config.final_backup_timeout_seconds)
        if notifier is not None:
            notifier.stop()
        log.info("shutdown complete")
    return 0


def cmd_backup(config: Config, targets: list[Target], *, allow_fewer: bool = False, full: bool = False) -> int:
    if not config.db_path.exists():
        print(f"no database at {config.db_path} yet: start the app first", file=sys.stderr)
        return 1
    failed = 0
    for target in targets:  # each on its own: one failing does not keep the others from their backup
        prefix = f"{target.name}: " if len(targets) > 1 else ""
        try:
            outcome = Backup(config, target).run(allow_fewer=allow_fewer, full=full)
        except Exception as exc:  # reported, then the next target
            if len(targets) == 1:
                raise
            print(f"{prefix}failed: {describe_error(exc)}", file=sys.stderr)
            failed += 1
            continue
        if outcome.published:
            print(f"{prefix}published rows={outcome.published.rows} to {outcome.published.location} "
                  f"cycle={outcome.cycle}")
        elif outcome.rows == 0:
            print(f"{prefix}no reviews yet: an empty database is not published")
        else:
            print(f"{prefix}no change since the last backup (rows={outcome.rows}); nothing published")
    return 1 if failed else 0


def cmd_status(config: Config, targets: list[Target], *, as_json: bool) -> int:
    state = load_state(config.state_path)
    primary = state.target(targets[-1].name)
    last = primary.last_published
    per_target = []
    for target in targets:
        ts = state.target(target.name)
        per_target.append({
            "target": target.name,
            "last_backup_at": ts.last_published.at if ts.last_published else None,
            "last_backup_rows": ts.last_published.rows if ts.last_published else None,
            "last_backup_revision": ts.last_published.revision if ts.last_published else None,
            "consecutive_failures": ts.consecutive_failures,
            "last_error": ts.last_error,
            "next_try_at": ts.next_try_at,  # backing off, or the target asked to wait
            "waiting": ts.waiting,
            "pending_merge": ts.pending_merge,
            "conflict": ts.conflict,
        })
    mine = [state.target(t.name) for t in targets]
    info = {
        "target": targets[-1].name,
        "hub_sync": "on" if config.hub_enabled else "off",
        "dataset": config.hf_dataset_repo,
        "backup_mount": str(config.backup_mount_dir) if config.backup_mount_dir else None,
        # The Hub's commits are budgeted: a 429 (its own quota) shows in last_error until it frees.
        "hub_commits_per_hour": config.hf_commits_per_hour if config.hub_enabled else None,
        "hub_squash_after_commits": config.hf_squash_after_commits if config.hub_enabled else None,
        "last_backup_at": last.at if last else None,
        "last_backup_rows": last.rows if last else None,
        "last_backup_location": last.location if last else None,
        "last_backup_revision": last.revision if last else None,  # the Hub commit, or the local backup's name
        # Over every target: the longest failure streak, the first error and conflict.
        "consecutive_failures": max(t.consecutive_failures for t in mine),
        "last_error": next((t.last_error for t in mine if t.last_error), None),
        "pending_merge": any(t.pending_merge for t in mine),
        "conflict": next((t.conflict for t in mine if t.conflict), None),
        "last_drill_at": state.last_drill_at,  # the newest backup restored into a scratch folder and checked
        "last_drill_ok": state.last_drill_ok,
        "last_drill_revision": state.last_drill_revision,
        "last_drill_detail": state.last_drill_detail,
        "targets": per_target,
        **status_info(config),  # the webhook's host only, never its URL
    }
    if as_json:
        print(json.dumps(info, indent=1))
    else:
        shown = {k: v for k, v in info.items() if k != "targets"}
        width = max(len(k) for k in [*shown, *per_target[0]])
        for key, value in shown.items():
            print(f"{key:<{width}}  {'-' if value is None else value}")
        for entry in per_target:
            print(f"\n[{entry['target']}]")
            for key, value in entry.items():
                if key != "target":
                    print(f"{key:<{width}}  {'-' if value is None else value}")
    # Non-zero whenever ops should look: backups failing, a conflict, or a backup that would not restore.
    return 1 if info["conflict"] or info["consecutive_failures"] or state.last_drill_ok is False else 0


def cmd_verify(config: Config, target: Target, *, revision: str | None) -> int:
    verdict = verify(config, target, revision)
    print(f"{'ok' if verdict.ok else 'FAILED'} revision={verdict.revision or 'newest'}: {verdict.detail}")
    return 0 if verdict.ok else 1


def cmd_backups(targets: list[Target], *, as_json: bool) -> int:
    listed = [(t, t.history()) for t in targets]
    if as_json:
        print(json.dumps([{"target": t.name, "revision": e.revision, "at": e.at, "rows": e.rows, "tag": e.tag}
                          for t, entries in listed for e in entries], indent=1))
        return 0
    for n, (target, entries) in enumerate(listed):
        if len(targets) > 1:
            print(f"{'' if n == 0 else chr(10)}[{target.name}]")
        if not entries:
            print(f"no backups at {target.name}")
            continue
        width = max(len("revision"), *(len(e.revision) for e in entries))
        print(f"{'revision':<{width}}  {'time (UTC)':<20}  {'reviews':>10}  kept as")
        for e in entries:
            # "kept as": on the Hub, the tag that keeps an older backup restorable after main is squashed.
            print(f"{e.revision:<{width}}  {e.at:<20}  {'-' if e.rows is None else f'{e.rows:,}':>10}  {e.tag or '-'}")
    return 0


def backup_at(target: Target, at: str):
    """The newest backup made at or before `at` (like Litestream's -timestamp)."""
    entries = [e for e in target.history() if e.at <= at]
    if not entries:
        raise NoBackup(f"no backup at or before {at} at {target.name}")
    return max(entries, key=lambda e: e.at)


def _holder(targets: list[Target], revision: str) -> Target:
    """The target whose history names `revision` (a Hub commit or a folder backup's name)."""
    for target in targets:
        try:
            if any(e.revision.startswith(revision) for e in target.history(every_commit=True)):
                return target
        except Exception as exc:  # noqa: BLE001 - an unreachable target cannot hold it for us
            log.debug("could not list target=%s cause=%s", target.name, describe_error(exc))
    return targets[-1]  # let the primary target say it has no such backup


def _newest_target(targets: list[Target]) -> Target:
    found = {}
    for i, target in enumerate(targets):
        try:
            newest = target.newest()
        except Exception as exc:  # noqa: BLE001 - the others may hold it
            print(f"{target.name} cannot be read: {describe_error(exc)}", file=sys.stderr)
            continue
        if newest is not None:
            found[i] = newest
    chosen = choose_source(found)
    return targets[-1] if chosen is None else targets[chosen]


def cmd_restore(config: Config, targets: list[Target], *, revision: str | None, force: bool,
                at: str | None = None) -> int:
    if at is not None:
        chosen_pairs = []
        for target in targets:
            try:
                chosen_pairs.append((backup_at(target, at), target))
            except NoBackup:
                continue
        if not chosen_pairs:
            raise NoBackup(f"no backup at or before {at} at {', '.join(t.name for t in targets)}")
        # The newest at or before `at`; of two as new, the first listed (the faster target).
        chosen, target = max(chosen_pairs, key=lambda pair: (pair[0].at, -targets.index(pair[1])))
        print(f"restoring the backup of {chosen.at} ({'-' if chosen.rows is None else chosen.rows} reviews), "
              f"revision {chosen.revision} from {target.name}")
        revision = chosen.revision
    elif revision:
        target = _holder(targets, revision)
    else:
        target = _newest_target(targets)
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
            at = utc.iso(utc.parse_loose(args.at))
        except utc.TimeFormatError as exc:
            parser.error(f"--at {exc}")

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    secrets = [os.environ.get("HF_TOKEN", ""), os.environ.get("HUGGING_FACE_HUB_TOKEN", ""), *secrets_from_env()]
    if config.hub_enabled:
        from huggingface_hub import get_token  # also a token from a saved login

        secrets.append(get_token() or "")
    setup_logging("worker", "INFO" if command in ("status", "backups", "verify") else config.log_level, secrets=secrets)
    try:
        targets = make_targets(config)
        target = targets[-1]
        if command == "run":
            return cmd_run(config, targets)
        if command == "backup":
            return cmd_backup(config, targets, full=args.full)
        if command == "publish":
            return cmd_backup(config, targets, allow_fewer=args.allow_fewer)
        if command == "status":
            return cmd_status(config, targets, as_json=args.json)
        if command == "restore":
            return cmd_restore(config, targets, revision=args.revision, force=args.force, at=at)
        if command == "backups":
            return cmd_backups(targets, as_json=args.json)
        if command == "verify":
            return cmd_verify(config, _holder(targets, args.revision) if args.revision else target,
                              revision=args.revision)
        if command == "erase-history":
            return cmd_erase_history(config, target)
    except RestoreRefused as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # one clear line for ops; the traceback only at DEBUG
        log.debug("command failed", exc_info=True)
        print(f"{command} failed: {describe_error(exc)}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
