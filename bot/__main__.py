"""Command line: ``python -m bot [run | check | preview | reload | sync | backup]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.config import PROJECT_DIR, ConfigError, Settings, configure_logging, load_settings
from bot.content.files import REVIEWS_DIR, ContentProblem, count_summary
from bot.content.models import Episode
from bot.content.reload_signal import ReloadError, pid_file_for, signal_reload
from bot.content.sync import SyncReport, dry_run, sync_content
from bot.lookup import Catalogue
from bot.messages import (
    OutgoingMessage,
    Surface,
    ending_messages,
    episode_label,
    review_message,
)
from bot.spoilers.durations import DurationError, parse_window
from bot.spoilers.policy import SpoilerMode, SpoilerSettings, TitleRule, decide
from bot.storage import POSTGRES_SCHEMES, Storage, StorageError
from bot.storage.sqlite.database import sqlite_path_from_url
from bot.terminal_times import readable_times

log = logging.getLogger("bot")


DESCRIPTION = """\
Embargo: spoiler-safe TV episode discussion for Discord.

commands:
  run       connect to Discord and serve (the default when no command is given)
  check     check the content files for problems, exactly as the bot would load them;
            --apply also loads them into the database, --votes recounts every vote
  preview   print what the bot would post for an episode, without Discord or a token
  reload    tell the running bot to reload the content files now
  sync      register the slash commands with Discord now, even if unchanged
  backup    copy the live database to FILE, safe while the bot runs, and verify the copy

Settings come from the environment and .env (see .env.example). For a command's own
options: python -m bot COMMAND --help
"""

PREVIEW_EXAMPLES = """\
examples:
  python -m bot preview review "black mirror s7e6"
  python -m bot preview ending "into infinity" --window 30d --mode tagged --now 2025-04-20T12:00Z
