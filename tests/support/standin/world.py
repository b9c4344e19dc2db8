"""The simulated Discord world: users, one or more guilds with roles, channels and members.

Everything here produces payloads shaped like the ones Discord sends (snowflakes as strings,
permissions as decimal strings), so the bot under test parses them with discord.py's real code.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DISCORD_EPOCH_MS = 1420070400000

# Permission bits used by the world (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
# Every bit Discord defines today fits in 53 bits; an administrator gets all of them.
ALL_PERMISSIONS = (1 << 53) - 1

# What @everyone gets in a freshly created server, give or take voice bits the bot never needs.
EVERYONE_DEFAULT = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)

TEXT_CHANNEL = 0
DM_CHANNEL = 1
CATEGORY_CHANNEL = 4
ANNOUNCEMENT_CHANNEL = 5
PUBLIC_THREAD = 11
FORUM_CHANNEL = 15
# Text-like channels: they carry a topic, slow mode and a last message.
_TEXT_LIKE = (TEXT_CHANNEL, ANNOUNCEMENT_CHANNEL, FORUM_CHANNEL)


class SnowflakeFactory:
    """Real-looking snowflakes: time-based, strictly increasing, safe across threads."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._last = 0

    def __call__(self) -> int:
        with self._lock:
            now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            value = (now_ms << 22) | (1 << 17) | (next(self._counter) & 0xFFF)
            # The 12-bit increment wraps; never hand out an id twice or out of order.
            value = max(value, self._last + 1)
            self._last = value
            return value


snowflake = SnowflakeFactory()


