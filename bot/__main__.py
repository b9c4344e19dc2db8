"""Command line: ``python -m bot [run | check | preview | reload | sync | backup]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.config import PROJECT_DIR, ConfigError, Settings, configure_logging, load_settings
from bot.content.reload_signal import ReloadError, pid_file_for, signal_reload
from bot.content.sync import dry_run, sync_content
from bot.lookup import Catalogue
from bot.messages import OutgoingMessage, ending_messages, review_message
from bot.spoilers.durations import DurationError, parse_window
from bot.spoilers.policy import SpoilerMode, SpoilerSettings, decide
from bot.storage import Storage, StorageError, sqlite_path_from_url

log = logging.getLogger("bot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="connect to Discord and serve (the default)")
    check = sub.add_parser("check", help="validate the content directory")
    check.add_argument("--apply", action="store_true", help="also load it into the database")
    check.add_argument(
        "--votes",
        action="store_true",
        help="instead: recount every vote and report totals that disagree (exit 1 if any)",
    )
    preview = sub.add_parser("preview", help="print what the bot would post, without Discord")
    preview.add_argument("kind", choices=("review", "ending"))
    preview.add_argument("episode", help="title or code, e.g. 's7e6' or 'into infinity'")
    preview.add_argument("--window", default="7d", help="spoiler window, e.g. 30d, off, forever")
    preview.add_argument("--mode", default="tagged", choices=[m.value for m in SpoilerMode])
    preview.add_argument("--now", help="pretend it is this ISO time (default: now)")
    sub.add_parser("reload", help="tell the running bot to reload the content directory now")
    sub.add_parser("sync", help="register the slash commands with Discord now")
    backup = sub.add_parser(
        "backup", help="copy the live database to FILE (safe while the bot runs), verified"
    )
    backup.add_argument(
        "file", type=Path, help="the new file, or a directory for a time-stamped file in it"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    try:
        settings = load_settings()
        # Only the serving commands write LOG_FILE: a `check` run by another user must not
        # leave it owned by them.
        configure_logging(
            settings.log_level,
            log_file=settings.log_file if command in ("run", "sync") else None,
            secrets=[settings.discord_token or ""],
        )
    except ConfigError as error:
        print(f"embargo: {error}", file=sys.stderr)
        return 2
    try:
        return dispatch(args, settings)
    except StorageError as error:
        # A database that can't be used is the operator's to fix: one line, no traceback.
        print(f"embargo: {error}", file=sys.stderr)
        return 2


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command or "run"
    if command == "check" and args.votes:
        if args.apply:
            print("embargo: use --votes or --apply, not both", file=sys.stderr)
            return 2
        return asyncio.run(check_votes(settings))
    if command == "check":
        return asyncio.run(check(settings, apply=args.apply))
    if command == "preview":
        return preview(settings, args)
    if command == "reload":
        return reload(settings)
    if command == "backup":
        return asyncio.run(backup(settings, args.file))
    try:
        token = settings.require_token()
    except ConfigError as error:
        print(f"embargo: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(settings, token, force_sync=command == "sync"))
    except KeyboardInterrupt:
        log.info("stopped")
    return 0


async def run(settings: Settings, token: str, *, force_sync: bool) -> None:
    # Imported here so `check` and `preview` start fast and never need discord.py's gateway.
    from bot.connect import serve

    storage = await Storage.open(settings.database_url, PROJECT_DIR)
    try:
        await serve(settings, storage, token, force_sync=force_sync)
    finally:
        await storage.close()


async def check(settings: Settings, *, apply: bool) -> int:
    content_dir = settings.content_dir
    if not content_dir.is_dir():
        print(f"{content_dir}: not a directory (set CONTENT_DIR in .env)", file=sys.stderr)
        return 1
    if apply:
        storage = await Storage.open(settings.database_url, PROJECT_DIR)
        storage.db.report_faults = False  # main prints a fault as one line
        try:
            report = await sync_content(storage, content_dir)
        finally:
            await storage.close()
        problems = list(report.problems)
        summary = (
            f"loaded {len(report.loaded)} file(s), {len(report.unchanged)} unchanged, "
            f"{len(report.removed)} removed"
        )
    else:
        # A dry run of the very sync the bot runs: the same rules, nothing written.
        report, loaded = await dry_run(content_dir, keep_reviews=False)
        problems = list(report.problems)
        episodes = sum(len(show.episodes) for show in loaded.shows.values())
        summary = (
            f"{len(loaded.shows)} show(s), {episodes} episode(s), {loaded.review_count} "
            f"review(s), {len(loaded.rankings)} critic ranking(s)"
        )
    for problem in problems:
        # Name the file as the owner would open it: the content directory plus its path there.
        shown = replace(problem, path=display_path(content_dir / problem.path))
        print(shown, file=sys.stderr if problem.severity == "error" else sys.stdout)
    errors = sum(problem.severity == "error" for problem in problems)
    if errors:
        print(f"{errors} error(s) in {content_dir}", file=sys.stderr)
        return 1
    print(f"ok: {summary}")
    return 0


async def check_votes(settings: Settings) -> int:
    """Recount the votes and compare with the running totals rankings read."""
    storage = await Storage.open(settings.database_url, PROJECT_DIR)
    storage.db.report_faults = False  # main prints a fault as one line
    try:
        drift = await storage.check_vote_totals()
    finally:
        await storage.close()
    for entry in drift:
        print(f"drift: {entry.describe()}", file=sys.stderr)
    if drift:
        print(f"{len(drift)} vote total(s) disagree with a recount of the votes", file=sys.stderr)
        return 1
    print("ok: every vote total matches a recount of the votes")
    return 0


def reload(settings: Settings) -> int:
    """Ask the bot running on this database to reload its content (see reload_signal)."""
    try:
        database = sqlite_path_from_url(settings.database_url, PROJECT_DIR)
    except StorageError as error:
        print(f"embargo: {error}", file=sys.stderr)
        return 2
    if not isinstance(database, Path):
        print("embargo: an in-memory database has no running bot to reload", file=sys.stderr)
        return 2
    try:
        pid = signal_reload(pid_file_for(database))
    except ReloadError as error:
        print(f"embargo: {error}", file=sys.stderr)
        return 1
    print(
        f"asked Embargo (process {pid}) to reload {display_path(settings.content_dir)}: its "
        "log lists what changed and any problems; `python -m bot check` shows them here"
    )
    return 0


async def backup(settings: Settings, file: Path) -> int:
    from bot.backup import BackupError, backup_database, source_path, target_path

    try:
        source = source_path(settings.database_url, PROJECT_DIR)
        target = target_path(file, source, datetime.now(UTC))
        result = await backup_database(source, target)
    except (BackupError, StorageError) as error:
        print(f"embargo: {error}", file=sys.stderr)
        return 2
    print(
        f"backed up {display_path(source)} to {display_path(result.path)}: "
        f"{result.size} bytes, schema version {result.schema_version}, {result.votes} vote(s)"
    )
    if result.drift is None:
        print("ok: integrity checked; votes not recounted (older schema than this code)")
        return 0
    for entry in result.drift:
        print(f"drift: {entry.describe()}", file=sys.stderr)
    if result.drift:
        print(
            f"{len(result.drift)} vote total(s) in the copy disagree with a recount "
            "(so does the live database: run `python -m bot check --votes`)",
            file=sys.stderr,
        )
        return 1
    print("ok: integrity checked, every vote total matches a recount")
    return 0


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def preview(settings: Settings, args: argparse.Namespace) -> int:
    _, loaded = asyncio.run(dry_run(settings.content_dir))
    catalogue = Catalogue(sorted(loaded.shows.values(), key=lambda show: show.slug))
    episode = catalogue.resolve(args.episode)
    if episode is None:
        names = ", ".join(e.label for e in catalogue.suggest(args.episode)) or "none"
        print(f"unknown episode {args.episode!r}; closest: {names}", file=sys.stderr)
        return 1
    try:
        window = parse_window(args.window)
        now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    except (DurationError, ValueError) as error:
        print(f"embargo: {error}", file=sys.stderr)
        return 1
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    review = loaded.reviews.get(episode.key)
    if args.kind == "review":
        messages = [review_message(episode, review)]
        if review is not None and review.ending:
            print("[button] Ending explained")
    else:
        spoiler_settings = SpoilerSettings(window=window, mode=SpoilerMode(args.mode))
        decision = decide(
            release_at=episode.release_at,
            now=now,
            settings=spoiler_settings,
            show_slug=episode.show_slug,
        )
        print(f"[policy] {decision.delivery.value}: {decision.reason}")
        messages = ending_messages(episode, review, decision)
    for number, message in enumerate(messages, start=1):
        print(format_message(number, message))
    return 0


def format_message(number: int, message: OutgoingMessage) -> str:
    flags = [name for name, on in (("ephemeral", message.ephemeral),) if on]
    if message.suppress_embeds:
        flags.append("no link previews")
    lines = [f"--- message {number} ({', '.join(flags) or 'public'}) ---"]
    if message.content:
        lines.append(message.content)
    for embed in message.embeds:
        lines.append(f"[embed] {embed.get('title', '')}")
        if embed.get("description"):
            lines.append(str(embed["description"]))
        for field in embed.get("fields", []):  # type: ignore[attr-defined]
            lines.append(f"[field] {field['name']}: {field['value']}")
        footer = embed.get("footer")
        if isinstance(footer, dict):
            lines.append(f"[footer] {footer.get('text', '')}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