"""

NOW_EXAMPLE = "--now 2025-05-29T08:00Z (UTC), --now 2025-05-29T09:00+01:00 or --now 2025-05-29"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        usage="python -m bot [-h] [COMMAND] [options]",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The description lists the commands in words; argparse's own list would repeat it.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS)
    sub.add_parser(
        "run", prog="python -m bot run", description="Connect to Discord and serve (the default)."
    )
    check = sub.add_parser(
        "check",
        prog="python -m bot check",
        description="Check the content files for problems: a dry run of the load the bot "
        "does, printing each problem as file:line: message.",
    )
    check.add_argument("--apply", action="store_true", help="also load them into the database")
    check.add_argument(
        "--votes",
        action="store_true",
        help="instead: recount every vote and report totals that disagree (exit 1 if any)",
    )
    preview = sub.add_parser(
        "preview",
        prog="python -m bot preview",
        description="Print what the bot would post for an episode, without Discord: the\n"
        "message text as Discord markdown, then the embeds, with times written out in UTC.",
        epilog=PREVIEW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    preview.add_argument("kind", choices=("review", "ending"), help="which reply to preview")
    preview.add_argument("episode", help="title or code, e.g. 's7e6' or 'into infinity'")
    preview.add_argument("--window", default="7d", help="spoiler window, e.g. 30d, off, forever")
    preview.add_argument(
        "--mode",
        default="tagged",
        choices=[m.value for m in SpoilerMode],
        help="how spoilers are shown inside the window (default: tagged)",
    )
    preview.add_argument(
        "--now", help="pretend it is this time, e.g. 2025-05-29T08:00Z (default: now)"
    )
    sub.add_parser(
        "reload",
        prog="python -m bot reload",
        description="Tell the running bot to reload the content files now.",
    )
    sub.add_parser(
        "sync",
        prog="python -m bot sync",
        description="Register the slash commands with Discord now.",
    )
    backup = sub.add_parser(
        "backup",
        prog="python -m bot backup",
        description="Copy the live database to FILE (safe while the bot runs), verified.",
    )
    backup.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="the new file, or a directory for a time-stamped file in it",
    )
    migrate = sub.add_parser(
        "migrate-to",
        prog="python -m bot migrate-to",
        description="Copy the SQLite database (DATABASE_URL) into an empty PostgreSQL "
        "database, then check the copy.",
    )
    migrate.add_argument("target", help="postgresql://user:password@host/dbname")
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
    if command == "migrate-to":
        return asyncio.run(migrate(settings, args.target))
    try:
        token = settings.require_token()
    except ConfigError as error:
        print(f"embargo: {error}", file=sys.stderr)
        return 2
    # Ctrl+C while serving closes the bot (bot.connect.close_on_signals); before that, during
    # start-up or a retry's wait, it interrupts asyncio.run.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings, token, force_sync=command == "sync"))
    if command != "sync":
        log.info("stopped")
    return 0


async def run(settings: Settings, token: str, *, force_sync: bool) -> None:
    # Imported here so `check` and `preview` start fast and never need discord.py's gateway.
    from bot.connect import serve

    storage = await Storage.open(
        settings.database_url, PROJECT_DIR, pool_size=settings.database_pool_size
    )
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
    counts = count_summary(problems)
    if any(problem.severity == "error" for problem in problems):
        print(f"{counts} in {display_path(content_dir)}", file=sys.stderr)
        return 1
    print(f"ok: {summary} ({counts})")
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


async def migrate(settings: Settings, target: str) -> int:
    """Copy the database into an empty PostgreSQL database and check the copy."""
    from bot.storage.migrate_to import migrate_to
    from bot.storage.postgres.database import redacted

    copied = await migrate_to(settings.database_url, target, PROJECT_DIR)
    rows = sum(copied.rows.values())
    print(
        f"ok: copied {rows:,} row(s) of {len(copied.rows)} tables into {redacted(target)}, "
        f"{copied.rows.get('votes', 0):,} of them votes; every table's rows counted again "
        f"and every vote total matches a recount. Set DATABASE_URL to it to use it."
    )
    return 0


def reload(settings: Settings) -> int:
    """Ask the bot running on this database to reload its content: on SQLite with SIGHUP
    (see reload_signal), on PostgreSQL with a notice to the leading process, wherever it
    runs (see bot/storage/postgres/leader.py)."""
    if settings.database_url.startswith(POSTGRES_SCHEMES):
        return asyncio.run(reload_leader(settings))
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


async def reload_leader(settings: Settings) -> int:
    from bot.storage.content import RELOAD_REQUESTED
    from bot.storage.postgres.database import redacted
    from bot.storage.postgres.leader import ask_leader

    where = redacted(settings.database_url)
    leader = await ask_leader(settings.database_url, f"content:{RELOAD_REQUESTED}")
    if leader is None:
        print(
            f"embargo: Embargo is not running on {where} (no process leads there): start it "
            "with `python -m bot`, which loads the content as it starts",
            file=sys.stderr,
        )
        return 1
    print(
        f"asked the leading Embargo process (connected from {leader}) to reload its content "
        "files: its log lists what changed and any problems; the other processes follow"
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
    try:
        window = parse_window(args.window)
    except DurationError as error:
        print(f"embargo: --window: {error}", file=sys.stderr)
        return 1
    now = parse_now(args.now)
    if now is None:
        print(
            f"embargo: --now {shown_argument(args.now)} is not a time: use ISO 8601, like "
            f"{NOW_EXAMPLE}",
            file=sys.stderr,
        )
        return 1
    content_dir = settings.content_dir
    if not content_dir.is_dir():
        print(f"{content_dir}: not a directory (set CONTENT_DIR in .env)", file=sys.stderr)
        return 1
    report, loaded = asyncio.run(dry_run(content_dir))
    catalogue = Catalogue(sorted(loaded.shows.values(), key=lambda show: show.slug))
    # Found and shown as a member would find and see it under these rules.
    spoiler_settings = SpoilerSettings(window=window, mode=SpoilerMode(args.mode))
    titles = TitleRule(spoiler_settings, now)
    episode = catalogue.resolve(args.episode, titles=titles)
    if episode is None:
        suggestions = catalogue.suggest(args.episode, titles=titles)
        names = ", ".join(episode_label(e, titles, Surface.PLAIN) for e in suggestions) or "none"
        print(f"unknown episode {shown_argument(args.episode)}; closest: {names}", file=sys.stderr)
        # Its show may be one whose file did not load: say so rather than leave it a mystery.
        for path, problems in rejected_files(report, lambda rel: rel.startswith("shows/")):
            print(
                f"{display_path(content_dir / path)} has {count_summary(problems)}, so none of "
                f"its episodes can be previewed: run `python -m bot check` for the details",
                file=sys.stderr,
            )
        return 1
    review = loaded.reviews.get(episode.key)
    if review is None:
        rejected = rejected_files(report, lambda rel: is_review_file_of(rel, episode))
        for path, problems in rejected:
            print(
                f"{display_path(content_dir / path)} has {count_summary(problems)}, so "
                f"{episode_label(episode, titles, Surface.PLAIN)} has no review Embargo would "
                "load (a running bot keeps its last good version): run `python -m bot check` "
                "for the details",
                file=sys.stderr,
            )
        if rejected:
            return 1
    if args.kind == "review":
        messages = [review_message(episode, review, titles)]
        if review is not None and review.ending:
            print("[button] Ending explained")
    else:
        decision = decide(
            release_at=episode.release_at,
            now=now,
            settings=spoiler_settings,
            show_slug=episode.show_slug,
        )
        print(f"[policy] {decision.delivery.value}: {decision.reason}")
        messages = ending_messages(episode, review, decision, titles)
    for number, message in enumerate(messages, start=1):
        print(format_message(number, message, now))
    return 0


def parse_now(text: str | None) -> datetime | None:
    """The moment ``--now`` names (UTC unless it has an offset), now if absent, None if bad."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def shown_argument(text: str, limit: int = 60) -> str:
    """An argument quoted back, cut short: a pasted paragraph is not echoed whole."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def rejected_files(
    report: SyncReport, wanted: Callable[[str], bool]
) -> list[tuple[str, list[ContentProblem]]]:
    """The files ``wanted`` picks that have errors, so did not load, with all their problems."""
    by_path: dict[str, list[ContentProblem]] = {}
    for problem in report.problems:
        if wanted(problem.path):
            by_path.setdefault(problem.path, []).append(problem)
    return [
        (path, problems)
        for path, problems in sorted(by_path.items())
        if any(problem.severity == "error" for problem in problems)
    ]


# A review file name as an owner might write it (s7e6.md, S07E06.md): the file is rejected
# for its name, but it is still this episode's review.
_LOOSE_REVIEW_NAME = re.compile(r"s0*(\d{1,6})e0*(\d{1,6})\.md", re.IGNORECASE)


def is_review_file_of(rel: str, episode: Episode) -> bool:
    folder, _, name = rel.rpartition("/")
    if folder != f"{REVIEWS_DIR}/{episode.show_slug}":
        return False
    match = _LOOSE_REVIEW_NAME.fullmatch(name)
    return match is not None and (int(match.group(1)), int(match.group(2))) == (
        episode.season,
        episode.number,
    )


def format_message(number: int, message: OutgoingMessage, now: datetime) -> str:
    """A message for a terminal: its text and embeds, each Discord time tag written out."""
    return readable_times(_message_lines(number, message), now)


def _message_lines(number: int, message: OutgoingMessage) -> str:
    flags = [name for name, on in (("ephemeral", message.ephemeral),) if on]
    if message.suppress_embeds:
        flags.append("no link previews")
    lines = [f"--- message {number} ({', '.join(flags) or 'public'}) ---"]
    if message.content:
        lines.append(message.content)
    for embed in message.embeds:
        lines.append(f"[embed] {embed.get('title', '')}")
        if embed.get("description"):
            lines.append(embed["description"])
        for field in embed.get("fields", []):
            lines.append(f"[field] {field['name']}: {field['value']}")
        if "footer" in embed:
            lines.append(f"[footer] {embed['footer']['text']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
