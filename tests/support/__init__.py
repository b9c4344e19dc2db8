"""Offline test support: drive the bot's real app-command tree through Discord-shaped payloads."""

from .fake_discord import FakeDiscord, RecordedFile, RecordedRequest
from .harness import Harness, HarnessError, Recorded
from .specs import (
    DEFAULT_APP_ID,
    DEFAULT_GUILD_ID,
    EPISODE_TALK,
    GENERAL,
    MEMBER,
    MODERATOR,
    MODERATOR_ROLE,
    OWNER,
    ChannelSpec,
    GuildSpec,
    RoleSpec,
    UserSpec,
)

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_GUILD_ID",
    "EPISODE_TALK",
    "GENERAL",
    "MEMBER",
    "MODERATOR",
    "MODERATOR_ROLE",
    "OWNER",
    "ChannelSpec",
    "FakeDiscord",
    "GuildSpec",
    "Harness",
    "HarnessError",
    "Recorded",
    "RecordedFile",
    "RecordedRequest",
    "RoleSpec",
    "UserSpec",
]
