"""Who and where an interaction happens: users, roles, channels, the guild, shaped as Discord does.

The specs are plain frozen values so tests can share module-level constants (``MEMBER``,
``MODERATOR``, ``GENERAL``...). The ``*_payload`` functions turn them into the JSON shapes of
Discord's API documentation (user, guild member, role, channel, guild), which is what discord.py
parses; nothing here builds a discord.py object directly.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import discord

# Fixed, realistic-length snowflakes so failures print recognisable ids.
DEFAULT_APP_ID = 1_300_000_000_000_000_001
DEFAULT_GUILD_ID = 1_300_000_000_000_000_100
_JOINED_AT = "2024-01-01T00:00:00+00:00"


def base_member_permissions() -> discord.Permissions:
    """What @everyone can do in a typical community server: talk, read and use commands."""
    return discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        read_message_history=True,
        embed_links=True,
        attach_files=True,
        add_reactions=True,
        use_external_emojis=True,
        use_application_commands=True,
    )


def base_bot_permissions() -> discord.Permissions:
    """What Embargo's invite link asks for: everything it needs to post spoiler-safe replies."""
    return discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        read_message_history=True,
        embed_links=True,
        attach_files=True,
        add_reactions=True,
        use_external_emojis=True,
    )


@dataclass(frozen=True)
class RoleSpec:
    id: int
    name: str
    permissions: discord.Permissions = field(default_factory=discord.Permissions.none)
    position: int = 1


@dataclass(frozen=True)
class UserSpec:
    """A Discord account; in a guild it becomes a member holding ``roles``."""

    id: int
    name: str
    roles: tuple[RoleSpec, ...] = ()
    global_name: str | None = None
    bot: bool = False

    def permissions_in(self, guild: GuildSpec) -> discord.Permissions:
        """Guild-level permissions the way Discord computes them (channel overwrites aside)."""
        if self.id == guild.owner_id:
            return discord.Permissions.all()
        value = guild.everyone_permissions.value
        for role in self.roles:
            value |= role.permissions.value
        perms = discord.Permissions(value)
        return discord.Permissions.all() if perms.administrator else perms


@dataclass(frozen=True)
class ChannelSpec:
    id: int
    name: str
    type: discord.ChannelType = discord.ChannelType.text
    parent_id: int | None = None
    nsfw: bool = False
    position: int = 0


GENERAL = ChannelSpec(id=1_300_000_000_000_000_201, name="general")
EPISODE_TALK = ChannelSpec(id=1_300_000_000_000_000_202, name="episode-talk", position=1)
MODERATOR_ROLE = RoleSpec(
    id=1_300_000_000_000_000_301,
    name="Moderator",
    permissions=discord.Permissions(manage_guild=True, manage_messages=True),
)
MEMBER = UserSpec(id=1_300_000_000_000_000_401, name="member")
MODERATOR = UserSpec(id=1_300_000_000_000_000_402, name="moderator", roles=(MODERATOR_ROLE,))
OWNER = UserSpec(id=1_300_000_000_000_000_403, name="owner")


@dataclass(frozen=True)
class GuildSpec:
    id: int = DEFAULT_GUILD_ID
    name: str = "Embargo Test Server"
    owner_id: int = OWNER.id
    channels: tuple[ChannelSpec, ...] = (GENERAL, EPISODE_TALK)
    roles: tuple[RoleSpec, ...] = (MODERATOR_ROLE,)
    members: tuple[UserSpec, ...] = (MEMBER, MODERATOR, OWNER)
    everyone_permissions: discord.Permissions = field(default_factory=base_member_permissions)
    bot_permissions: discord.Permissions = field(default_factory=base_bot_permissions)
    locale: str = "en-US"

    def channel(self, channel: ChannelSpec | int) -> ChannelSpec:
        if isinstance(channel, ChannelSpec):
            return channel
        for spec in self.channels:
            if spec.id == channel:
                return spec
        known = ", ".join(f"{c.id} (#{c.name})" for c in self.channels)
        raise LookupError(f"guild {self.id} has no channel {channel}; it has {known}")


class Snowflakes:
    """Unique ids whose embedded timestamps read as 'now', like fresh Discord objects."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> int:
        # The low 22 bits are worker/process/increment; a counter there keeps ids unique and
        # increasing even when two are made within the same millisecond.
        return discord.utils.time_snowflake(discord.utils.utcnow()) + next(self._counter) % (
            1 << 22
        )


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def user_payload(user: UserSpec) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.name,
        "discriminator": "0",
        "global_name": user.global_name,
        "avatar": None,
        "bot": user.bot,
        "public_flags": 0,
    }


def member_payload(user: UserSpec, guild: GuildSpec, *, with_user: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "nick": None,
        "avatar": None,
        "roles": [str(role.id) for role in user.roles],
        "joined_at": _JOINED_AT,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
        # Discord includes the member's permissions in the invoking channel on interactions.
        "permissions": str(user.permissions_in(guild).value),
    }
    if with_user:
        data["user"] = user_payload(user)
    return data


def role_payload(role: RoleSpec) -> dict[str, Any]:
    return {
        "id": str(role.id),
        "name": role.name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": role.position,
        "permissions": str(role.permissions.value),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def everyone_role_payload(guild: GuildSpec) -> dict[str, Any]:
    return role_payload(
        RoleSpec(id=guild.id, name="@everyone", permissions=guild.everyone_permissions, position=0)
    )


def channel_payload(
    channel: ChannelSpec, guild: GuildSpec, *, permissions: discord.Permissions | None = None
) -> dict[str, Any]:
    """A guild channel; ``permissions`` is added where Discord adds it (interactions, resolved)."""
    data: dict[str, Any] = {
        "id": str(channel.id),
        "type": channel.type.value,
        "guild_id": str(guild.id),
        "name": channel.name,
        "position": channel.position,
        "permission_overwrites": [],
        "nsfw": channel.nsfw,
        "parent_id": str(channel.parent_id) if channel.parent_id else None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }
    if permissions is not None:
        data["permissions"] = str(permissions.value)
    return data


def dm_channel_payload(channel_id: int, recipient: UserSpec) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": discord.ChannelType.private.value,
        "last_message_id": None,
        "recipients": [user_payload(recipient)],
        "flags": 0,
    }


def guild_create_payload(
    guild: GuildSpec, bot_user: UserSpec, bot_role: RoleSpec
) -> dict[str, Any]:
    """The GUILD_CREATE a bot receives for a guild it is in, with every member already listed.

    Listing all members and setting ``member_count`` to match makes the guild count as chunked,
    so a bot with the members intent does not try to request chunks over a gateway it lacks.
    """
    bot_member = UserSpec(id=bot_user.id, name=bot_user.name, roles=(bot_role,), bot=True)
    members = [member_payload(bot_member, guild)]
    members += [member_payload(user, guild) for user in guild.members if user.id != bot_user.id]
    for member in members:
        del member["permissions"]  # only interaction payloads carry it
    roles = [everyone_role_payload(guild), role_payload(bot_role)]
    roles += [role_payload(role) for role in guild.roles]
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(guild.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": guild.locale,
        "features": [],
        "roles": roles,
        "emojis": [],
        "stickers": [],
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "vanity_url_code": None,
        "application_id": None,
        "joined_at": _JOINED_AT,
        "large": False,
        "unavailable": False,
        "member_count": len(members),
        "members": members,
        "channels": [channel_payload(channel, guild) for channel in guild.channels],
        "threads": [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }
