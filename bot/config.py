"""Settings from the environment and ``.env``, validated once at start into one frozen object."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from dotenv import load_dotenv

# Paths are built from this file, never from the working directory.
PROJECT_DIR = Path(__file__).resolve().parent.parent

DEFAULT_DATABASE_URL = "sqlite:///data/embargo.db"
DEFAULT_CONTENT_DIR = "data"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The longest SOURCE_URL accepted: /about shows it whole.
SOURCE_URL_MAX_LENGTH = 200


class ConfigError(Exception):
    """A setting is missing or malformed; the message says what to put in ``.env``."""


@dataclass(frozen=True, slots=True)
class Settings:
    # repr=False keeps the token out of every repr, log line and traceback that prints Settings.
    discord_token: str | None = field(repr=False)
    database_url: str
    content_dir: Path
    log_level: str
    dev_guild_id: int | None
    # Where /about sends people for the source code; None: not published.
    source_url: str | None = None

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

    return Settings(
        discord_token=token,
        database_url=env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
        content_dir=content_dir,
        log_level=log_level,
        dev_guild_id=dev_guild_id,
        source_url=source_url,
    )


def embargo_version() -> str:
    """The installed package's version (pyproject.toml), as /help and /about show it."""
    try:
        return metadata.version("embargo")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-8s %(name)s: %(message)s",
    )
