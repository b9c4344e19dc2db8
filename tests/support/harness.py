"""Run a bot's slash commands, autocompletes, buttons and modals in the test's own process.

``Harness`` logs a real ``commands.Bot``/``discord.Client`` in against the project's one Discord
stand-in (``tests/support/standin``) on a loopback port, so ``login()`` and ``setup_hook`` run
unmodified, then feeds the gateway events the stand-in builds (``GUILD_CREATE``,
``INTERACTION_CREATE``, from the commands the bot registered) to the bot's own gateway parser.
From there everything is discord.py's: building the ``Interaction``, resolving options, running
checks, dispatching to views and modals, and packing the HTTP responses, which the stand-in
records and answers as it does for the real ``python -m bot`` process in tests/e2e::

    async with Harness(make_bot()) as h:
        reply = await h.slash("review", episode="severance/s01e03", as_user=MEMBER)
        assert reply.ephemeral and "Severance" in reply.content
        clicked = await h.click("reveal", message=reply.message, as_user=MODERATOR)
        choices = await h.autocomplete("review", "episode", "sev")
        posted = await h.member_says("Daly survives", as_user=MEMBER)   # MESSAGE_CREATE
        hidden = await h.message_command("Hide as spoiler", message=posted, as_user=MODERATOR)

Gateway events the stand-in emits (``DiscordApi.emit``: a member's message or edit, a message
deleted or posted through a webhook) go to the same parsers, and the harness waits for the
handlers they start (``settle``) before returning.

Unlike a user's client, the harness offers every command to everyone: it does not hide a
command from members lacking its ``default_member_permissions`` (as if a server admin had
changed them), so a command's own permission check can be tested directly. Private discord.py
internals touched, all unavoidable without a gateway connection: ``Client._connection.parsers``
(the table the gateway reads events from) to deliver ``INTERACTION_CREATE``, ``GUILD_CREATE``
and ``GUILD_ROLE_CREATE``. ``discord.http.Route.BASE``
(the API root discord.py itself rewrites in ``_set_api_version``) is pointed at the stand-in
for the duration of the ``async with``, so harnesses must not run concurrently, except on one
stand-in: several bots as several processes of one sharded bot (``standin=``, each bot's
SHARD_COUNT and SHARD_IDS). Each bot gets the servers, and the gateway events, of its own
shards only (DMs are on shard 0), as Discord routes them; the stand-in runs as long as the
harness that started it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import discord
from discord import app_commands
from discord.http import Route

from .specs import (
    DEFAULT_APP_ID,
    GENERAL,
    MEMBER,
    ChannelSpec,
    GuildSpec,
    RoleSpec,
    UserSpec,
    ensure_member,
    world_from_spec,
)
from .standin import interactions
from .standin.interactions import ScenarioError
from .standin.rest import EPHEMERAL, Handler, RecordedRequest, UploadedFile
from .standin.server import DiscordStandIn
from .standin.webhooks import MemberFile
from .standin.world import Channel, Role, User, snowflake

# The harness could not do what the test asked (Discord's client would not send it), or the bot
# did not finish in time: the same error the e2e scenarios raise.
HarnessError = ScenarioError


@dataclass
class Recorded:
    """Everything one interaction made the bot send, in order.

    ``requests`` holds every HTTP request sent while the interaction's handlers ran;
    ``responses`` only those answering this interaction (its callback, followups, and reads or
    edits of its messages). The message accessors (``content``, ``embeds``, ``flags``,
    ``allowed_mentions``...) read the *last* message payload sent, exactly as discord.py sent
    it; ``message`` is the stand-in's final copy of the message that payload created or changed.
    """

    interaction_id: int
    payload: dict[str, Any]  # the INTERACTION_CREATE data the bot received
    requests: list[RecordedRequest]
    errors: list[BaseException] = field(default_factory=list)
    message: dict[str, Any] | None = None

    @property
    def responses(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.interaction_id == self.interaction_id]

    @property
    def callback(self) -> RecordedRequest | None:
        return next((r for r in self.responses if r.path.endswith("/callback")), None)

    @property
    def callback_type(self) -> int | None:
        """The interaction callback type: 4 message, 5/6 deferred, 7 update, 8 choices, 9 modal."""
        callback = self.callback
        return callback.json.get("type") if callback is not None and callback.json else None

    @property
    def acknowledged(self) -> bool:
        callback = self.callback
        return callback is not None and 200 <= callback.status < 300

    @property
    def deferred(self) -> bool:
        return self.callback_type in (5, 6)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every message payload sent in answer: the reply, followups and edits, in order."""
        payloads = (r.message_payload for r in self.responses if r.status < 300)
        return [p for p in payloads if p is not None]

    @property
    def last(self) -> dict[str, Any]:
        sent = self.sent
        if not sent:
            raise HarnessError(f"the bot sent no message for this interaction\n{self.describe()}")
        return sent[-1]

    @property
    def content(self) -> str | None:
        return self.last.get("content")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.last.get("embeds") or []

    @property
    def discord_embeds(self) -> list[discord.Embed]:
        return [discord.Embed.from_dict(e) for e in self.embeds]

    @property
    def components(self) -> list[dict[str, Any]]:
        return self.last.get("components") or []

    @property
    def custom_ids(self) -> list[str]:
        """The custom ids of every component in the last payload, in display order."""
        return [
            c["custom_id"]
            for c in interactions.walk_components({"components": self.components})
            if "custom_id" in c
        ]

    @property
    def allowed_mentions(self) -> dict[str, Any] | None:
        return self.last.get("allowed_mentions")

    @property
    def flags(self) -> int:
        return self.last.get("flags") or 0

    @property
    def ephemeral(self) -> bool:
        """Whether the user alone sees the answer (the message's flags, as Discord keeps them)."""
        if self.message is not None:
            return bool(self.message["flags"] & EPHEMERAL)
        return bool(self.flags & EPHEMERAL)

    @property
    def files(self) -> tuple[UploadedFile, ...]:
        """The files uploaded with the last message payload."""
        for request in reversed(self.responses):
            if request.message_payload is not None:
                return request.files
        return ()

    @property
    def choices(self) -> list[dict[str, Any]]:
        if self.callback_type != 8:
            raise HarnessError(f"the bot sent no autocomplete choices\n{self.describe()}")
        assert self.callback is not None
        return self.callback.json["data"]["choices"]

    @property
    def modal(self) -> dict[str, Any]:
        if self.callback_type != 9:
            raise HarnessError(f"the bot opened no modal\n{self.describe()}")
        assert self.callback is not None
        return self.callback.json["data"]

    def raised(self, kind: type[BaseException]) -> bool:
        """Whether handling raised ``kind``, directly or as the cause of a logged wrapper
        (discord.py wraps command exceptions in ``CommandInvokeError``)."""
        for error in self.errors:
            current: BaseException | None = error
            while current is not None:
                if isinstance(current, kind):
                    return True
                current = current.__cause__
        return False

    def describe(self) -> str:
        lines = [f"interaction {self.interaction_id}: {len(self.requests)} request(s)"]
        lines += [f"  {r!r}" for r in self.requests]
        lines += [f"  error: {e!r}" for e in self.errors]
        return "\n".join(lines)