def snowflake_on_shard(shard_id: int, shard_count: int) -> int:
    """A fresh snowflake for a server on shard ``shard_id`` of ``shard_count`` (Discord's rule:
    ``(guild_id >> 22) % shard_count``): its timestamp moved back by less than
    ``shard_count`` milliseconds, its low bits (and so its uniqueness) kept."""
    value = snowflake()
    stamp = value >> 22
    stamp -= (stamp - shard_id) % shard_count
    return (stamp << 22) | (value & 0x3FFFFF)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    discriminator: str = "0"
    avatar: str | None = None  # the avatar's hash

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": self.discriminator,
            "avatar": self.avatar,
            "avatar_decoration_data": None,
            "banner": None,
            "accent_color": None,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": None,
            "clan": None,
            "collectibles": None,
        }
        if self.bot:
            payload["bot"] = True
        return payload


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False  # a bot's or an integration's role: only Discord assigns it

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "description": None,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {
                "primary_color": self.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": self.hoist,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class Overwrite:
    """A channel permission overwrite for a role (type 0) or a member (type 1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }


@dataclass
class Channel:
    id: int
    name: str
    guild_id: int | None
    type: int = TEXT_CHANNEL
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    nsfw: bool = False
    overwrites: list[Overwrite] = field(default_factory=list)
    recipients: list[User] = field(default_factory=list)
    last_message_id: int | None = None
    owner_id: int | None = None  # threads: who started it
    auto_archive_duration: int = 1440  # threads: minutes of inactivity before archiving

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    @property
    def is_thread(self) -> bool:
        return self.type in (10, PUBLIC_THREAD, 12)  # announcement, public, private threads

    def to_payload(self) -> dict[str, Any]:
        if self.type == DM_CHANNEL:
            return {
                "id": str(self.id),
                "type": DM_CHANNEL,
                "last_message_id": str(self.last_message_id) if self.last_message_id else None,
                "flags": 0,
                "recipients": [user.to_payload() for user in self.recipients],
            }
        payload: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": [ow.to_payload() for ow in self.overwrites],
            "flags": 0,
        }
        if self.type in _TEXT_LIKE:
            payload.update(
                topic=self.topic,
                nsfw=self.nsfw,
                rate_limit_per_user=0,
                last_message_id=str(self.last_message_id) if self.last_message_id else None,
                last_pin_timestamp=None,
                icon_emoji=None,
                theme_color=None,
            )
        if self.type == FORUM_CHANNEL:
            payload.update(
                available_tags=[],
                default_reaction_emoji=None,
                default_thread_rate_limit_per_user=0,
                default_sort_order=None,
                default_forum_layout=0,
                default_auto_archive_duration=1440,
            )
        elif self.is_thread:
            # A thread has no overwrites of its own: Discord applies its parent's.
            del payload["permission_overwrites"], payload["position"]
            payload.update(
                owner_id=str(self.owner_id),
                last_message_id=str(self.last_message_id) if self.last_message_id else None,
                rate_limit_per_user=0,
                message_count=0,
                member_count=1,
                total_message_sent=0,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": self.auto_archive_duration,
                    "archive_timestamp": iso_now(),
                    "locked": False,
                    "create_timestamp": iso_now(),
                },
            )
        return payload


@dataclass
class Member:
    user: User
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)

    def to_payload(self) -> dict[str, Any]:
        return {
            "user": self.user.to_payload(),
            "roles": [str(role_id) for role_id in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "unusual_dm_activity_until": None,
        }


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: list[Role] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    preferred_locale: str = "en-US"

    @property
    def everyone(self) -> Role:
        # In Discord the @everyone role's id is the guild's id.
        return next(role for role in self.roles if role.id == self.id)

    def member(self, user_id: int) -> Member | None:
        return next((m for m in self.members if m.user.id == user_id), None)

    def role(self, name_or_id: str | int) -> Role:
        for role in self.roles:
            if name_or_id in (role.id, role.name):
                return role
        raise KeyError(f"no role {name_or_id!r} in guild {self.name!r}")

    def channel(self, name_or_id: str | int) -> Channel:
        for channel in self.channels:
            if name_or_id in (channel.id, channel.name):
                return channel
        raise KeyError(f"no channel {name_or_id!r} in guild {self.name!r}")

    def base_permissions(self, user_id: int) -> int:
        """Guild-level permissions, as Discord computes them before channel overwrites."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.member(user_id)
        if member is None:
            return 0
        perms = self.everyone.permissions
        for role in self.roles:
            if role.id in member.roles:
                perms |= role.permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def top_role(self, user_id: int) -> Role:
        """The member's highest role (position, then the older id), as Discord ranks them."""
        member = self.member(user_id)
        held = [r for r in self.roles if member is not None and r.id in member.roles]
        return max([self.everyone, *held], key=lambda role: (role.position, -role.id))

    def permissions_in(self, user_id: int, channel: Channel) -> int:
        """Discord's documented algorithm: base, then @everyone, role and member overwrites
        (a thread's are its parent channel's)."""
        if channel.is_thread and channel.parent_id is not None:
            channel = self.channel(channel.parent_id)
        perms = self.base_permissions(user_id)
        if perms & ADMINISTRATOR or perms == ALL_PERMISSIONS:
            return perms
        member = self.member(user_id)
        role_ids = set(member.roles) if member else set()
        overwrites = {(ow.type, ow.id): ow for ow in channel.overwrites}
        everyone = overwrites.get((0, self.id))
        if everyone:
            perms = (perms & ~everyone.deny) | everyone.allow
        allow = deny = 0
        for ow in channel.overwrites:
            if ow.type == 0 and ow.id in role_ids:
                allow |= ow.allow
                deny |= ow.deny
        perms = (perms & ~deny) | allow
        member_ow = overwrites.get((1, user_id))
        if member_ow:
            perms = (perms & ~member_ow.deny) | member_ow.allow
        return perms

    def to_gateway_payload(self, *, bot_id: int, members_intent: bool) -> dict[str, Any]:
        """The GUILD_CREATE payload: the REST guild plus the gateway-only state.

        With the members intent every member is listed (``member_count`` matching, so the
        guild counts as chunked); without it Discord sends only the bot's own member."""
        payload = self.to_rest_payload()
        members = [m for m in self.members if members_intent or m.user.id == bot_id]
        payload.update(
            joined_at=iso_now(),
            large=False,
            unavailable=False,
            member_count=len(self.members),
            members=[member.to_payload() for member in members],
            channels=[self._channel_in_guild_create(c) for c in self.channels if not c.is_thread],
            # Active threads come in their own list, each with its guild_id.
            threads=[c.to_payload() for c in self.channels if c.is_thread],
            voice_states=[],
            presences=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
            embedded_activities=[],
            activity_instances=[],
            lazy=True,
            application_command_counts={},
        )
        return payload

    @staticmethod
    def _channel_in_guild_create(channel: Channel) -> dict[str, Any]:
        # GUILD_CREATE omits guild_id on its channels; discord.py fills it in.
        payload = channel.to_payload()
        payload.pop("guild_id", None)
        return payload

    def to_rest_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [role.to_payload() for role in self.roles],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": self.preferred_locale,
            "nsfw_level": 0,
            "nsfw": False,
            "hub_type": None,
            "incidents_data": None,
            "latest_onboarding_question_id": None,
            "inventory_settings": None,
            "home_header": None,
        }


