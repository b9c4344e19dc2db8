"""Settings from the environment and ``.env``, validated once at start into one frozen object."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from dotenv import load_dotenv

# Paths are built from this file, never from the working directory.
PROJECT_DIR = Path(__file__).resolve().parent.parent

DEFAULT_DATABASE_URL = "sqlite:///data/embargo.db"
DEFAULT_CONTENT_DIR = "data"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# DATABASE_POOL_SIZE's bounds: PostgreSQL connections per process (each is a server process).
MIN_DATABASE_POOL_SIZE = 1
MAX_DATABASE_POOL_SIZE = 100
# The longest SOURCE_URL accepted: /about shows it whole.
SOURCE_URL_MAX_LENGTH = 200
# LOG_FILE rotation: the file is renamed to .1 (older ones shift up to .5) when it would pass
# the size, so the logs never take more than six times that on disk.
LOG_FILE_MAX_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5
LOG_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
# discord.py lines Embargo drops: voice warnings at every start (Embargo never joins a voice
# channel), and a line per login attempt that bot.connect's own line replaces.
_DROPPED_DISCORD_LINES = (
    "PyNaCl is not installed",
    "davey is not installed",
    "logging in using static token",
)


# The most shards SHARD_COUNT may name: far above what any bot runs, it bounds what a typo can
# make a process allocate.
MAX_SHARD_COUNT = 100_000
# The longest SHARD_IDS accepted; longer ones are refused without being read.
SHARD_IDS_MAX_LENGTH = 500
# How much of a malformed shard setting an error message quotes.
_QUOTED_MAX_CHARS = 40
_SHARD_NUMBER = re.compile(r"[0-9]{1,6}")
_SHARD_ITEM = re.compile(r"([0-9]{1,6})(?:-([0-9]{1,6}))?")


class ConfigError(Exception):
    """A setting is missing or malformed; the message says what to put in ``.env``."""


@dataclass(frozen=True, slots=True)
class Settings:
    # repr=False keeps the token out of every repr, log line and traceback that prints Settings.
    discord_token: str | None = field(repr=False)
    # A PostgreSQL URL may carry a password: kept out of repr too.
    database_url: str = field(repr=False)
    content_dir: Path
    log_level: str
    dev_guild_id: int | None
    # Where /about sends people for the source code; None: not published.
    source_url: str | None = None
    log_file: Path | None = None
    # MESSAGE_GUARD=on: ask Discord for the Message Content intent, for the spoiler guard.
    message_guard: bool = False
    # SHARD_COUNT: the shards of the whole bot, over every process; None: Discord's
    # recommendation, all run in this process.
    shard_count: int | None = None
    # SHARD_IDS: the shards this process runs, in order; None: all of shard_count.
    shard_ids: tuple[int, ...] | None = None
    # PostgreSQL connections this process keeps for its queries; None: the backend's default.
    database_pool_size: int | None = None

    def require_token(self) -> str:
        if not self.discord_token:
            raise ConfigError(
                "DISCORD_TOKEN is not set: copy .env.example to .env and put your bot token "
                "after DISCORD_TOKEN= (Discord developer portal -> your application -> Bot -> "
                "Reset Token)."
            )
        return self.discord_token


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Read settings; ``.env`` in the project directory fills only variables not already set."""
    if dotenv and environ is None:
        load_dotenv(PROJECT_DIR / ".env", override=False)
    env = os.environ if environ is None else environ

    token = env.get("DISCORD_TOKEN", "").strip() or None
    if token is not None and any(ch.isspace() for ch in token):
        raise ConfigError("DISCORD_TOKEN contains spaces: paste the token alone, without quotes")

    content_dir = Path(env.get("CONTENT_DIR", "").strip() or DEFAULT_CONTENT_DIR)
    if not content_dir.is_absolute():
        content_dir = PROJECT_DIR / content_dir

    log_level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={log_level!r} is not one of {', '.join(_LOG_LEVELS)}")

    raw_guild = env.get("DEV_GUILD_ID", "").strip()
    dev_guild_id: int | None = None
    if raw_guild:
        if not raw_guild.isdigit():
            raise ConfigError(
                f"DEV_GUILD_ID={raw_guild!r} is not a server id: right-click the server in "
                "Discord (Developer Mode on) -> Copy Server ID, or leave it empty"
            )
        dev_guild_id = int(raw_guild)

    source_url = env.get("SOURCE_URL", "").strip() or None
    if source_url is not None and (
        not source_url.startswith(("https://", "http://"))
        or len(source_url) > SOURCE_URL_MAX_LENGTH
        or any(ch.isspace() or ch in "<>" for ch in source_url)
    ):
        raise ConfigError(
            f"SOURCE_URL must be one http(s) link of at most {SOURCE_URL_MAX_LENGTH} characters, "
            "e.g. https://github.com/you/embargo, or empty"
        )

    raw_log_file = env.get("LOG_FILE", "").strip()
    log_file = Path(raw_log_file) if raw_log_file else None
    if log_file is not None and not log_file.is_absolute():
        log_file = PROJECT_DIR / log_file
    raw_guard = env.get("MESSAGE_GUARD", "").strip().lower() or "off"
    if raw_guard not in ("on", "off"):
        raise ConfigError(
            f"MESSAGE_GUARD={raw_guard!r} must be on or off (on needs the Message Content "
            "intent ticked in the developer portal)"
        )

    shard_count = parse_shard_count(env.get("SHARD_COUNT", ""))
    shard_ids = parse_shard_ids(env.get("SHARD_IDS", ""), shard_count)

    raw_pool_size = env.get("DATABASE_POOL_SIZE", "").strip()
    database_pool_size: int | None = None
    if raw_pool_size:
        if not (
            raw_pool_size.isdigit()
            and MIN_DATABASE_POOL_SIZE <= int(raw_pool_size) <= MAX_DATABASE_POOL_SIZE
        ):
            raise ConfigError(
                f"DATABASE_POOL_SIZE={raw_pool_size[:20]!r} must be a whole number of connections "
                f"from {MIN_DATABASE_POOL_SIZE} to {MAX_DATABASE_POOL_SIZE} (PostgreSQL only), "
                "or empty for the default"
            )
        database_pool_size = int(raw_pool_size)

    return Settings(
        discord_token=token,
        database_url=env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
        content_dir=content_dir,
        log_level=log_level,
        dev_guild_id=dev_guild_id,
        source_url=source_url,
        log_file=log_file,
        message_guard=raw_guard == "on",
        shard_count=shard_count,
        shard_ids=shard_ids,
        database_pool_size=database_pool_size,
    )


