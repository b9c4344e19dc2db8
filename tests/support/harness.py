"""Run a bot's slash commands, autocompletes, buttons and modals offline, as Discord would.

``Harness`` logs a real ``commands.Bot``/``discord.Client`` in against a loopback stand-in for
Discord's REST API (see ``fake_discord``), so ``login()`` and ``setup_hook`` run unmodified, then
feeds Discord-shaped ``INTERACTION_CREATE`` payloads to the bot's own gateway parser. From
there everything is discord.py's: building the ``Interaction``, resolving options, running
checks, dispatching to views and modals, and packing the HTTP responses, which the stand-in
records as they arrive on the wire::

    async with Harness(make_bot()) as h:
        reply = await h.slash("review", episode="severance/s01e03", as_user=MEMBER)
        assert reply.ephemeral and "Severance" in reply.content
        clicked = await h.click("reveal", message=reply.message, as_user=MODERATOR)
        choices = await h.autocomplete("review", "episode", "sev")

Private discord.py internals touched, all unavoidable without a gateway connection:
``Client._connection.parsers`` (the table the gateway reads events from) to deliver
``INTERACTION_CREATE``, ``GUILD_CREATE`` and ``GUILD_ROLE_CREATE``. ``discord.http.Route.BASE``
(the API root discord.py itself rewrites in ``_set_api_version``) is pointed at the stand-in
for the duration of the ``async with``, so harnesses must not run concurrently.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import discord
from discord import app_commands
from discord.http import Route

from .fake_discord import (
    EPHEMERAL,
    FakeDiscord,
    Handler,
    InteractionRecord,
    RecordedFile,
    RecordedRequest,
)
from .specs import (
    DEFAULT_APP_ID,
    GENERAL,
    MEMBER,
    ChannelSpec,
    GuildSpec,
    RoleSpec,
    Snowflakes,
    UserSpec,
    channel_payload,
    dm_channel_payload,
    guild_create_payload,
    member_payload,
    role_payload,
    user_payload,
)

APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5


class HarnessError(AssertionError):
    """The harness could not do what the test asked, or the bot did not finish in time."""


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
        return [c["custom_id"] for c in _walk_components(self.components) if "custom_id" in c]

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
    def files(self) -> tuple[RecordedFile, ...]:
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


def _walk_components(components: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for component in components:
        yield component
        yield from _walk_components(component.get("components") or [])
        for key in ("component", "accessory"):
            if isinstance(component.get(key), Mapping):
                yield from _walk_components([component[key]])


class Harness:
    """A logged-in bot and a stand-in Discord; see the module docstring."""

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
    ) -> None:
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
        self._ids = Snowflakes()
        self.fake = FakeDiscord(
            app_id=self.app_id,
            bot_user=UserSpec(id=self.app_id, name="Embargo", bot=True),
            guild=self.guild,
            ids=self._ids,
        )
        self._previous_base: str | None = None
        self._command_ids: dict[tuple[int | None, str], int] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        base = await self.fake.start()
        self._previous_base = Route.BASE
        Route.BASE = base
        try:
            await self.bot.__aenter__()
            await self.bot.login(self._token)
            bot_role = RoleSpec(
                id=self._ids(), name="Embargo", permissions=self.guild.bot_permissions
            )
            await self._feed(
                "GUILD_CREATE", guild_create_payload(self.guild, self.fake.bot_user, bot_role)
            )
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
        if exc_type is None and self.fake.crashes:
            raise HarnessError(
                "the stand-in Discord crashed answering a request"
            ) from self.fake.crashes[0]
        if self.strict and exc_type is None and self.fake.unhandled:
            routes = "\n".join(f"  {r!r}" for r in self.fake.unhandled)
            raise HarnessError(
                "the bot called routes the harness does not answer (register them with "
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
            if self._previous_base is not None:
                Route.BASE = self._previous_base
                self._previous_base = None
            await self.fake.stop()

    # -- inspection --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every HTTP request the bot sent since login, in order."""
        return self.fake.requests

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Answer an extra REST route; see ``FakeDiscord.add_route``."""
        self.fake.add_route(method, path, handler)

    def bot_message(
        self,
        *,
        content: str = "",
        view: discord.ui.View | None = None,
        components: list[dict[str, Any]] | None = None,
        channel: ChannelSpec | int = GENERAL,
    ) -> dict[str, Any]:
        """A message the bot posted earlier (e.g. before a restart), to click on."""
        spec = self.guild.channel(channel)
        rows = view.to_components() if view is not None else components or []
        message = self.fake.new_message(
            {"content": content, "components": rows}, channel_id=spec.id, guild_id=self.guild.id
        )
        return copy.deepcopy(message)

    # -- interactions ------------------------------------------------------------------------

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
        ``options`` for names that are not identifiers or clash with this method's own; keys
        are Discord option names or Python parameter names. Values are sent typed as Discord
        types them: ``str``, ``int``, ``float``, ``bool``, a ``ChannelSpec`` or channel id, a
        ``UserSpec``, a ``RoleSpec``.
        """
        given = {**(options or {}), **kwargs}
        data = self._command_data(
            name, subcommand, dm=in_dm, user=as_user, options=given, focused=None
        )
        payload = self._interaction(
            APPLICATION_COMMAND, data, user=as_user, channel=in_channel, dm=in_dm, locale=locale
        )
        return await self._send(payload, as_user)

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
        data = self._command_data(
            name, subcommand, dm=in_dm, user=as_user, options=given, focused=option
        )
        payload = self._interaction(
            AUTOCOMPLETE, data, user=as_user, channel=in_channel, dm=in_dm, locale=locale
        )
        return (await self._send(payload, as_user)).choices

    async def click(
        self, custom_id: str, *, message: Mapping[str, Any], as_user: UserSpec = MEMBER
    ) -> Recorded:
        """Press button ``custom_id`` on ``message`` (a message dict, e.g. ``Recorded.message``)."""
        component = self._component(message, custom_id, expected=(2,))
        data = {"custom_id": custom_id, "component_type": component["type"]}
        return await self._send(self._component_interaction(data, message, as_user), as_user)

    async def select(
        self,
        custom_id: str,
        values: Sequence[str],
        *,
        message: Mapping[str, Any],
        as_user: UserSpec = MEMBER,
    ) -> Recorded:
        """Pick ``values`` in the string select ``custom_id`` on ``message``."""
        component = self._component(message, custom_id, expected=(3,))
        offered = [option["value"] for option in component.get("options", [])]
        unknown = [v for v in values if v not in offered]
        if unknown:
            raise HarnessError(f"select {custom_id!r} offers {offered}, not {unknown}")
        low, high = component.get("min_values", 1), component.get("max_values", 1)
        if not low <= len(values) <= high:
            raise HarnessError(
                f"select {custom_id!r} takes {low}..{high} values, got {len(values)}"
            )
        data = {"custom_id": custom_id, "component_type": 3, "values": list(values)}
        return await self._send(self._component_interaction(data, message, as_user), as_user)

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
        modal = opened.modal
        remaining = dict(values)
        submitted = [self._submitted(c, remaining) for c in modal["components"]]
        if remaining:
            raise HarnessError(f"modal {modal['custom_id']!r} has no inputs {sorted(remaining)}")
        previous = next(r for r in self.fake.interactions.values() if r.id == opened.interaction_id)
        user = as_user or previous.user
        data = {"custom_id": modal["custom_id"], "components": submitted}
        payload = self._interaction(
            MODAL_SUBMIT,
            data,
            user=user,
            channel=previous.channel_id,
            dm=previous.guild_id is None,
            locale=opened.payload.get("locale", "en-US"),
        )
        return await self._send(payload, user)

    async def _send(self, payload: dict[str, Any], user: UserSpec) -> Recorded:
        if "guild_id" in payload:
            await self._ensure_roles(user)
        return await self.dispatch(payload)

    async def dispatch(self, payload: dict[str, Any]) -> Recorded:
        """Deliver an interaction payload and wait until the handlers it started have finished.

        Only the tasks the gateway parser starts are awaited (the tree invoker, view and modal
        callbacks, ``on_interaction`` listeners); anything they fire and forget gets a few loop
        turns and is otherwise left running.
        """
        start = len(self.fake.requests)
        errors = _ErrorLog()
        logging.getLogger().addHandler(errors)
        try:
            tasks = self._parse("INTERACTION_CREATE", payload)
            task_errors = await self._wait(tasks, f"interaction {payload['id']}")
            for _ in range(5):
                await asyncio.sleep(0)
        finally:
            logging.getLogger().removeHandler(errors)
        requests = self.fake.requests[start:]
        interaction_id = int(payload["id"])
        touched = [
            r.message_id for r in requests if r.interaction_id == interaction_id and r.message_id
        ]
        message = self.fake.messages.get(touched[-1]) if touched else None
        return Recorded(
            interaction_id=interaction_id,
            payload=payload,
            requests=requests,
            errors=errors.errors + task_errors,
            message=copy.deepcopy(message),
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

    async def _ensure_roles(self, user: UserSpec) -> None:
        """Announce roles a test invents on the fly, as Discord would have before the click."""
        cached = self.bot.get_guild(self.guild.id)
        if cached is None:
            return
        for role in user.roles:
            if cached.get_role(role.id) is None:
                await self._feed(
                    "GUILD_ROLE_CREATE",
                    {"guild_id": str(self.guild.id), "role": role_payload(role)},
                )

    # -- payload building --------------------------------------------------------------------

    def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user: UserSpec,
        channel: ChannelSpec | int,
        dm: bool,
        locale: str,
        message: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        interaction_id = self._ids()
        token = f"harness-interaction-{interaction_id}"
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.app_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "app_permissions": str(self.guild.bot_permissions.value),
        }
        if dm:
            channel_id = self.fake.dm_channel_id(user)
            payload["channel"] = dm_channel_payload(channel_id, user)
            payload["user"] = user_payload(user)
            payload["context"] = 1  # BOT_DM
            # In a bot DM Discord reports the guild installation's owner as "0".
            payload["authorizing_integration_owners"] = {"0": "0"}
            guild_id = None
        else:
            spec = self.guild.channel(channel)
            channel_id = spec.id
            guild_id = self.guild.id
            payload["guild_id"] = str(guild_id)
            payload["guild"] = {"id": str(guild_id), "locale": self.guild.locale, "features": []}
            payload["guild_locale"] = self.guild.locale
            payload["channel"] = channel_payload(
                spec, self.guild, permissions=user.permissions_in(self.guild)
            )
            payload["member"] = member_payload(user, self.guild)
            payload["context"] = 0  # GUILD
            payload["authorizing_integration_owners"] = {"0": str(guild_id)}
        payload["channel_id"] = str(channel_id)
        if message is not None:
            payload["message"] = copy.deepcopy(dict(message))
        self.fake.interactions[token] = InteractionRecord(
            id=interaction_id,
            token=token,
            type=kind,
            channel_id=channel_id,
            guild_id=guild_id,
            user=user,
            original_id=int(message["id"]) if message is not None else None,
        )
        return payload

    def _component_interaction(
        self, data: dict[str, Any], message: Mapping[str, Any], user: UserSpec
    ) -> dict[str, Any]:
        if int(message["id"]) not in self.fake.messages:
            self.fake.store_message(copy.deepcopy(dict(message)))
        channel_id = int(message["channel_id"])
        dm = message.get("guild_id") is None
        if dm:
            self.fake.dm_channels.setdefault(user.id, channel_id)
        return self._interaction(
            MESSAGE_COMPONENT,
            data,
            user=user,
            channel=channel_id,
            dm=dm,
            locale="en-US",
            message=message,
        )

    def _component(
        self, message: Mapping[str, Any], custom_id: str, *, expected: tuple[int, ...]
    ) -> Mapping[str, Any]:
        for component in _walk_components(message.get("components") or []):
            if component.get("custom_id") != custom_id:
                continue
            if component["type"] not in expected:
                raise HarnessError(
                    f"component {custom_id!r} is of type {component['type']}, not {expected}"
                )
            if component.get("disabled"):
                raise HarnessError(
                    f"component {custom_id!r} is disabled; Discord would not send the click"
                )
            return component
        present = [
            c["custom_id"]
            for c in _walk_components(message.get("components") or [])
            if "custom_id" in c
        ]
        raise HarnessError(
            f"message {message.get('id')} has no component {custom_id!r}; it has {present}"
        )

    def _submitted(
        self, component: Mapping[str, Any], values: dict[str, str | Sequence[str]]
    ) -> dict[str, Any]:
        """The modal-submit echo of one modal component, filled from ``values`` (consumed)."""
        kind = component["type"]
        if kind == 1:
            return {
                "type": 1,
                "components": [self._submitted(c, values) for c in component["components"]],
            }
        if kind == 18:  # Label wraps one input
            return {
                "type": 18,
                "id": component.get("id"),
                "component": self._submitted(component["component"], values),
            }
        custom_id = component.get("custom_id")
        if kind == 4:  # text input
            value = values.pop(custom_id, component.get("value") or "")
            if component.get("required", True) and not value:
                raise HarnessError(f"modal text input {custom_id!r} is required")
            return {"type": 4, "id": component.get("id"), "custom_id": custom_id, "value": value}
        if kind == 3:  # string select inside a label
            picked = values.pop(custom_id, [])
            return {
                "type": 3,
                "id": component.get("id"),
                "custom_id": custom_id,
                "values": list(picked),
            }
        return {"type": kind, "id": component.get("id")}

    def _find_command(
        self, name: str, *, dm: bool
    ) -> tuple[app_commands.Command[Any, ..., Any] | app_commands.Group, int | None]:
        tree = self.tree
        if not dm:
            local = tree.get_command(name, guild=discord.Object(self.guild.id))
            if local is not None:
                return local, self.guild.id
        found = tree.get_command(name)
        if found is None:
            known = sorted(c.name for c in tree.get_commands()) + sorted(
                c.name for c in tree.get_commands(guild=discord.Object(self.guild.id))
            )
            raise HarnessError(f"no slash command /{name}; the tree has {known}")
        if dm:
            synced = found.to_dict(tree)
            contexts = synced.get("contexts")
            if synced.get("dm_permission") is False or (contexts is not None and 1 not in contexts):
                raise HarnessError(f"Discord does not offer /{name} in DMs (guild only)")
        return found, None

    def _command_id(self, scope: int | None, name: str) -> int:
        synced = self.fake.commands.get(scope, {}).get(name)
        if synced is not None:
            return int(synced["id"])
        return self._command_ids.setdefault((scope, name), self._ids())

    def _command_data(
        self,
        name: str,
        subcommand: str | None,
        *,
        dm: bool,
        user: UserSpec,
        options: dict[str, Any],
        focused: str | None,
    ) -> dict[str, Any]:
        root, scope = self._find_command(name, dm=dm)
        path = subcommand.split() if subcommand else []
        target: app_commands.Command[Any, ..., Any] | app_commands.Group = root
        for part in path:
            child = target.get_command(part) if isinstance(target, app_commands.Group) else None
            if child is None:
                raise HarnessError(f"/{name} has no subcommand {subcommand!r}")
            target = child
        if isinstance(target, app_commands.Group):
            subs = [c.name for c in target.commands]
            raise HarnessError(
                f"/{target.qualified_name} is a group; pass subcommand= one of {subs}"
            )
        built, resolved = self._options(target, options, focused=focused, dm=dm, user=user)
        for depth, part in reversed(list(enumerate(path))):
            kind = 1 if depth == len(path) - 1 else 2  # SUB_COMMAND inside SUB_COMMAND_GROUP
            built = [{"type": kind, "name": part, "options": built}]
        data: dict[str, Any] = {
            "id": str(self._command_id(scope, root.name)),
            "name": root.name,
            "type": 1,
            "options": built,
        }
        if resolved:
            data["resolved"] = resolved
        if scope is not None:
            data["guild_id"] = str(scope)
        return data

    def _options(
        self,
        command: app_commands.Command[Any, ..., Any],
        given: dict[str, Any],
        *,
        focused: str | None,
        dm: bool,
        user: UserSpec,
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        remaining = dict(given)
        options: list[dict[str, Any]] = []
        resolved: dict[str, dict[str, Any]] = {}
        for param in command.parameters:
            key = param.display_name if param.display_name in remaining else param.name
            if key not in remaining:
                if param.required and focused is None:
                    raise HarnessError(
                        f"/{command.qualified_name} needs option {param.display_name!r}"
                    )
                continue
            value = remaining.pop(key)
            if key == focused:
                if not param.autocomplete:
                    raise HarnessError(f"option {param.display_name!r} has no autocomplete")
                # While typing, Discord sends the raw text whatever the option's type.
                options.append(
                    {
                        "type": param.type.value,
                        "name": param.display_name,
                        "value": str(value),
                        "focused": True,
                    }
                )
                continue
            wire = self._option_value(param, value, resolved, dm=dm, user=user)
            options.append({"type": param.type.value, "name": param.display_name, "value": wire})
        if remaining:
            names = [p.display_name for p in command.parameters]
            raise HarnessError(
                f"/{command.qualified_name} has no option(s) {sorted(remaining)}; it has {names}"
            )
        return options, resolved

    def _option_value(
        self,
        param: app_commands.Parameter,
        value: Any,
        resolved: dict[str, dict[str, Any]],
        *,
        dm: bool,
        user: UserSpec,
    ) -> Any:
        kind = param.type
        if isinstance(value, app_commands.Choice):
            value = value.value
        option_type = discord.AppCommandOptionType
        expected: dict[option_type, tuple[type, ...]] = {
            option_type.string: (str,),
            option_type.integer: (int,),
            option_type.number: (int, float),
            option_type.boolean: (bool,),
        }
        if kind in expected:
            is_bool = isinstance(value, bool)
            if not isinstance(value, expected[kind]) or (
                is_bool and kind is not option_type.boolean
            ):
                raise HarnessError(f"option {param.display_name!r} is {kind.name}; got {value!r}")
            choices = [c.value for c in param.choices]
            if choices and value not in choices:
                raise HarnessError(
                    f"option {param.display_name!r} only accepts {choices}; got {value!r}"
                )
            low, high = param.min_value, param.max_value
            measured = len(value) if isinstance(value, str) else value  # string bounds: lengths
            if (low is not None and measured < low) or (high is not None and measured > high):
                raise HarnessError(
                    f"option {param.display_name!r} must be in [{low}, {high}]; got {value}"
                )
            return value
        if kind is option_type.channel:
            if dm:
                raise HarnessError("a DM has no guild channels to pick")
            spec = self.guild.channel(value)
            if param.channel_types and spec.type not in param.channel_types:
                raise HarnessError(
                    f"option {param.display_name!r} only accepts {param.channel_types}; "
                    f"#{spec.name} is {spec.type}"
                )
            perms = user.permissions_in(self.guild)
            resolved.setdefault("channels", {})[str(spec.id)] = channel_payload(
                spec, self.guild, permissions=perms
            )
            return str(spec.id)
        if isinstance(value, UserSpec) and kind in (option_type.user, option_type.mentionable):
            resolved.setdefault("users", {})[str(value.id)] = user_payload(value)
            if not dm:
                member = member_payload(value, self.guild, with_user=False)
                resolved.setdefault("members", {})[str(value.id)] = member
            return str(value.id)
        if (
            isinstance(value, RoleSpec)
            and kind in (option_type.role, option_type.mentionable)
            and not dm
        ):
            resolved.setdefault("roles", {})[str(value.id)] = role_payload(value)
            return str(value.id)
        raise HarnessError(
            f"option {param.display_name!r} ({kind.name}) cannot take {value!r} in this harness"
        )
