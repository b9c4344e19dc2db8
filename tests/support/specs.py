"""Who and where an in-process test happens: users, roles, channels and the guild, declared.

The specs are plain frozen values so tests can share module-level constants (``MEMBER``,
``MODERATOR``, ``GENERAL``...). :func:`world_from_spec` turns a guild spec into the stand-in's
:class:`~tests.support.standin.world.World`, the one model of Discord both drivers use, keeping
every id; users and roles a test invents later join it through :func:`ensure_member`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import discord

from bot.invite import INVITE_PERMISSIONS

from .standin.world import Application, Channel, Guild, Member, Overwrite, Role, User, World

# Fixed, realistic-length snowflakes so failures print recognisable ids.
DEFAULT_APP_ID = 1_300_000_000_000_000_001
DEFAULT_GUILD_ID = 1_300_000_000_000_000_100
_JOINED_AT = "2024-01-01T00:00:00+00:00"
BOT_NAME = "Embargo"


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
    """What Embargo's invite link asks for (``bot.invite``), as a new copy to change."""
    return discord.Permissions(INVITE_PERMISSIONS)


@dataclass(frozen=True)
class RoleSpec:
    id: int
    name: str
    permissions: discord.Permissions = field(default_factory=discord.Permissions.none)
    position: int = 1
    managed: bool = False


@dataclass(frozen=True)
class UserSpec:
    """A Discord account; in a guild it becomes a member holding ``roles``."""

    id: int
    name: str
    roles: tuple[RoleSpec, ...] = ()
    global_name: str | None = None
    bot: bool = False


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
    # Where Embargo's own role sits: it can give only the roles below it.
    bot_role_position: int = 1
    locale: str = "en-US"

    def channel(self, channel: ChannelSpec | int) -> ChannelSpec:
        if isinstance(channel, ChannelSpec):
            return channel
        for spec in self.channels:
            if spec.id == channel:
                return spec
        known = ", ".join(f"{c.id} (#{c.name})" for c in self.channels)
        raise LookupError(f"guild {self.id} has no channel {channel}; it has {known}")


def _user(spec: UserSpec) -> User:
    return User(id=spec.id, username=spec.name, global_name=spec.global_name, bot=spec.bot)


def _role(spec: RoleSpec) -> Role:
    return Role(
        id=spec.id,
        name=spec.name,
        permissions=spec.permissions.value,
        position=spec.position,
        managed=spec.managed,
    )


def world_from_spec(guild: GuildSpec, *, app_id: int, bot_role_id: int) -> World:
    """The stand-in's world for ``guild``: its roles, channels and members, the bot a member
    holding its own role with ``guild.bot_permissions``. What @everyone may do beyond that is
    denied to the bot by a member overwrite in each channel, so ``bot_permissions`` is exactly
    what Discord computes for the bot there (``app_permissions``)."""
    bot = User(id=app_id, username=BOT_NAME, bot=True)
    everyone = Role(
        id=guild.id, name="@everyone", permissions=guild.everyone_permissions.value, position=0
    )
    bot_role = Role(
        id=bot_role_id,
        name=BOT_NAME,
        permissions=guild.bot_permissions.value,
        position=guild.bot_role_position,
    )
    denied = guild.everyone_permissions.value & ~guild.bot_permissions.value
    model = Guild(
        id=guild.id,
        name=guild.name,
        owner_id=guild.owner_id,
        roles=[everyone, bot_role, *(_role(r) for r in guild.roles)],
        channels=[
            Channel(
                id=c.id,
                name=c.name,
                guild_id=guild.id,
                type=c.type.value,
                position=c.position,
                parent_id=c.parent_id,
                nsfw=c.nsfw,
                overwrites=[Overwrite(id=app_id, type=1, deny=denied)] if denied else [],
            )
            for c in guild.channels
        ],
        preferred_locale=guild.locale,
    )
    model.members.append(Member(user=bot, roles=[bot_role.id], joined_at=_JOINED_AT))
    users = {spec.name: _user(spec) for spec in guild.members}
    for spec in guild.members:
        roles = [role.id for role in spec.roles]
        model.members.append(Member(user=users[spec.name], roles=roles, joined_at=_JOINED_AT))
    owner = next((u for u in users.values() if u.id == guild.owner_id), None)
    owner = owner or User(id=guild.owner_id, username="owner")
    application = Application(id=app_id, name=BOT_NAME, owner=owner, bot=bot)
    return World(application=application, users=users, guilds=[model])


def ensure_member(world: World, spec: UserSpec) -> tuple[User, list[Role]]:
    """The world's user for ``spec``, made a member of the first guild (with ``spec.roles``) if
    the test invented it; returns it and the roles that were new to the guild."""
    guild = world.guild
    new_roles = []
    for role in spec.roles:
        if not any(r.id == role.id for r in guild.roles):
            new_roles.append(_role(role))
            guild.roles.append(new_roles[-1])
    user = world.user_by_id(spec.id)
    if user is None:
        user = _user(spec)
        name = spec.name if spec.name not in world.users else f"{spec.name}-{spec.id}"
        world.users[name] = user
        guild.members.append(
            Member(user=user, roles=[role.id for role in spec.roles], joined_at=_JOINED_AT)
        )
    return user, new_roles
