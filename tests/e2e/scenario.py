"""Scenario API: run a real bot process against the Discord stand-in and act as its users.

    async with DiscordStandIn() as standin:
        bot = BotProcess(standin, argv=EMBARGO_ARGV, workdir=tmp_path)
        await bot.start()                      # waits for IDENTIFY/READY and registered commands
        scenario = Scenario(standin, bot)
        reply = await (await scenario.slash("ping", as_user="alice")).reply()
        assert reply.content == "pong"
        await bot.stop()                       # SIGINT, then kill after a timeout

The bot is launched as ``argv`` with cwd = the repository root and an environment holding a fake
token, an absolute SQLite ``DATABASE_URL`` in ``workdir``, a ``CONTENT_DIR``, and ``PYTHONPATH``
with ``tests/e2e/sitecustomize`` which redirects discord.py to the stand-in. Nothing else in the
bot knows it is under test.

Sharded bots: pass ``env={"SHARD_COUNT": "3", "SHARD_IDS": "1"}`` (several processes may share
one stand-in and, through ``DATABASE_URL``, one database); ``start()`` then waits for the session
of each shard the process runs, with that shard's servers, and interactions reach the process
whose shard holds their server (see the stand-in's ``server.py``). Logins of one session-start
bucket are ``E2E_IDENTIFY_SPACING_S`` apart, not Discord's 5 s, unless a test sets
``EMBARGO_E2E_IDENTIFY_SPACING_S`` empty.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.config import parse_shard_count, parse_shard_ids
from tests.support.standin.interactions import (
    MESSAGE_COMMAND,
    ScenarioError,
    Upload,
    command_interaction,
    component_interaction,
    message_command_interaction,
    modal_submit_interaction,
)
from tests.support.standin.rest import (
    EPHEMERAL,
    LOADING,
    SUPPRESS_EMBEDS,
    InteractionRecord,
    StoredMessage,
)
from tests.support.standin.server import DiscordStandIn
from tests.support.standin.world import Channel, User, World

REPO_ROOT = Path(__file__).resolve().parents[2]
SITECUSTOMIZE_DIR = Path(__file__).resolve().parent / "sitecustomize"
EMBARGO_ARGV: tuple[str, ...] = (sys.executable, "-m", "bot")
DEMO_ARGV: tuple[str, ...] = (sys.executable, "-m", "tests.e2e.demo_bot")
# Variables of .env.example: set them all so a developer's .env cannot leak into a test run.
BOT_ENV_KEYS = (
    "DISCORD_TOKEN",
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "CONTENT_DIR",
    "LOG_LEVEL",
    "DEV_GUILD_ID",
    "LOG_FILE",
    "MESSAGE_GUARD",
    "SOURCE_URL",
    "SHARD_COUNT",
    "SHARD_IDS",
)

# The seconds between logins of one session-start bucket in end-to-end runs, instead of
# Discord's interval and margin (bot/shards.py).
E2E_IDENTIFY_SPACING_S = 0.2

T = TypeVar("T")


def _default_sigint() -> None:
    """In the child, before exec: a shell without job control (CI, ``cmd &``) starts jobs with
    SIGINT ignored, and an ignored signal stays ignored across exec, so the bot would never see
    the Ctrl+C that :meth:`BotProcess.stop` sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class BotProcess:
    """One bot, started and stopped as a subprocess; restartable on the same database."""

    def __init__(
        self,
        standin: DiscordStandIn,
        *,
        workdir: Path,
        argv: Sequence[str] = EMBARGO_ARGV,
        content_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.standin = standin
        self.argv = tuple(argv)
        self.workdir = workdir
        self.database_path = workdir / "e2e.db"
        self.content_dir = content_dir or workdir / "content"
        self.extra_env = dict(env or {})
        self.lines: list[str] = []  # stdout and stderr of every run, in arrival order
        self.starts = 0
        self.returncode: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._watcher: asyncio.Task[None] | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in BOT_ENV_KEYS and not k.startswith(("EMBARGO_", "PYTEST_"))
        }
        python_path = [str(SITECUSTOMIZE_DIR), str(REPO_ROOT)]
        if os.environ.get("PYTHONPATH"):
            python_path.append(os.environ["PYTHONPATH"])
        env.update(
            DISCORD_TOKEN=self.standin.token,
            # Four slashes: sqlite:/// followed by an absolute path.
            DATABASE_URL=f"sqlite:///{self.database_path}",
            DATABASE_POOL_SIZE="",
            CONTENT_DIR=str(self.content_dir),
            LOG_LEVEL="INFO",
            DEV_GUILD_ID="",
            LOG_FILE="",
            SOURCE_URL="",
            MESSAGE_GUARD="",
            SHARD_COUNT="",
            SHARD_IDS="",
            PYTHONPATH=os.pathsep.join(python_path),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            EMBARGO_E2E_API_BASE=self.standin.api_base,
            EMBARGO_E2E_GATEWAY_URL=self.standin.gateway_url,
            # Restarts need not wait out Discord's login interval (see sitecustomize); a test
            # of the pacing sets this empty for Discord's own.
            EMBARGO_E2E_IDENTIFY_SPACING_S=str(E2E_IDENTIFY_SPACING_S),
        )
        env.update(self.extra_env)
        return env

    @property
    def shards(self) -> tuple[int, tuple[int, ...]]:
        """The shard count and the shards this process runs: its SHARD_COUNT and SHARD_IDS,
        else every shard Discord (the stand-in) recommends."""
        count = parse_shard_count(self.extra_env.get("SHARD_COUNT", ""))
        if count is None:
            return self.standin.recommended_shards, tuple(range(self.standin.recommended_shards))
        ids = parse_shard_ids(self.extra_env.get("SHARD_IDS", ""), count)
        return count, tuple(range(count)) if ids is None else ids

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def exit_reason(self) -> str | None:
        """Why waiting for the bot is pointless (it exited), or None while it runs."""
        if self._process is not None and self._process.returncode is not None:
            return f"the bot exited with code {self._process.returncode}\n{self.tail()}"
        return None

    def tail(self, count: int = 40) -> str:
        return "\n".join(["--- bot output (last lines) ---", *self.lines[-count:]])

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def last_run_output(self) -> str:
        """The output of the most recent start only."""
        marker = f"=== start #{self.starts}:"
        starts = [i for i, line in enumerate(self.lines) if line.startswith(marker)]
        return "\n".join(self.lines[starts[-1] :] if starts else [])

    async def start(self, *, within: float = 30.0, require_commands: bool = True) -> None:
        """Launch the bot and wait until the gateway session of each shard it runs is READY
        with the shard's guilds.

        With ``require_commands`` also wait until the stand-in holds registered commands (a
        restart with unchanged commands need not register them again: Discord keeps them).
        """
        sessions_before = len(self.standin.sessions)
        await self._launch()
        count, shard_ids = self.shards
        guilds = [guild.id for guild in self.standin.world.guilds]

        def shard_ready(shard_id: int) -> bool:
            expected = sum(1 for guild_id in guilds if (guild_id >> 22) % count == shard_id)
            for session in self.standin.sessions[sessions_before:]:
                names = [e.name for e in session.events]
                if (
                    session.shard == (shard_id, count)
                    and names[:1] == ["READY"]
                    and names.count("GUILD_CREATE") >= expected
                ):
                    return True
            return False

        def ready() -> bool:
            if not all(shard_ready(shard_id) for shard_id in shard_ids):
                return False
            return not require_commands or any(self.standin.commands.values())

        try:
            await self.standin.wait_for(
                ready, within=within, what="the bot to connect", abort=self.exit_reason
            )
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{self.tail()}") from None

    async def run_to_exit(self, *, within: float = 30.0) -> int:
        """Run a command that ends by itself (``python -m bot sync``); return its exit code,
        or kill it after ``within`` seconds and fail."""
        await self._launch()
        assert self._process is not None
        try:
            await asyncio.wait_for(self._process.wait(), within)
        except TimeoutError:
            await self.stop(within=1.0)
            raise AssertionError(f"still running after {within}s\n{self.tail()}") from None
        return await self.stop()

    async def _launch(self) -> None:
        if self.running:
            raise RuntimeError("bot already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.lines.append(f"=== start #{self.starts}: {' '.join(self.argv)}")
        self.returncode = None
        self._process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 20,
            preexec_fn=_default_sigint,
        )
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self._process.stdout, "out")),
            asyncio.create_task(self._read(self._process.stderr, "err")),
        ]
        self._watcher = asyncio.create_task(self._watch(self._process))

    async def _read(self, stream: asyncio.StreamReader, name: str) -> None:
        log_path = self.workdir / "bot.log"
        with log_path.open("a", encoding="utf-8") as log_file:
            while line := await stream.readline():
                text = line.decode(errors="replace").rstrip("\n")
                self.lines.append(f"[{name}] {text}")
                log_file.write(f"[{name}] {text}\n")
                self.standin.notify()  # a test may be waiting for a log line

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        await process.wait()
        self.standin.notify()

    async def stop(self, *, within: float = 10.0, signum: signal.Signals = signal.SIGINT) -> int:
        """``signum`` (SIGINT: what Ctrl+C sends), SIGKILL after ``within`` seconds; returns
        the exit code."""
        process = self._process
        if process is None:
            raise RuntimeError("bot was never started")
        if process.returncode is None:
            process.send_signal(signum)
            try:
                await asyncio.wait_for(process.wait(), within)
            except TimeoutError:
                self.lines.append(f"=== bot ignored {signum.name} for {within}s: killed")
                process.kill()
                await process.wait()
        await asyncio.gather(*self._readers, *([self._watcher] if self._watcher else []))
        self.returncode = process.returncode
        assert self.returncode is not None
        self.lines.append(f"=== exited with {self.returncode}")
        return self.returncode

    async def restart(self, **start_options: Any) -> None:
        await self.stop()
        await self.start(**start_options)


