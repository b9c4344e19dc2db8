"""Test support: the one Discord stand-in (``standin``) and its in-process driver (``Harness``)."""

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
from .standin import DiscordStandIn, RecordedRequest
from .standin.rest import UploadedFile

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
    "DiscordStandIn",
    "GuildSpec",
    "Harness",
    "HarnessError",
    "Recorded",
    "RecordedRequest",
    "RoleSpec",
    "UploadedFile",
    "UserSpec",
]
