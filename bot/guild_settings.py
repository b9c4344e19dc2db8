"""Per-server settings and their defaults, declared in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.spoilers.policy import SpoilerSettings

DEFAULT_MIN_VOTES = 5
DEFAULT_MIN_MEMBER_DAYS = 0
MAX_MIN_VOTES = 1000
MAX_MIN_MEMBER_DAYS = 3650


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """Everything a server's moderators can set. A server that never changed anything (and every
    DM) gets exactly these defaults."""

    spoilers: SpoilerSettings = field(default_factory=SpoilerSettings)
    min_votes: int = DEFAULT_MIN_VOTES
    min_member_days: int = DEFAULT_MIN_MEMBER_DAYS


DEFAULT_GUILD_SETTINGS = GuildSettings()