@dataclass(frozen=True)
class SentMessage:
    """A snapshot of a message the bot sent (or edited), as the user would see it."""

    payload: dict[str, Any]
    files: dict[str, bytes]  # attachment filename -> bytes
    allowed_mentions: dict[str, Any] | None
    visible_to: int | None
    edits: int
    deleted: bool

    @classmethod
    def of(cls, standin: DiscordStandIn, message: StoredMessage) -> SentMessage:
        files = {
            a["filename"]: standin.attachments[int(a["id"])]
            for a in message.payload.get("attachments", [])
            if int(a["id"]) in standin.attachments
        }
        return cls(
            payload=message.payload,
            files=files,
            allowed_mentions=message.allowed_mentions,
            visible_to=message.visible_to,
            edits=len(message.requests) - 1,
            deleted=message.deleted,
        )

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    @property
    def content(self) -> str:
        return self.payload.get("content") or ""

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.payload.get("embeds") or []

    @property
    def components(self) -> list[dict[str, Any]]:
        return self.payload.get("components") or []

    @property
    def flags(self) -> int:
        return int(self.payload.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def suppress_embeds(self) -> bool:
        """Link previews off (flag 4)."""
        return bool(self.flags & SUPPRESS_EMBEDS)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    @property
    def attachments(self) -> list[dict[str, Any]]:
        return self.payload.get("attachments") or []

    def text(self) -> str:
        """Content plus every embed's visible text, for "does the user see X" assertions."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            parts += [(embed.get("author") or {}).get("name") or ""]
            for embed_field in embed.get("fields") or []:
                parts += [embed_field.get("name") or "", embed_field.get("value") or ""]
            parts += [(embed.get("footer") or {}).get("text") or ""]
        return "\n".join(p for p in parts if p)

    def all_components(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        stack = list(reversed(self.components))
        while stack:
            component = stack.pop()
            found.append(component)
            stack.extend(reversed(component.get("components") or []))
            if component.get("accessory"):
                stack.append(component["accessory"])
        return found

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.all_components() if "custom_id" in c]

    def button(self, label: str) -> dict[str, Any]:
        for component in self.all_components():
            if component.get("type") == 2 and component.get("label") == label:
                return component
        labels = [c.get("label") for c in self.all_components() if c.get("type") == 2]
        raise KeyError(f"no button {label!r}; buttons: {labels}")


class InteractionHandle:
    """One interaction the scenario sent, and accessors that wait for the bot's answers."""

    def __init__(self, scenario: Scenario, record: InteractionRecord) -> None:
        self.scenario = scenario
        self.record = record

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def response_time(self) -> float | None:
        """Seconds from dispatch to the accepted initial response."""
        if self.record.callback_at is None:
            return None
        return self.record.callback_at - self.record.dispatched_at

    async def callback(self, within: float = 5.0) -> dict[str, Any]:
        """The accepted initial response body ``{"type": ..., "data": ...}``."""
        return await self.scenario.wait(
            lambda: self.record.callback,
            what=f"a response to interaction {self.id}",
            within=within,
            record=self.record,
        )

    async def reply(self, within: float = 5.0) -> SentMessage:
        """The original response once final (a deferral waits for its edit or followup)."""
        await self.scenario.wait(
            lambda: self.record.original_ready,
            what=f"the final original response to interaction {self.id}",
            within=within,
            record=self.record,
        )
        assert self.record.original_id is not None
        return self.scenario.message(self.record.original_id)

    async def followups(self, count: int, within: float = 5.0) -> list[SentMessage]:
        """The first ``count`` followup messages (not counting one that resolved a deferral)."""
        await self.scenario.wait(
            lambda: len(self.record.followup_ids) >= count,
            what=f"{count} followup(s) to interaction {self.id}",
            within=within,
            record=self.record,
        )
        return [self.scenario.message(i) for i in self.record.followup_ids[:count]]

    async def messages(
        self,
        *,
        until: Callable[[list[SentMessage]], bool] | None = None,
        within: float = 5.0,
        quiet: float = 0.15,
    ) -> list[SentMessage]:
        """The final original response and every followup, in order, once the bot is done.

        The bot sends no "done" signal, so: wait for the original response (and for ``until``,
        given the messages so far, to hold), then until no new followup came for ``quiet``
        seconds. ``until`` makes multi-message answers robust on a slow machine; ``quiet``
        catches anything sent after what the test expected.
        """
        await self.reply(within)
        if until is not None:
            await self.scenario.wait(
                lambda: until(self._sent()),
                what=f"the expected messages answering interaction {self.id}",
                within=within,
                record=self.record,
            )
        while True:
            seen = len(self.record.followup_ids)
            try:
                await self.scenario.standin.wait_for(
                    functools.partial(self._followups_beyond, seen),
                    within=quiet,
                    what="another followup",
                    abort=self.scenario.bot.exit_reason,
                )
            except TimeoutError:
                return self._sent()

    def _followups_beyond(self, seen: int) -> bool:
        return len(self.record.followup_ids) > seen

    def _sent(self) -> list[SentMessage]:
        ids = [self.record.original_id] if self.record.original_ready else []
        return [self.scenario.message(i) for i in [*ids, *self.record.followup_ids] if i]

    async def choices(self, within: float = 5.0) -> list[dict[str, Any]]:
        body = await self.callback(within)
        if body["type"] != 8:
            raise AssertionError(f"expected autocomplete choices (type 8), got {body}")
        return body["data"]["choices"]

    async def modal(self, within: float = 5.0) -> dict[str, Any]:
        body = await self.callback(within)
        if body["type"] != 9:
            raise AssertionError(f"expected a modal (type 9), got {body}")
        return body["data"]


class Scenario:
    """Acts as Discord users: sends interactions built from the bot's registered commands."""

    def __init__(self, standin: DiscordStandIn, bot: BotProcess) -> None:
        self.standin = standin
        self.bot = bot
        self._checkpoint = 0

    @property
    def world(self) -> World:
        return self.standin.world

    def user(self, user: str | User) -> User:
        return self.world.user(user)

    def channel(self, channel: str | Channel, user: User | None = None) -> Channel:
        """A guild channel by name, or ``"dm"`` for the bot's DM with ``user``."""
        if isinstance(channel, Channel):
            return channel
        if channel == "dm":
            if user is None:
                raise ScenarioError("a DM needs a user")
            return self.world.dm_channel(user)
        return self.world.guild.channel(channel)

    async def wait(
        self,
        predicate: Callable[[], T | None],
        *,
        what: str,
        within: float = 5.0,
        record: InteractionRecord | None = None,
    ) -> T:
        """Wait on the stand-in; on failure, explain with the bot's output and refusals."""
        try:
            return await self.standin.wait_for(
                predicate, within=within, what=what, abort=self.bot.exit_reason
            )
        except TimeoutError as error:
            details = [str(error)]
            if record is not None and record.rejected:
                details += [
                    f"refused answer: {r.method} {r.path} -> {r.status} {r.response}"
                    for r in record.rejected
                ]
            details += [
                f"refused request: {r.method} {r.path} -> {r.status} {r.response}"
                for r in self.standin.errors[-5:]
            ]
            raise AssertionError("\n".join([*details, self.bot.tail()])) from None

    async def _send(self, payload: dict[str, Any]) -> InteractionHandle:
        if not self.bot.running:
            raise AssertionError(f"the bot is not running\n{self.bot.tail()}")
        return InteractionHandle(self, await self.standin.send_interaction(payload))

    async def message_command(
        self, name: str, message: Mapping[str, Any], *, as_user: str | User = "alice"
    ) -> InteractionHandle:
        """``as_user`` picks Apps → ``name`` on ``message`` (a message payload)."""
        who = self.user(as_user)
        channel = self.world.find_channel(int(message["channel_id"]))
        if channel is None:
            raise ScenarioError(f"message {message['id']} is in no known channel")
        commands = [
            c
            for scope in (channel.guild_id, None)
            for c in self.standin.commands.get(scope, [])
            if c["name"] == name and c.get("type") == MESSAGE_COMMAND
        ]
        if not commands:
            raise ScenarioError(f"no message command {name!r} is registered")
        payload = message_command_interaction(
            self.world, commands[0], message, user=who, channel=channel
        )
        return await self._send(payload)

    def _command(self, name: str, channel: Channel) -> dict[str, Any]:
        try:
            return self.standin.registered_command(name, guild_id=channel.guild_id)
        except KeyError as error:
            raise ScenarioError(str(error)) from None

    def build_slash(
        self,
        name: str,
        subcommand: str | None = None,
        /,
        *,
        as_user: str | User = "alice",
        in_channel: str | Channel = "general",
        locale: str = "en-US",
        bypass_permissions: bool = False,
        options: Mapping[str, Any] | None = None,
        **kw_options: Any,
    ) -> dict[str, Any]:
        """The INTERACTION_CREATE payload :meth:`slash` would send, without sending it.

        For input Discord's client refuses (an out-of-range number, a DM-less command in a DM):
        build a valid payload, change it, and send it with :meth:`send_raw_interaction`.
        """
        who = self.user(as_user)
        where = self.channel(in_channel, who)
        return command_interaction(
            self.world,
            self._command(name, where),
            user=who,
            channel=where,
            subcommand=subcommand,
            options={**(options or {}), **kw_options},
            locale=locale,
            store_upload=self._store_upload,
            bypass_permissions=bypass_permissions,
        )

    async def slash(
        self,
        name: str,
        subcommand: str | None = None,
        /,
        *,
        as_user: str | User = "alice",
        in_channel: str | Channel = "general",
        locale: str = "en-US",
        bypass_permissions: bool = False,
        options: Mapping[str, Any] | None = None,
        **kw_options: Any,
    ) -> InteractionHandle:
        """``as_user`` runs ``/name [subcommand] option:value...`` in ``in_channel``.

        Options go as keywords or, for names that are not identifiers, in ``options``. Values:
        str/int/float/bool, a user name or :class:`User`, a channel name or :class:`Channel`, a
        role name, an :class:`Upload` for attachments.
        """
        payload = self.build_slash(
            name,
            subcommand,
            as_user=as_user,
            in_channel=in_channel,
            locale=locale,
            bypass_permissions=bypass_permissions,
            options=options,
            **kw_options,
        )
        return await self._send(payload)

    async def autocomplete(
        self,
        name: str,
        focused: str,
        typed: str,
        subcommand: str | None = None,
        /,
        *,
        as_user: str | User = "alice",
        in_channel: str | Channel = "general",
        locale: str = "en-US",
        options: Mapping[str, Any] | None = None,
        **kw_options: Any,
    ) -> list[dict[str, Any]]:
        """``as_user`` types ``typed`` into option ``focused`` of ``/name``; returns the choices."""
        who = self.user(as_user)
        where = self.channel(in_channel, who)
        payload = command_interaction(
            self.world,
            self._command(name, where),
            user=who,
            channel=where,
            subcommand=subcommand,
            options={**(options or {}), **kw_options, focused: typed},
            focused=focused,
            locale=locale,
            store_upload=self._store_upload,
        )
        return await (await self._send(payload)).choices()

    async def click(
        self,
        message: SentMessage | int,
        custom_id: str,
        *,
        as_user: str | User = "alice",
        values: list[str] | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """``as_user`` clicks the button (or picks ``values`` in the select) ``custom_id``."""
        stored = self.standin.messages.get(message if isinstance(message, int) else message.id)
        if stored is None or stored.deleted:
            raise ScenarioError(f"message {message} does not exist (any more)")
        who = self.user(as_user)
        channel = self.world.find_channel(stored.channel_id)
        assert channel is not None
        payload = component_interaction(
            self.world,
            stored.payload,
            custom_id=custom_id,
            user=who,
            channel=channel,
            visible_to=stored.visible_to,
            values=values,
            locale=locale,
        )
        return await self._send(payload)

    async def submit_modal(
        self, opened_by: InteractionHandle, fields: Mapping[str, str | Sequence[str]]
    ) -> InteractionHandle:
        """Fill in and submit the modal the bot opened in answer to ``opened_by``; ``fields``
        by custom id (text for a text input, a list of values for a select)."""
        modal = await opened_by.modal()
        who = self.world.user_by_id(opened_by.record.user_id)
        channel = self.world.find_channel(opened_by.record.channel_id)
        assert who is not None
        assert channel is not None
        submission = modal_submit_interaction(
            self.world,
            modal,
            fields,
            user=who,
            channel=channel,
            locale=opened_by.record.payload.get("locale", "en-US"),
        )
        return await self._send(submission)

    async def send_raw_interaction(self, payload: dict[str, Any]) -> InteractionHandle:
        """Dispatch an INTERACTION_CREATE exactly as given (for malformed-input tests)."""
        return await self._send(payload)

    def _store_upload(self, channel_id: int, upload: Upload) -> tuple[int, str]:
        """Keep an option's uploaded file where its attachment URL serves it to the bot."""
        return self.standin.store_attachment(channel_id, upload.filename, upload.data)

    def message(self, message_id: int) -> SentMessage:
        return SentMessage.of(self.standin, self.standin.messages[message_id])

    def channel_messages(self, channel: str | Channel) -> list[SentMessage]:
        """What everyone sees in ``channel``, oldest first."""
        target = self.channel(channel)
        return [SentMessage.of(self.standin, m) for m in self.standin.channel_messages(target.id)]

    def checkpoint(self) -> None:
        """Start a new window for :meth:`assert_clean`."""
        self._checkpoint = len(self.standin.requests)

    def assert_clean(self) -> None:
        """Since the checkpoint: no unknown route, no request refused, the bot still running."""
        since = self.standin.requests[self._checkpoint :]
        problems = [
            f"{r.method} {r.path} -> {r.status} {r.response}"
            for r in since
            if r.status >= 400 and not r.injected
        ]
        if not self.bot.running:
            problems.append(f"the bot is not running (exit {self.bot.returncode})")
        problems += [f"stand-in bug: {e}" for e in self.standin.internal_errors]
        if problems:
            raise AssertionError("\n".join([*problems, self.bot.tail()]))


__all__ = [
    "DEMO_ARGV",
    "EMBARGO_ARGV",
    "BotProcess",
    "InteractionHandle",
    "Scenario",
    "ScenarioError",
    "SentMessage",
    "Upload",
]