@dataclass
class Application:
    id: int
    name: str
    owner: User
    bot: User
    # GATEWAY_MESSAGE_CONTENT_LIMITED etc. are off: a small unverified bot.
    flags: int = 0
    # Privileged intents switched on in the developer portal (bits of the IDENTIFY intents).
    privileged_intents: int = 0

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "is_monetized": False,
            "is_verified": False,
            "is_discoverable": False,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self.flags,
            "owner": self.owner.to_payload(),
            "team": None,
            "bot": self.bot.to_payload(),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "rpc_origins": [],
            "tags": [],
            "integration_types_config": {"0": {}, "1": {}},
            "approximate_guild_count": 1,
            "approximate_user_install_count": 0,
        }


@dataclass
class World:
    """Users and guilds the stand-in knows. Build one with :func:`default_world`."""

    application: Application
    users: dict[str, User]
    guilds: list[Guild]
    dm_channels: dict[int, Channel] = field(default_factory=dict)
    # Where each channel was last found: guilds and their channel lists are plain lists that
    # tests change freely, so a hit is checked against them, not trusted.
    _found: dict[int, tuple[Guild, Channel]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def bot_user(self) -> User:
        return self.application.bot

    @property
    def guild(self) -> Guild:
        """The first guild: most scenarios need exactly one."""
        return self.guilds[0]

    def user(self, name_or_user: str | User) -> User:
        if isinstance(name_or_user, User):
            return name_or_user
        try:
            return self.users[name_or_user]
        except KeyError:
            raise KeyError(f"no user {name_or_user!r}; known: {sorted(self.users)}") from None

    def user_by_id(self, user_id: int) -> User | None:
        return next((u for u in self.users.values() if u.id == user_id), None)

    def find_guild(self, guild_id: int) -> Guild | None:
        return next((g for g in self.guilds if g.id == guild_id), None)

    def find_channel(self, channel_id: int) -> Channel | None:
        found = self._found.get(channel_id)
        if found is not None:
            guild, channel = found
            if (
                channel.id == channel_id
                and any(c is channel for c in guild.channels)
                and any(g is guild for g in self.guilds)
            ):
                return channel
        for guild in self.guilds:
            for channel in guild.channels:
                if channel.id == channel_id:
                    self._found[channel_id] = (guild, channel)
                    return channel
        return self.dm_channels.get(channel_id)

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between the bot and ``user``, created on first use like Discord does."""
        for channel in self.dm_channels.values():
            if channel.recipients and channel.recipients[0].id == user.id:
                return channel
        channel = Channel(
            id=snowflake(), name="", guild_id=None, type=DM_CHANNEL, recipients=[user]
        )
        self.dm_channels[channel.id] = channel
        return channel

    def add_thread(self, name: str, *, parent: str = "general", owner: str = "alice") -> Channel:
        """Start a public thread in ``parent`` (of the first guild), as ``owner`` would.

        Call it before the bot connects for the thread to be in GUILD_CREATE; later, the bot
        learns of it from each interaction's channel payload, as with a thread it never cached.
        """
        guild = self.guild
        thread = Channel(
            id=snowflake(),
            name=name,
            guild_id=guild.id,
            type=PUBLIC_THREAD,
            parent_id=guild.channel(parent).id,
            owner_id=self.user(owner).id,
        )
        guild.channels.append(thread)
        return thread

    def add_guild(self, name: str, *, shard: tuple[int, int] | None = None) -> Guild:
        """Add a server shaped like the first one (same roles and channels), owned by the same
        owner, whose other members are the first server's, with the same role names. With
        ``shard=(shard_id, shard_count)`` its id puts it on that shard."""
        first = self.guild
        guild_id = snowflake() if shard is None else snowflake_on_shard(*shard)
        owner = self.user_by_id(first.owner_id)
        if owner is None:
            raise KeyError("the first server's owner is not a known user")
        guild = _test_server(guild_id, name, owner=owner, bot=self.bot_user)
        present = {member.user.id for member in guild.members}
        for member in first.members:
            if member.user.id in present:
                continue
            names = [role.name for role in first.roles if role.id in member.roles]
            guild.members.append(
                Member(
                    user=member.user,
                    roles=[guild.role(role_name).id for role_name in names],
                    joined_at=member.joined_at,
                )
            )
        self.guilds.append(guild)
        return guild

    def add_user(
        self,
        name: str,
        *,
        guild: Guild | None = None,
        roles: tuple[str, ...] = (),
        joined_days_ago: float = 365.0,
    ) -> User:
        """Create a user and make them a member of ``guild`` (the first guild by default)
        who joined ``joined_days_ago`` days ago (member age gates read ``joined_at``)."""
        user = User(id=snowflake(), username=name, global_name=name.capitalize())
        self.users[name] = user
        target = guild or self.guild
        joined = datetime.now(UTC) - timedelta(days=joined_days_ago)
        target.members.append(
            Member(
                user=user,
                roles=[target.role(r).id for r in roles],
                joined_at=joined.isoformat(),
            )
        )
        return user


def default_world() -> World:
    """One server, "Embargo Test Server", owned by ``owner``, with these members:

    - ``alice``, ``bob``: ordinary members (default @everyone permissions) for a year;
    - ``newbie``: an ordinary member who joined a quarter of an hour ago;
    - ``mod``: holds the "Moderator" role (Manage Server, Manage Messages);
    - ``admin``: holds the "Admin" role (Administrator);
    - ``owner``: the server owner (every permission);
    - the bot, with its managed-style "Embargo" role.

    Channels: ``general`` and ``spoilers`` (text), ``announcements`` (text, read-only for
    @everyone), ``hidden`` (text, the bot cannot see it).
    """
    bot = User(id=snowflake(), username="Embargo", global_name=None, bot=True, discriminator="4242")
    owner = User(id=snowflake(), username="owner", global_name="Owner")
    application = Application(id=bot.id, name="Embargo", owner=owner, bot=bot)

    guild = _test_server(snowflake(), "Embargo Test Server", owner=owner, bot=bot)
    users = {"owner": owner}
    world = World(application=application, users=users, guilds=[guild])
    world.add_user("alice")
    world.add_user("bob")
    world.add_user("newbie", joined_days_ago=0.01)
    world.add_user("mod", roles=("Moderator",))
    world.add_user("admin", roles=("Admin",))
    return world


def _test_server(guild_id: int, name: str, *, owner: User, bot: User) -> Guild:
    """A server shaped like :func:`default_world`'s, with its owner and the bot as members."""
    everyone = Role(id=guild_id, name="@everyone", permissions=EVERYONE_DEFAULT, position=0)
    moderator = Role(
        id=snowflake(), name="Moderator", permissions=MANAGE_GUILD | MANAGE_MESSAGES, position=2
    )
    admin_role = Role(id=snowflake(), name="Admin", permissions=ADMINISTRATOR, position=3)
    bot_role = Role(id=snowflake(), name="Embargo", permissions=EVERYONE_DEFAULT, position=1)
    guild = Guild(
        id=guild_id,
        name=name,
        owner_id=owner.id,
        roles=[everyone, bot_role, moderator, admin_role],
    )
    category = Channel(
        id=snowflake(), name="Text Channels", guild_id=guild_id, type=CATEGORY_CHANNEL
    )
    guild.channels = [
        category,
        Channel(id=snowflake(), name="general", guild_id=guild_id, parent_id=category.id),
        Channel(
            id=snowflake(), name="spoilers", guild_id=guild_id, parent_id=category.id, position=1
        ),
        Channel(
            id=snowflake(),
            name="announcements",
            guild_id=guild_id,
            parent_id=category.id,
            position=2,
            overwrites=[Overwrite(id=guild_id, type=0, deny=SEND_MESSAGES)],
        ),
        Channel(
            id=snowflake(),
            name="hidden",
            guild_id=guild_id,
            parent_id=category.id,
            position=3,
            overwrites=[Overwrite(id=bot.id, type=1, deny=VIEW_CHANNEL)],
        ),
    ]
    founded = (datetime.now(UTC) - timedelta(days=730)).isoformat()
    guild.members.append(Member(user=owner, joined_at=founded))
    guild.members.append(Member(user=bot, roles=[bot_role.id], joined_at=founded))
    return guild