def _quoted(text: str) -> str:
    """``text`` for an error message: quoted, and cut short when long."""
    if len(text) <= _QUOTED_MAX_CHARS:
        return repr(text)
    return repr(text[:_QUOTED_MAX_CHARS]) + f" (cut, {len(text)} characters)"


def parse_shard_count(raw: str) -> int | None:
    """SHARD_COUNT: how many shards the whole bot runs, over all its processes (None: unset)."""
    text = raw.strip()
    if not text:
        return None
    if not _SHARD_NUMBER.fullmatch(text) or not 1 <= int(text) <= MAX_SHARD_COUNT:
        raise ConfigError(
            f"SHARD_COUNT={_quoted(text)} must be a whole number from 1 to {MAX_SHARD_COUNT}: "
            "the shards of the whole bot, over every process (or empty: Discord's "
            "recommendation, all in this process)"
        )
    return int(text)


def parse_shard_ids(raw: str, shard_count: int | None) -> tuple[int, ...] | None:
    """SHARD_IDS: the shards this process runs, as ids and ranges (``0-3``, ``4,5``,
    ``0-1,3``), each below ``shard_count`` and named once; sorted. None: unset."""
    text = raw.strip()
    if not text:
        return None
    if shard_count is None:
        raise ConfigError(
            "SHARD_IDS needs SHARD_COUNT: set SHARD_COUNT to the shards of the whole bot, "
            "over every process (e.g. SHARD_COUNT=4 with SHARD_IDS=0-1 here and 2-3 elsewhere)"
        )
    last = shard_count - 1
    examples = "0" if last == 0 else f"0-{last}" + (", 0,1 or 0-1,3" if last >= 3 else "")
    usage = (
        f"list shard ids from 0 to {last} and ranges, comma-separated, each once: e.g. {examples}"
    )
    if len(text) > SHARD_IDS_MAX_LENGTH:
        raise ConfigError(
            f"SHARD_IDS is {len(text)} characters long (at most {SHARD_IDS_MAX_LENGTH}): {usage}"
        )
    found: set[int] = set()
    for item in text.split(","):
        match = _SHARD_ITEM.fullmatch(item.strip())
        if match is None:
            raise ConfigError(
                f"SHARD_IDS={_quoted(text)}: {_quoted(item.strip())} is not a "
                f"shard id or range: {usage}"
            )
        first = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else first
        if first > end:
            raise ConfigError(
                f"SHARD_IDS={_quoted(text)}: the range {first}-{end} runs backwards: {usage}"
            )
        if end > last:
            raise ConfigError(
                f"SHARD_IDS={_quoted(text)}: shard {end} does not exist with "
                f"SHARD_COUNT={shard_count} (ids start at 0): {usage}"
            )
        ids = range(first, end + 1)
        twice = found.intersection(ids)
        if twice:
            raise ConfigError(
                f"SHARD_IDS={_quoted(text)} names shard {min(twice)} more than once: {usage}"
            )
        found.update(ids)
    return tuple(sorted(found))


def embargo_version() -> str:
    """The installed package's version (pyproject.toml), as /help and /about show it."""
    try:
        return metadata.version("embargo")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


class RedactingFormatter(logging.Formatter):
    """Formats records with every secret replaced, in the message and in any traceback."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(LOG_FORMAT)
        self.secrets = tuple(secret for secret in secrets if secret)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


def _not_dropped(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str) and record.msg.startswith(_DROPPED_DISCORD_LINES))


def configure_logging(
    level: str, *, log_file: Path | None = None, secrets: Iterable[str] = ()
) -> None:
    """Log to stderr and, with ``log_file``, to a rotating file as well.

    ``secrets`` (the token) are replaced wherever they would appear in a log line. Raises
    :class:`ConfigError` when the log file can't be opened.
    """
    formatter = RedactingFormatter(secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    log_file,
                    maxBytes=LOG_FILE_MAX_BYTES,
                    backupCount=LOG_FILE_BACKUPS,
                    encoding="utf-8",
                )
            )
        except OSError as error:
            raise ConfigError(
                f"LOG_FILE={str(log_file)!r} can't be written ({error.strerror or error}): "
                "point it at a writable file or leave it empty"
            ) from None
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    # Replace only what an earlier call installed: other handlers (a test runner's) stay.
    for old in [h for h in root.handlers if isinstance(h.formatter, RedactingFormatter)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
    discord_client = logging.getLogger("discord.client")
    if _not_dropped not in discord_client.filters:
        discord_client.addFilter(_not_dropped)