class _ErrorLog(logging.Handler):
    """Keeps the exceptions discord.py (or the bot) logs while an interaction is handled.

    discord.py's default tree, view and modal error handlers log and swallow, so a crashing
    command would otherwise look like a command that chose not to answer.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


class Harness:
    """A logged-in bot and the stand-in Discord; see the module docstring."""

    def __init__(
        self,
        bot: discord.Client,
        *,
        guild: GuildSpec | None = None,
        app_id: int = DEFAULT_APP_ID,
        token: str = "harness-token",
        tree: app_commands.CommandTree[Any] | None = None,
        timeout: float = 5.0,
        strict: bool = True,
        standin: DiscordStandIn | None = None,
    ) -> None:
        """``standin``: the Discord an earlier harness ran against, to run this bot against
        the same world, messages and webhooks, as after a restart."""
        self.bot = bot
        found = tree if tree is not None else getattr(bot, "tree", None)
        if not isinstance(found, app_commands.CommandTree):
            raise TypeError("pass tree= for a discord.Client without a .tree attribute")
        self.tree: app_commands.CommandTree[Any] = found
        self.guild = guild or GuildSpec()
        # A bot built with application_id=... keeps it, as login() would.
        self.app_id = bot.application_id or app_id
        self.timeout = timeout
        self.strict = strict
        self._token = token
        if standin is None:
            self.world = world_from_spec(self.guild, app_id=self.app_id, bot_role_id=snowflake())
            standin = DiscordStandIn(self.world, token=token)
        else:
            self.world = standin.world
        self.standin = standin
        self._previous_base: str | None = None
        self._started_standin = False
        self._command_ids: dict[tuple[int | None, str], int] = {}
        # Tasks the bot started on gateway events the stand-in emitted (see _on_event).
        self._event_tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self.standin.event_listeners.append(self._on_event)
        if not self.standin.running:
            await self.standin.start()
            self._started_standin = True
        self._previous_base = Route.BASE
        Route.BASE = self.standin.api_base
        try:
            await self.bot.__aenter__()
            await self.bot.login(self._token)
            members_intent = self.bot.intents.members
            for guild in self.world.guilds:
                if not self.on_its_shards(guild.id):
                    continue
                payload = guild.to_gateway_payload(
                    bot_id=self.app_id, members_intent=members_intent
                )
                await self._feed("GUILD_CREATE", payload)
        except BaseException:
            await self._shutdown(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown(exc_type, exc, tb)
        if exc_type is None and self.standin.internal_errors:
            bugs = "\n".join(f"  {e}" for e in self.standin.internal_errors)
            raise HarnessError(f"the stand-in Discord crashed answering a request:\n{bugs}")
        if self.strict and exc_type is None and self.standin.unknown_routes:
            routes = "\n".join(f"  {r!r}" for r in self.standin.unknown_routes)
            raise HarnessError(
                "the bot called routes the stand-in does not answer (register them with "
                f"Harness.add_route):\n{routes}"
            )

    async def _shutdown(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.bot.__aexit__(exc_type, exc, tb)
        finally:
            self.standin.event_listeners.remove(self._on_event)
            if self._previous_base is not None:
                Route.BASE = self._previous_base
                self._previous_base = None
            if self._started_standin:
                await self.standin.stop()
                self._started_standin = False

    def on_its_shards(self, guild_id: int | None) -> bool:
        """Whether Discord sends the bot the events of this server (None: a DM, shard 0)."""
        count = getattr(self.bot, "shard_count", None)
        ids = getattr(self.bot, "shard_ids", None)
        if not count or ids is None:
            return True  # every shard of the bot runs here
        return (0 if guild_id is None else (guild_id >> 22) % count) in ids

    def mark_ready(self) -> None:
        """Let what waits for ``wait_until_ready`` (background tasks) start, as after READY
        and the guilds' GUILD_CREATE. Touches ``Client._ready``, the event READY sets."""
        self.bot._ready.set()

    async def remove_bot(self, guild_id: int) -> None:
        """Embargo is removed from the server: GUILD_DELETE, as Discord sends it (the server
        leaves the bot's cache, then ``on_guild_remove`` runs), waiting for its handlers."""
        await self._feed("GUILD_DELETE", {"id": str(guild_id)})

    # -- inspection --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every HTTP request the bot sent since login, in order."""
        return self.standin.requests

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Answer an extra REST route; see ``DiscordApi.add_route``."""
        self.standin.add_route(method, path, handler)

    def bot_message(
        self,
        *,
        content: str = "",
        view: discord.ui.View | None = None,
        components: list[dict[str, Any]] | None = None,
        channel: ChannelSpec | int = GENERAL,
    ) -> dict[str, Any]:
        """A message the bot posted earlier (e.g. before a restart), to click on."""
        rows = view.to_components() if view is not None else components or []
        stored = self.standin.post_message(
            self._channel(channel), {"content": content, "components": rows}
        )
        return copy.deepcopy(stored.payload)

    # -- members' messages -------------------------------------------------------------------

    async def member_says(
        self,
        content: str,
        *,
        as_user: UserSpec = MEMBER,
        in_channel: ChannelSpec | int = GENERAL,
        files: Sequence[MemberFile] = (),
        reply_to: Mapping[str, Any] | None = None,
        forwarded: Mapping[str, Any] | None = None,
        embeds: Sequence[dict[str, Any]] = (),
        stickers: Sequence[str] = (),
        poll: Sequence[str] = (),
        voice: bool = False,
    ) -> dict[str, Any]:
        """A member posts a message (``MESSAGE_CREATE`` reaches the bot); returns it once
        the bot's handlers for it have finished. ``embeds``: another bot (``as_user`` a bot)
        posts rich embeds; ``stickers`` by name; ``poll``: its question, then answers;
        ``voice``: a voice message, ``files`` its one recording."""
        user = await self._user(as_user)
        channel = self._channel(in_channel)
        message = self.standin.member_message(
            channel,
            user,
            content,
            files=files,
            reply_to=int(reply_to["id"]) if reply_to else None,
            forwarded=dict(forwarded) if forwarded else None,
            embeds=embeds,
            stickers=stickers,
            poll=poll,
            voice=voice,
        )
        await self.settle()
        return copy.deepcopy(message)

    async def system_message(
        self,
        kind: int,
        *,
        about: UserSpec = MEMBER,
        in_channel: ChannelSpec | int = GENERAL,
        pinned: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Discord posts a system message about ``about`` (``USER_JOIN``, or
        ``CHANNEL_PINNED_MESSAGE`` for ``pinned``); returns it once the bot handled it."""
        user = await self._user(about)
        message = self.standin.system_message(
            self._channel(in_channel), user, kind, pinned=int(pinned["id"]) if pinned else None
        )
        await self.settle()
        return copy.deepcopy(message)

    async def member_edits(self, message: Mapping[str, Any], content: str) -> dict[str, Any]:
        """The member edits their message (``MESSAGE_UPDATE``)."""
        edited = self.standin.edit_member_message(int(message["id"]), content)
        await self.settle()
        return copy.deepcopy(edited)

    async def settle(self) -> None:
        """Wait until the bot's handlers of every emitted gateway event have finished."""
        while self._event_tasks:
            tasks, self._event_tasks = self._event_tasks, set()
            errors = await self._wait(tasks, "gateway events")
            if errors:
                raise errors[0]

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        guild_id = data.get("guild_id")
        if not self.on_its_shards(None if guild_id is None else int(guild_id)):
            return
        if name in self.bot._connection.parsers:
            self._event_tasks |= self._parse(name, data)

    # -- interactions ------------------------------------------------------------------------

    async def message_command(
        self, name: str, /, *, message: Mapping[str, Any], as_user: UserSpec = MEMBER
    ) -> Recorded:
        """Apps → ``name`` on ``message`` (as a member's client offers it)."""
        user = await self._user(as_user)
        channel = self.world.find_channel(int(message["channel_id"]))
        if channel is None:
            raise HarnessError(f"message {message['id']} is in no known channel")
        payload = interactions.message_command_interaction(
            self.world,
            self._message_command(name),
            message,
            user=user,
            channel=channel,
            bypass_permissions=True,
        )
        return await self.dispatch(payload)

    def _message_command(self, name: str) -> dict[str, Any]:
        for scope in (self.guild.id, None):
            for command in self.standin.commands.get(scope, []):
                if command["name"] == name and command["type"] == interactions.MESSAGE_COMMAND:
                    return command
        found = self.tree.get_command(name, type=discord.AppCommandType.message)
        if found is None:
            raise HarnessError(f"no message command {name!r}")
        command = found.to_dict(self.tree)
        command["id"] = str(self._command_ids.setdefault((None, name), snowflake()))
        return command

    async def slash(
        self,
        name: str,
        /,
        *,
        subcommand: str | None = None,
        as_user: UserSpec = MEMBER,
        in_channel: ChannelSpec | int = GENERAL,
        in_dm: bool = False,
        locale: str = "en-US",
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Recorded:
        """Invoke ``/name [subcommand] option:value...`` as ``as_user``.

        ``subcommand`` is ``"sub"`` or ``"group sub"``. Options come as keyword arguments, or in
        ``options`` for names that are not identifiers or clash with this method's own, by
        their Discord names. Values are sent typed as Discord types them: ``str``, ``int``,
        ``float``, ``bool``, a ``ChannelSpec`` or channel id, a ``UserSpec``, a ``RoleSpec``.
        """
        payload = await self.build_slash(
            name,
            subcommand=subcommand,
            as_user=as_user,
            in_channel=in_channel,
            in_dm=in_dm,
            locale=locale,
            options=options,
            **kwargs,
        )
        return await self.dispatch(payload)

    async def build_slash(
        self,
        name: str,
        /,
        *,
        subcommand: str | None = None,
        as_user: UserSpec = MEMBER,
        in_channel: ChannelSpec | int = GENERAL,
        in_dm: bool = False,
        locale: str = "en-US",
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The INTERACTION_CREATE payload :meth:`slash` would send, without sending it.

        For input Discord's client refuses (an out-of-range number, an unknown choice): build a
        valid payload, change it, and send it with :meth:`dispatch`.
        """
        given = {**(options or {}), **kwargs}
        return await self._command_payload(
            name, subcommand, as_user, in_channel, in_dm, locale, given
        )

    async def autocomplete(
        self,
        name: str,
        /,
        option: str,
        value: str,
        *,
        subcommand: str | None = None,
        as_user: UserSpec = MEMBER,
        in_channel: ChannelSpec | int = GENERAL,
        in_dm: bool = False,
        locale: str = "en-US",
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """The choices the bot offers while the user types ``value`` into ``option``.

        Other options already filled in are passed as in ``slash``.
        """
        given = {**(options or {}), **kwargs, option: value}
        payload = await self._command_payload(
            name, subcommand, as_user, in_channel, in_dm, locale, given, focused=option
        )
        return (await self.dispatch(payload)).choices

    async def click(
        self, custom_id: str, *, message: Mapping[str, Any], as_user: UserSpec = MEMBER
    ) -> Recorded:
        """Press button ``custom_id`` on ``message`` (a message dict, e.g. ``Recorded.message``)."""
        return await self._component(message, custom_id, None, as_user)

    async def select(
        self,
        custom_id: str,
        values: Sequence[str],
        *,
        message: Mapping[str, Any],
        as_user: UserSpec = MEMBER,
    ) -> Recorded:
        """Pick ``values`` in the string select ``custom_id`` on ``message``."""
        return await self._component(message, custom_id, list(values), as_user)

    async def submit_modal(
        self,
        opened: Recorded,
        values: Mapping[str, str | Sequence[str]],
        *,
        as_user: UserSpec | None = None,
    ) -> Recorded:
        """Fill in and submit the modal the bot opened in ``opened``; ``values`` by custom id.

        By default the user who opened the modal submits it, where it was opened.
        """
        record = self.standin.interactions[opened.interaction_id]
        user = await self._user(as_user) if as_user else self.world.user_by_id(record.user_id)
        channel = self.world.find_channel(record.channel_id)
        assert user is not None
        assert channel is not None
        payload = interactions.modal_submit_interaction(
            self.world,
            opened.modal,
            values,
            user=user,
            channel=channel,
            locale=opened.payload.get("locale", "en-US"),
        )
        return await self.dispatch(payload)

    async def dispatch(self, payload: dict[str, Any]) -> Recorded:
        """Deliver an interaction payload and wait until the handlers it started have finished.

        Only the tasks the gateway parser starts are awaited (the tree invoker, view and modal
        callbacks, ``on_interaction`` listeners); anything they fire and forget gets a few loop
        turns and is otherwise left running.
        """
        start = len(self.standin.requests)
        record = self.standin.expect_interaction(payload)
        errors = _ErrorLog()
        logging.getLogger().addHandler(errors)
        try:
            record.dispatched_at = time.monotonic()
            tasks = self._parse("INTERACTION_CREATE", payload)
            task_errors = await self._wait(tasks, f"interaction {payload['id']}")
            for _ in range(5):
                await asyncio.sleep(0)
            await self.settle()
        finally:
            logging.getLogger().removeHandler(errors)
        requests = self.standin.requests[start:]
        touched = [r.message_id for r in requests if r.interaction_id == record.id and r.message_id]
        stored = self.standin.messages.get(touched[-1]) if touched else None
        return Recorded(
            interaction_id=record.id,
            payload=payload,
            requests=requests,
            errors=errors.errors + task_errors,
            message=copy.deepcopy(stored.payload) if stored and not stored.deleted else None,
        )

    # -- gateway -----------------------------------------------------------------------------

    def _parse(self, event: str, data: dict[str, Any]) -> set[asyncio.Task[Any]]:
        """Hand ``data`` to the bot's parser for ``event``; returns the tasks it started."""
        before = asyncio.all_tasks()
        # The parsers are synchronous and only schedule tasks, so the difference is exactly
        # what this event started.
        self.bot._connection.parsers[event](data)
        return asyncio.all_tasks() - before

    async def _feed(self, event: str, data: dict[str, Any]) -> None:
        errors = await self._wait(self._parse(event, data), event)
        if errors:
            raise errors[0]

    async def _wait(self, tasks: set[asyncio.Task[Any]], what: str) -> list[BaseException]:
        if not tasks:
            return []
        done, pending = await asyncio.wait(tasks, timeout=self.timeout)
        if pending:
            for task in pending:
                task.cancel()
            names = ", ".join(sorted(t.get_name() for t in pending))
            raise HarnessError(f"{what}: still running after {self.timeout}s: {names}")
        errors: list[BaseException] = []
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                errors.append(error)
        return errors

    # -- the world, from the test's specs ----------------------------------------------------

    async def _user(self, spec: UserSpec) -> User:
        """The stand-in's user for ``spec``; roles a test invents on the fly are announced to
        the bot first, as Discord would have before the interaction."""
        user, new_roles = ensure_member(self.world, spec)
        for role in new_roles:
            await self._feed(
                "GUILD_ROLE_CREATE", {"guild_id": str(self.guild.id), "role": role.to_payload()}
            )
        return user

    def _channel(self, channel: ChannelSpec | int) -> Channel:
        if isinstance(channel, int) and (thread := self.world.find_channel(channel)) is not None:
            return thread  # a thread started while the test ran (not in the guild spec)
        spec = self.guild.channel(channel)
        found = self.world.find_channel(spec.id)
        assert found is not None
        return found

    def _option_value(self, value: Any) -> Any:
        """A test-side option value as the stand-in's builder takes it."""
        if isinstance(value, app_commands.Choice):
            return value.value
        if isinstance(value, ChannelSpec):
            return self._channel(value)
        if isinstance(value, RoleSpec):
            return Role(
                id=value.id,
                name=value.name,
                permissions=value.permissions.value,
                position=value.position,
                managed=value.managed,
            )
        if isinstance(value, UserSpec):
            return ensure_member(self.world, value)[0]
        return value

    def _command(self, name: str, *, dm: bool) -> dict[str, Any]:
        """The command as Discord has it: as registered, or (for a bot that has not synced)
        as discord.py would register it."""
        try:
            return self.standin.registered_command(name, guild_id=None if dm else self.guild.id)
        except KeyError as error:
            local = None if dm else self.tree.get_command(name, guild=discord.Object(self.guild.id))
            found = local or self.tree.get_command(name)
            if found is None:
                raise HarnessError(str(error)) from None
            scope = self.guild.id if local else None
            command = found.to_dict(self.tree)
            command["id"] = str(self._command_ids.setdefault((scope, name), snowflake()))
            if scope is not None:
                command["guild_id"] = str(scope)
            return command

    async def _command_payload(
        self,
        name: str,
        subcommand: str | None,
        as_user: UserSpec,
        in_channel: ChannelSpec | int,
        in_dm: bool,
        locale: str,
        given: dict[str, Any],
        *,
        focused: str | None = None,
    ) -> dict[str, Any]:
        user = await self._user(as_user)
        channel = self.world.dm_channel(user) if in_dm else self._channel(in_channel)
        if in_dm and any(isinstance(v, ChannelSpec | RoleSpec) for v in given.values()):
            raise HarnessError("a DM has no guild channels or roles to pick")
        return interactions.command_interaction(
            self.world,
            self._command(name, dm=in_dm),
            user=user,
            channel=channel,
            subcommand=subcommand,
            options={k: self._option_value(v) for k, v in given.items()},
            focused=focused,
            locale=locale,
            store_upload=lambda channel_id, upload: self.standin.store_attachment(
                channel_id, upload.filename, upload.data
            ),
            bypass_permissions=True,
        )

    async def _component(
        self,
        message: Mapping[str, Any],
        custom_id: str,
        values: list[str] | None,
        as_user: UserSpec,
    ) -> Recorded:
        stored = self.standin.messages.get(int(message["id"]))
        if stored is None:
            raise HarnessError(f"message {message['id']} was never sent; use Harness.bot_message")
        if stored.deleted:
            raise HarnessError(f"message {message['id']} was deleted")
        channel = self.world.find_channel(stored.channel_id)
        assert channel is not None
        user = await self._user(as_user)
        if channel.type == 1 and (not channel.recipients or channel.recipients[0].id != user.id):
            raise HarnessError(f"message {message['id']} is in another user's DM")
        payload = interactions.component_interaction(
            self.world,
            message,
            custom_id=custom_id,
            user=user,
            channel=channel,
            visible_to=stored.visible_to,
            values=values,
        )
        return await self.dispatch(payload)
