"""A local stand-in for Discord's REST API (v10) and gateway, for end-to-end tests.

It serves what discord.py 2.7 uses on 127.0.0.1 only, records every request, answers with
Discord-shaped payloads and errors, and enforces the rules that bite real bots: the 3 second
deadline for an interaction's first response, a single acknowledgement per interaction, message and
autocomplete limits, channel permissions for channel messages. Routes it does not know answer
Discord's 404 and are listed in :attr:`DiscordStandIn.unknown_routes`, so gaps show up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from . import validation
from .gateway import GatewayConnection, GatewaySession, SentEvent
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
)
from .world import (
    ATTACH_FILES,
    DM_CHANNEL,
    MANAGE_MESSAGES,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Channel,
    World,
    default_world,
    iso_now,
    snowflake,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
DEFAULT_TOKEN = "MTE3.e2e-stand-in.not-a-real-token"  # fake: only ever sent to 127.0.0.1
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_EMBEDS = 1 << 2

# Which callback types Discord accepts for which interaction type.
ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {4, 5, 9, 12},
    MESSAGE_COMPONENT: {4, 5, 6, 7, 9, 12},
    AUTOCOMPLETE: {8},
    MODAL_SUBMIT: {4, 5, 6, 7},
}
# Gateway intents Discord calls privileged: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT.
GUILD_MEMBERS_INTENT = 1 << 1
PRIVILEGED_INTENTS = GUILD_MEMBERS_INTENT | (1 << 8) | (1 << 15)

T = TypeVar("T")


class ApiError(Exception):
    """Raised by a handler to answer with Discord's error body."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors

    @classmethod
    def form(cls, problems: validation.Problems) -> ApiError:
        body = validation.form_error(problems)
        return cls(400, 50035, body["message"], body["errors"])


@dataclass
class UploadedFile:
    """One ``files[n]`` part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str  # relative to /api/v10, e.g. "/users/@me"
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)
    at: float = field(default_factory=time.monotonic)
    status: int = 0
    response: Any = None
    injected: bool = False  # answered by a fault rule, not by the route


# Where the middleware leaves the parsed request for the route handlers.
RECORDED = web.RequestKey("recorded", RecordedRequest)


@dataclass
class FaultRule:
    """Answer the next ``count`` requests matching ``method`` and ``path`` with a failure."""

    method: str
    path: re.Pattern[str]
    status: int
    count: int
    retry_after: float
    is_global: bool
    body: Any
    hits: list[RecordedRequest] = field(default_factory=list)

    def matches(self, request: RecordedRequest) -> bool:
        return (
            len(self.hits) < self.count
            and self.method in (request.method, "*")
            and self.path.search(request.path) is not None
        )


@dataclass
class StoredMessage:
    """A message as Discord holds it, plus what the test wants to know about it."""

    payload: dict[str, Any]
    channel_id: int
    visible_to: int | None = None  # ephemeral: the only user who sees it
    interaction_id: int | None = None
    allowed_mentions: dict[str, Any] | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    deleted: bool = False

    @property
    def id(self) -> int:
        return int(self.payload["id"])


@dataclass
class InteractionRecord:
    """An interaction the stand-in dispatched, and every answer the bot gave to it."""

    payload: dict[str, Any]
    dispatched_at: float
    callback: dict[str, Any] | None = None  # the accepted initial response {type, data}
    callback_at: float | None = None
    callback_files: list[UploadedFile] = field(default_factory=list)
    rejected: list[RecordedRequest] = field(default_factory=list)  # late or duplicate answers
    original_id: int | None = None
    original_ready: bool = False  # the user sees a final (not "thinking...") original response
    followup_ids: list[int] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return self.payload["token"]

    @property
    def type(self) -> int:
        return self.payload["type"]

    @property
    def user_id(self) -> int:
        user = self.payload.get("member", {}).get("user") or self.payload.get("user")
        return int(user["id"])

    @property
    def callback_type(self) -> int | None:
        return None if self.callback is None else self.callback["type"]


class DiscordStandIn:
    """The stand-in server. ``async with DiscordStandIn() as standin:`` or start()/stop()."""

    def __init__(
        self,
        world: World | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        callback_deadline: float | None = 3.0,
        heartbeat_interval: float = 41.25,
    ) -> None:
        self.world = world or default_world()
        self.token = token
        # Discord refuses an interaction's first response after 3 s; None switches it off.
        self.callback_deadline = callback_deadline
        self.heartbeat_interval = heartbeat_interval
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[RecordedRequest] = []
        self.internal_errors: list[str] = []  # the stand-in's own bugs, never the bot's
        self.faults: list[FaultRule] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # None: global commands
        self.messages: dict[int, StoredMessage] = {}
        self.attachments: dict[int, bytes] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.sessions: list[GatewaySession] = []
        self.connections: list[GatewayConnection] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        self._add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # aiohttp has no public accessor for the bound port
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        log.info("Discord stand-in listening on %s", self.base_url)

    async def stop(self) -> None:
        for connection in self.connections:
            if connection.open:
                await connection.close(1001, "stand-in shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ------------------------------------------------------------------ waiting

    def notify(self) -> None:
        """Wake every :meth:`wait_for`; called after each change of recorded state."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self,
        predicate: Callable[[], T],
        *,
        within: float,
        what: str,
        abort: Callable[[], str | None] | None = None,
    ) -> T:
        """Return ``predicate()`` once truthy; ``abort()`` returning a reason fails early."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            result = predicate()
            if result:
                return result
            reason = abort() if abort else None
            if reason:
                raise AssertionError(f"gave up waiting for {what}: {reason}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {within:.1f}s waiting for {what}")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 429,
        count: int = 1,
        retry_after: float = 0.25,
        is_global: bool = False,
        body: Any = None,
    ) -> FaultRule:
        """Answer the next ``count`` matching requests with ``status`` instead of the route.

        ``path`` is a regex searched in the path relative to /api/v10 (``method`` may be ``*``).
        A 429 carries Discord's rate-limit headers and body (``retry_after``, ``global``); other
        statuses answer ``body`` or Discord's generic error for that status.
        """
        rule = FaultRule(
            method=method.upper(),
            path=re.compile(path),
            status=status,
            count=count,
            retry_after=retry_after,
            is_global=is_global,
            body=body,
        )
        self.faults.append(rule)
        return rule

    def _fault_response(self, rule: FaultRule, request: RecordedRequest) -> web.Response:
        if rule.status == 429:
            reset_after = rule.retry_after
            body = rule.body or {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.is_global,
                "code": 0,
            }
            headers = {
                "Retry-After": str(math.ceil(reset_after)),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": _bucket(request.method, request.path),
                "X-RateLimit-Scope": "global" if rule.is_global else "user",
                # discord.py treats a 429 without Via as a Cloudflare ban and does not retry.
                "Via": "1.1 google",
            }
            if rule.is_global:
                headers["X-RateLimit-Global"] = "true"
            return _json(body, status=429, headers=headers)
        if rule.body is not None and isinstance(rule.body, str):
            return web.Response(text=rule.body, status=rule.status, content_type="text/html")
        body = rule.body or {"message": f"{rule.status}: {_reason(rule.status)}", "code": 0}
        return _json(body, status=rule.status)

    # ------------------------------------------------------------------ recording

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        recorded = await _record(request)
        self.requests.append(recorded)
        request[RECORDED] = recorded
        rule = next((r for r in self.faults if r.matches(recorded)), None)
        if rule is not None:
            rule.hits.append(recorded)
            recorded.injected = True
            response: web.StreamResponse = self._fault_response(rule, recorded)
        elif not self._authorised(request, recorded.path):
            response = _json({"message": "401: Unauthorized", "code": 0}, status=401)
        else:
            try:
                response = await handler(request)
            except ApiError as error:
                response = _json(error.body, status=error.status)
            except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as error:
                self.unknown_routes.append(recorded)
                log.warning(
                    "stand-in has no route for %s %s%s",
                    recorded.method,
                    recorded.path,
                    f"?{request.query_string}" if request.query_string else "",
                )
                message = f"{error.status}: {_reason(error.status)}"
                response = _json({"message": message, "code": 0}, status=error.status)
            except Exception as error:
                # A bug in the stand-in, not in the bot: keep it apart so tests can fail on it.
                log.exception("stand-in failed on %s %s", recorded.method, recorded.path)
                self.internal_errors.append(f"{recorded.method} {recorded.path}: {error!r}")
                response = _json({"message": "500: Internal Server Error", "code": 0}, status=500)
        recorded.status = response.status
        if isinstance(response, web.Response) and response.body is not None:
            text = response.text
            with contextlib.suppress(ValueError, TypeError):
                recorded.response = json.loads(text) if text else None
        if rule is None and 200 <= response.status < 300:
            bucket = _bucket(recorded.method, recorded.path)
            response.headers.update(
                {
                    "X-RateLimit-Limit": "50",
                    "X-RateLimit-Remaining": "49",
                    "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
                    "X-RateLimit-Reset-After": "1.000",
                    "X-RateLimit-Bucket": bucket,
                }
            )
        if response.status >= 400 and rule is None:
            log.info(
                "stand-in answered %s %s with %s", recorded.method, recorded.path, response.status
            )
        self.notify()
        return response

    def _authorised(self, request: web.Request, path: str) -> bool:
        # Interaction callbacks and webhook-token routes are authorised by their token alone.
        if path.startswith("/interactions/") or re.match(r"^/webhooks/\d+/[^/]+", path):
            return True
        return request.headers.get("Authorization") == f"Bot {self.token}"

    @property
    def errors(self) -> list[RecordedRequest]:
        """Requests the stand-in refused on its own (4xx/5xx not injected by a fault rule)."""
        return [r for r in self.requests if r.status >= 400 and not r.injected]

    def find_requests(self, method: str, path: str) -> list[RecordedRequest]:
        """Recorded requests whose method matches and whose path matches the regex ``path``."""
        pattern = re.compile(path)
        return [
            r for r in self.requests if method.upper() in (r.method, "*") and pattern.search(r.path)
        ]

    # ------------------------------------------------------------------ routes

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        api = API_PREFIX
        app_cmds = api + "/applications/{app_id}/commands"
        guild_cmds = api + "/applications/{app_id}/guilds/{guild_id}/commands"
        webhook = api + "/webhooks/{app_id}/{token}"
        routes = [
            ("GET", "/gateway", self._gateway),
            ("GET", "/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment),
            ("GET", api + "/gateway", self._get_gateway),
            ("GET", api + "/gateway/bot", self._get_gateway_bot),
            ("GET", api + "/users/@me", self._get_me),
            ("POST", api + "/users/@me/channels", self._create_dm),
            ("GET", api + "/users/{user_id}", self._get_user),
            ("GET", api + "/oauth2/applications/@me", self._get_application),
            ("GET", api + "/applications/@me", self._get_application),
            ("GET", app_cmds, self._list_commands),
            ("PUT", app_cmds, self._bulk_commands),
            ("POST", app_cmds, self._upsert_command),
            ("GET", app_cmds + "/{command_id}", self._get_command),
            ("PATCH", app_cmds + "/{command_id}", self._edit_command),
            ("DELETE", app_cmds + "/{command_id}", self._delete_command),
            ("GET", guild_cmds, self._list_commands),
            ("PUT", guild_cmds, self._bulk_commands),
            ("POST", guild_cmds, self._upsert_command),
            ("GET", guild_cmds + "/permissions", self._command_permissions),
            ("GET", guild_cmds + "/{command_id}", self._get_command),
            ("PATCH", guild_cmds + "/{command_id}", self._edit_command),
            ("DELETE", guild_cmds + "/{command_id}", self._delete_command),
            ("POST", api + "/interactions/{interaction_id}/{token}/callback", self._callback),
            ("POST", webhook, self._followup),
            ("GET", webhook + "/messages/{message_id}", self._get_webhook_message),
            ("PATCH", webhook + "/messages/{message_id}", self._edit_webhook_message),
            ("DELETE", webhook + "/messages/{message_id}", self._delete_webhook_message),
            ("GET", api + "/channels/{channel_id}", self._get_channel),
            ("GET", api + "/channels/{channel_id}/messages", self._channel_history),
            ("POST", api + "/channels/{channel_id}/messages", self._create_message),
            ("GET", api + "/channels/{channel_id}/messages/{message_id}", self._get_message),
            ("PATCH", api + "/channels/{channel_id}/messages/{message_id}", self._edit_message),
            ("DELETE", api + "/channels/{channel_id}/messages/{message_id}", self._delete_message),
            ("POST", api + "/channels/{channel_id}/typing", self._typing),
            ("GET", api + "/guilds/{guild_id}", self._get_guild),
            ("GET", api + "/guilds/{guild_id}/channels", self._get_guild_channels),
            ("GET", api + "/guilds/{guild_id}/roles", self._get_guild_roles),
            ("GET", api + "/guilds/{guild_id}/members", self._get_guild_members),
            ("GET", api + "/guilds/{guild_id}/members/{user_id}", self._get_guild_member),
        ]
        for method, path, handler in routes:
            router.add_route(method, path, handler)

    # --- small helpers

    def _channel(self, request: web.Request) -> Channel:
        channel = self.world.find_channel(_snowflake_param(request, "channel_id"))
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    def _check_app(self, request: web.Request) -> None:
        if request.match_info["app_id"] != str(self.world.application.id):
            raise ApiError(403, 50001, "Missing Access")

    # --- gateway and identity

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000 - len(self.sessions),
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_me(self, request: web.Request) -> web.Response:
        payload = self.world.bot_user.to_payload()
        payload.update(verified=True, mfa_enabled=False, email=None, locale="en-US")
        return _json(payload)

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.world.user_by_id(_snowflake_param(request, "user_id"))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return _json(user.to_payload())

    async def _create_dm(self, request: web.Request) -> web.Response:
        body = request[RECORDED].json or {}
        user = self.world.user_by_id(int(body.get("recipient_id", 0)))
        if user is None:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        return _json(self.world.dm_channel(user).to_payload())

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json(self.world.application.to_payload())

    # --- application commands

    def _command_scope(self, request: web.Request) -> int | None:
        self._check_app(request)
        if "guild_id" not in request.match_info:
            return None
        guild_id = _snowflake_param(request, "guild_id")
        if self.world.find_guild(guild_id) is None:
            raise ApiError(403, 50001, "Missing Access")
        return guild_id

    def _stored_command(self, body: dict[str, Any], scope: int | None, old: dict | None) -> dict:
        command = {
            "type": 1,
            "default_member_permissions": None,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "description": "",
            "options": [],
            **body,
            "id": old["id"] if old else str(snowflake()),
            "application_id": str(self.world.application.id),
            "version": str(snowflake()),
        }
        if command["default_member_permissions"] is not None:
            # Clients may send a number; Discord stores and returns a decimal string.
            command["default_member_permissions"] = str(int(command["default_member_permissions"]))
        if scope is not None:
            command["guild_id"] = str(scope)
        return command

    def _validate_commands(self, bodies: list[dict[str, Any]], scope: int | None) -> None:
        problems: validation.Problems = []
        if len([b for b in bodies if b.get("type", 1) == 1]) > 100:
            problems.append(("_", "Maximum number of application commands reached (100)."))
        seen: set[tuple[int, str]] = set()
        for i, body in enumerate(bodies):
            problems.extend(validation.check_command(body, f"{i}."))
            key = (body.get("type", 1), body.get("name", ""))
            if key in seen:
                problems.append((f"{i}.name", f"Application command names must be unique: {key}"))
            seen.add(key)
        if problems:
            raise ApiError.form(problems)

    async def _list_commands(self, request: web.Request) -> web.Response:
        return _json(self.commands.get(self._command_scope(request), []))

    async def _bulk_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        bodies = request[RECORDED].json
        if not isinstance(bodies, list):
            raise ApiError.form([("_", "Must be an array.")])
        self._validate_commands(bodies, scope)
        old = {(c["type"], c["name"]): c for c in self.commands.get(scope, [])}
        self.commands[scope] = [
            self._stored_command(b, scope, old.get((b.get("type", 1), b["name"]))) for b in bodies
        ]
        return _json(self.commands[scope])

    async def _upsert_command(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        body = request[RECORDED].json or {}
        self._validate_commands([body], scope)
        commands = self.commands.setdefault(scope, [])
        key = (body.get("type", 1), body.get("name"))
        old = next((c for c in commands if (c["type"], c["name"]) == key), None)
        stored = self._stored_command(body, scope, old)
        if old:
            commands[commands.index(old)] = stored
        else:
            commands.append(stored)
        return _json(stored, status=200 if old else 201)

    def _find_command(self, request: web.Request) -> tuple[int | None, dict[str, Any]]:
        scope = self._command_scope(request)
        command_id = request.match_info["command_id"]
        for command in self.commands.get(scope, []):
            if command["id"] == command_id:
                return scope, command
        raise ApiError(404, 10063, "Unknown application command")

    async def _get_command(self, request: web.Request) -> web.Response:
        return _json(self._find_command(request)[1])

    async def _edit_command(self, request: web.Request) -> web.Response:
        scope, command = self._find_command(request)
        merged = {**command, **(request[RECORDED].json or {})}
        self._validate_commands([merged], scope)
        command.update(merged, version=str(snowflake()))
        return _json(command)

    async def _delete_command(self, request: web.Request) -> web.Response:
        scope, command = self._find_command(request)
        self.commands[scope].remove(command)
        return web.Response(status=204)

    async def _command_permissions(self, request: web.Request) -> web.Response:
        self._command_scope(request)
        return _json([])

    def registered_command(self, name: str, *, guild_id: int | None = None) -> dict[str, Any]:
        """The registered chat-input command ``name``: the guild's first, then the global one."""
        scopes = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name and command["type"] == 1:
                    return command
        registered = sorted(c["name"] for cs in self.commands.values() for c in cs)
        raise KeyError(f"/{name} is not registered; registered commands: {registered}")

    # --- interactions

    async def send_interaction(self, payload: dict[str, Any]) -> InteractionRecord:
        """Dispatch INTERACTION_CREATE and start tracking the bot's answers to it."""
        record = InteractionRecord(payload=payload, dispatched_at=time.monotonic())
        self.interactions[record.id] = record
        await self.dispatch("INTERACTION_CREATE", payload)
        record.dispatched_at = time.monotonic()
        return record

    def _interaction_by_token(self, request: web.Request) -> InteractionRecord:
        self._check_app(request)
        token = request.match_info["token"]
        record = next((i for i in self.interactions.values() if i.token == token), None)
        if record is None or record.callback is None:
            # Discord knows no webhook for an interaction that has not been answered yet.
            raise ApiError(404, 10015, "Unknown Webhook")
        return record

    async def _callback(self, request: web.Request) -> web.Response:
        recorded: RecordedRequest = request[RECORDED]
        record = self.interactions.get(_snowflake_param(request, "interaction_id"))
        if record is None or record.token != request.match_info["token"]:
            raise ApiError(404, 10062, "Unknown interaction")
        if record.callback is not None:
            record.rejected.append(recorded)
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        elapsed = time.monotonic() - record.dispatched_at
        if self.callback_deadline is not None and elapsed > self.callback_deadline:
            record.rejected.append(recorded)
            log.warning("interaction %s answered after %.2fs: refused", record.id, elapsed)
            raise ApiError(404, 10062, "Unknown interaction")
        body = recorded.json or {}
        kind = body.get("type")
        data = body.get("data") or {}
        if kind not in ALLOWED_CALLBACKS.get(record.type, set()):
            raise ApiError.form([("type", f"Invalid callback type {kind} for this interaction")])
        message: StoredMessage | None = None
        if kind == 4:
            message = self._new_message(
                channel_id=int(record.payload["channel_id"]),
                body=data,
                files=recorded.files,
                interaction=record,
                request=recorded,
            )
            record.original_id, record.original_ready = message.id, True
        elif kind == 5:
            message = self._new_message(
                channel_id=int(record.payload["channel_id"]),
                body={"flags": int(data.get("flags") or 0) & EPHEMERAL},
                files=[],
                interaction=record,
                request=recorded,
                loading=True,
            )
            record.original_id, record.original_ready = message.id, False
        elif kind in (6, 7):
            target = self._component_message(record)
            record.original_id = target.id if target else None
            if kind == 7 and target is not None:
                self._apply_edit(target, data, recorded.files, recorded)
                message = target
            record.original_ready = kind == 7
        elif kind == 8:
            problems = validation.check_choices(data.get("choices") or [])
            if problems:
                raise ApiError.form(problems)
        elif kind == 9:
            problems: validation.Problems = []
            validation.check_length(problems, "data.title", data.get("title"), 45, 1)
            validation.check_length(problems, "data.custom_id", data.get("custom_id"), 100, 1)
            if not 1 <= len(data.get("components") or []) <= 5:
                problems.append(("data.components", "Must be between 1 and 5 in length."))
            if problems:
                raise ApiError.form(problems)
        record.callback = body
        record.callback_at = time.monotonic()
        record.callback_files = recorded.files
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        interaction: dict[str, Any] = {"id": str(record.id), "type": record.type}
        if message is not None:
            interaction.update(
                response_message_id=str(message.id),
                response_message_loading=bool(message.payload["flags"] & LOADING),
                response_message_ephemeral=bool(message.payload["flags"] & EPHEMERAL),
            )
        resource: dict[str, Any] = {"type": kind}
        if message is not None and kind in (4, 7):
            resource["message"] = message.payload
        return _json({"interaction": interaction, "resource": resource})

    def _component_message(self, record: InteractionRecord) -> StoredMessage | None:
        raw = record.payload.get("message")
        return self.messages.get(int(raw["id"])) if raw else None

    async def _followup(self, request: web.Request) -> web.Response:
        recorded: RecordedRequest = request[RECORDED]
        record = self._interaction_by_token(request)
        body = recorded.json or {}
        original = self.messages.get(record.original_id or 0)
        if record.callback_type == 5 and original is not None and not record.original_ready:
            # The first followup after a "thinking" deferral replaces the loading message; its
            # own ephemeral flag is ignored: the deferral already decided who sees it.
            edit = {k: v for k, v in body.items() if k != "flags"}
            self._apply_edit(original, edit, recorded.files, recorded)
            record.original_ready = True
            message = original
        else:
            message = self._new_message(
                channel_id=int(record.payload["channel_id"]),
                body=body,
                files=recorded.files,
                interaction=record,
                request=recorded,
            )
            record.followup_ids.append(message.id)
        if request.query.get("wait", "").lower() in ("1", "true"):
            return _json(message.payload)
        return web.Response(status=204)

    def _webhook_message(self, request: web.Request) -> tuple[InteractionRecord, StoredMessage]:
        record = self._interaction_by_token(request)
        raw = request.match_info["message_id"]
        message_id = record.original_id if raw == "@original" else _int_or_none(raw)
        own = {record.original_id, *record.followup_ids}
        message = self.messages.get(message_id or 0)
        if message is None or message.deleted or message_id not in own:
            raise ApiError(404, 10008, "Unknown Message")
        return record, message

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        return _json(self._webhook_message(request)[1].payload)

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        recorded: RecordedRequest = request[RECORDED]
        record, message = self._webhook_message(request)
        self._apply_edit(message, recorded.json or {}, recorded.files, recorded)
        if message.id == record.original_id:
            record.original_ready = True
        return _json(message.payload)

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_message(request)
        message.deleted = True
        return web.Response(status=204)

    # --- messages

    def _new_message(
        self,
        *,
        channel_id: int,
        body: dict[str, Any],
        files: list[UploadedFile],
        request: RecordedRequest,
        interaction: InteractionRecord | None = None,
        loading: bool = False,
    ) -> StoredMessage:
        """Store a message the bot sends; ``loading`` is the empty "thinking..." placeholder."""
        problems = validation.check_message(body)
        if problems:
            raise ApiError.form(problems)
        flags = int(body.get("flags") or 0)
        bot = self.world.bot_user
        payload: dict[str, Any] = {
            "id": str(snowflake()),
            "type": 0,
            "channel_id": str(channel_id),
            "author": bot.to_payload(),
            "content": body.get("content") or "",
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._attachments(channel_id, body, files, []),
            "embeds": [_normalise_embed(e) for e in body.get("embeds") or []],
            "components": body.get("components") or [],
            "pinned": False,
            "flags": flags | (LOADING if loading else 0),
        }
        if body.get("message_reference"):
            payload["message_reference"] = body["message_reference"]
            payload["type"] = 19
        if interaction is not None:
            app_id = str(self.world.application.id)
            user = (interaction.payload.get("member") or {}).get("user") or interaction.payload[
                "user"
            ]
            payload.update(
                webhook_id=app_id,
                application_id=app_id,
                interaction_metadata={
                    "id": str(interaction.id),
                    "type": interaction.type,
                    "user": user,
                    "authorizing_integration_owners": interaction.payload[
                        "authorizing_integration_owners"
                    ],
                },
            )
            if interaction.type == APPLICATION_COMMAND:
                payload["type"] = 20
                payload["interaction_metadata"]["name"] = interaction.payload["data"]["name"]
                payload["interaction_metadata"]["command_type"] = 1
        self._fill_mentions(payload)
        if not loading and not validation.has_body(payload):
            raise ApiError(400, 50006, "Cannot send an empty message")
        message = StoredMessage(
            payload=payload,
            channel_id=channel_id,
            visible_to=interaction.user_id if interaction and flags & EPHEMERAL else None,
            interaction_id=interaction.id if interaction else None,
            allowed_mentions=body.get("allowed_mentions"),
            requests=[request],
        )
        self.messages[message.id] = message
        channel = self.world.find_channel(channel_id)
        if channel is not None and message.visible_to is None:
            channel.last_message_id = message.id
        return message

    def _apply_edit(
        self,
        message: StoredMessage,
        body: dict[str, Any],
        files: list[UploadedFile],
        request: RecordedRequest,
    ) -> None:
        problems = validation.check_message(body)
        if problems:
            raise ApiError.form(problems)
        payload = dict(message.payload)
        if "content" in body:
            payload["content"] = body["content"] or ""
        if "embeds" in body:
            payload["embeds"] = [_normalise_embed(e) for e in body["embeds"] or []]
        if "components" in body:
            payload["components"] = body["components"] or []
        if "attachments" in body or files:
            keep = payload["attachments"] if "attachments" not in body else []
            payload["attachments"] = self._attachments(
                message.channel_id, body, files, keep, existing=payload["attachments"]
            )
        flags = payload["flags"] & ~LOADING
        if "flags" in body and body["flags"] is not None:
            flags = (flags & ~SUPPRESS_EMBEDS) | (int(body["flags"]) & SUPPRESS_EMBEDS)
        payload["flags"] = flags
        if not message.payload["flags"] & LOADING:
            payload["edited_timestamp"] = iso_now()
        self._fill_mentions(payload)
        if not validation.has_body(payload):
            raise ApiError(400, 50006, "Cannot send an empty message")
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        message.payload = payload
        message.requests.append(request)

    def _attachments(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: list[UploadedFile],
        keep: list[dict[str, Any]],
        existing: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Attachment objects: ``keep`` plus listed existing ones plus one per uploaded file."""
        result = list(keep)
        by_index = {}
        existing_ids = {a["id"]: a for a in existing or []}
        for entry in body.get("attachments") or []:
            entry_id = str(entry.get("id"))
            if entry_id in existing_ids:
                result.append(existing_ids[entry_id])
            else:
                by_index[entry_id] = entry
        for index, upload in enumerate(files):
            match = re.fullmatch(r"files\[(\d+)\]", upload.field)
            key = match.group(1) if match else str(index)
            meta = by_index.get(key, {})
            filename = meta.get("filename") or upload.filename or f"file{index}"
            attachment_id = snowflake()
            url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{filename}"
            self.attachments[attachment_id] = upload.data
            attachment = {
                "id": str(attachment_id),
                "filename": filename,
                "size": len(upload.data),
                "url": url,
                "proxy_url": url,
                "content_type": mimetypes.guess_type(filename)[0] or upload.content_type,
            }
            if meta.get("description"):
                attachment["description"] = meta["description"]
            result.append(attachment)
        return result

    def _fill_mentions(self, payload: dict[str, Any]) -> None:
        """Who the content mentions (``mentions``), as Discord reports it on the message."""
        content = payload.get("content") or ""
        users = [self.world.user_by_id(int(m)) for m in re.findall(r"<@!?(\d+)>", content)]
        payload["mentions"] = [u.to_payload() for u in users if u is not None]
        payload["mention_roles"] = re.findall(r"<@&(\d+)>", content)
        payload["mention_everyone"] = "@everyone" in content or "@here" in content

    def _bot_permissions(self, channel: Channel) -> int:
        if channel.type == DM_CHANNEL:
            return VIEW_CHANNEL | SEND_MESSAGES | ATTACH_FILES
        guild = self.world.find_guild(channel.guild_id or 0)
        assert guild is not None
        return guild.permissions_in(self.world.bot_user.id, channel)

    def _channel_message(self, request: web.Request) -> tuple[Channel, StoredMessage]:
        channel = self._channel(request)
        if not self._bot_permissions(channel) & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        message = self.messages.get(_snowflake_param(request, "message_id"))
        if (
            message is None
            or message.deleted
            or message.channel_id != channel.id
            or message.visible_to is not None
        ):
            raise ApiError(404, 10008, "Unknown Message")
        return channel, message

    async def _create_message(self, request: web.Request) -> web.Response:
        recorded: RecordedRequest = request[RECORDED]
        channel = self._channel(request)
        perms = self._bot_permissions(channel)
        if not perms & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if not perms & SEND_MESSAGES or (recorded.files and not perms & ATTACH_FILES):
            raise ApiError(403, 50013, "Missing Permissions")
        body = dict(recorded.json or {})
        # Only interaction responses can be ephemeral; Discord drops the flag elsewhere.
        body["flags"] = int(body.get("flags") or 0) & ~EPHEMERAL
        message = self._new_message(
            channel_id=channel.id, body=body, files=recorded.files, request=recorded
        )
        return _json(message.payload)

    async def _get_message(self, request: web.Request) -> web.Response:
        return _json(self._channel_message(request)[1].payload)

    async def _edit_message(self, request: web.Request) -> web.Response:
        recorded: RecordedRequest = request[RECORDED]
        _, message = self._channel_message(request)
        if message.payload["author"]["id"] != str(self.world.bot_user.id):
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        self._apply_edit(message, recorded.json or {}, recorded.files, recorded)
        return _json(message.payload)

    async def _delete_message(self, request: web.Request) -> web.Response:
        channel, message = self._channel_message(request)
        own = message.payload["author"]["id"] == str(self.world.bot_user.id)
        if not own and not self._bot_permissions(channel) & MANAGE_MESSAGES:
            raise ApiError(403, 50013, "Missing Permissions")
        message.deleted = True
        return web.Response(status=204)

    async def _channel_history(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if not self._bot_permissions(channel) & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        before = _int_or_none(request.query.get("before"))
        after = _int_or_none(request.query.get("after"))
        visible = [
            m
            for m in self.channel_messages(channel.id)
            if (before is None or m.id < before) and (after is None or m.id > after)
        ]
        visible.sort(key=lambda m: m.id, reverse=True)
        return _json([m.payload for m in visible[:limit]])

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if not self._bot_permissions(channel) & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        return _json(channel.to_payload())

    async def _typing(self, request: web.Request) -> web.Response:
        self._channel(request)
        return web.Response(status=204)

    def channel_messages(self, channel_id: int) -> list[StoredMessage]:
        """Messages everyone in the channel sees (not ephemeral, not deleted), oldest first."""
        return sorted(
            (
                m
                for m in self.messages.values()
                if m.channel_id == channel_id and m.visible_to is None and not m.deleted
            ),
            key=lambda m: m.id,
        )

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(_snowflake_param(request, "attachment_id"))
        if data is None:
            raise web.HTTPNotFound
        return web.Response(body=data, content_type="application/octet-stream")

    # --- guilds

    def _guild(self, request: web.Request) -> Any:
        guild = self.world.find_guild(_snowflake_param(request, "guild_id"))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        payload = guild.to_rest_payload()
        if request.query.get("with_counts", "").lower() in ("1", "true"):
            payload.update(
                approximate_member_count=len(guild.members), approximate_presence_count=0
            )
        return _json(payload)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        return _json([c.to_payload() for c in self._guild(request).channels])

    async def _get_guild_roles(self, request: web.Request) -> web.Response:
        return _json([r.to_payload() for r in self._guild(request).roles])

    async def _get_guild_members(self, request: web.Request) -> web.Response:
        limit = max(1, min(1000, int(request.query.get("limit", "1"))))
        members = sorted(self._guild(request).members, key=lambda m: m.user.id)
        return _json([m.to_payload() for m in members[:limit]])

    async def _get_guild_member(self, request: web.Request) -> web.Response:
        member = self._guild(request).member(_snowflake_param(request, "user_id"))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return _json(member.to_payload())

    # ------------------------------------------------------------------ gateway

    @property
    def current_session(self) -> GatewaySession | None:
        """The most recent identified session whose websocket is open."""
        for session in reversed(self.sessions):
            if session.connection is not None and session.connection.open:
                return session
        return None

    async def dispatch(self, name: str, data: Any) -> SentEvent:
        """Send a DISPATCH event to the current session (buffered for RESUME if it is away)."""
        session = self.current_session or (self.sessions[-1] if self.sessions else None)
        if session is None:
            raise RuntimeError(f"no gateway session to dispatch {name} to")
        return await self._dispatch_to(session, name, data)

    async def _dispatch_to(self, session: GatewaySession, name: str, data: Any) -> SentEvent:
        session.seq += 1
        event = SentEvent(seq=session.seq, name=name, data=data)
        session.events.append(event)
        connection = session.connection
        if connection is not None and connection.open:
            await connection.send({"op": 0, "t": name, "s": event.seq, "d": data})
        self.notify()
        return event

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: the client should reconnect and RESUME."""
        session = self._require_session()
        assert session.connection is not None
        await session.connection.send({"op": 7, "d": None})

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; with ``resumable=False`` the client must IDENTIFY again."""
        session = self._require_session()
        session.resumable = resumable
        assert session.connection is not None
        await session.connection.send({"op": 9, "d": resumable})

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the current websocket with ``code`` (4000 = unknown error: client resumes)."""
        session = self._require_session()
        assert session.connection is not None
        await session.connection.close(code, "stand-in dropped the connection")

    def _require_session(self) -> GatewaySession:
        session = self.current_session
        if session is None:
            raise RuntimeError("no open gateway session")
        return session

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        query = dict(request.query)
        connection = GatewayConnection(ws, query.get("compress"), query)
        self.connections.append(connection)
        self.notify()
        if query.get("v") != "10":
            await connection.close(4012, "Invalid API version")
            return ws
        if query.get("encoding", "json") != "json" or not connection.compression_supported:
            await connection.close(4002, "Decode error: unsupported encoding or compression")
            return ws
        await connection.send(
            {
                "op": 10,
                "s": None,
                "t": None,
                "d": {
                    "heartbeat_interval": int(self.heartbeat_interval * 1000),
                    "_trace": ['["discord-stand-in",{"micros":0}]'],
                },
            }
        )
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                await connection.close(4002, "Decode error")
                break
            try:
                frame = json.loads(message.data)
                op = frame["op"]
            except (ValueError, KeyError, TypeError):
                await connection.close(4002, "Decode error")
                break
            connection.received.append(frame)
            await self._on_frame(connection, op, frame.get("d"))
        connection.close_code = connection.close_code or ws.close_code
        log.info("gateway connection closed (%s)", connection.close_code)
        self.notify()
        return ws

    async def _on_frame(self, connection: GatewayConnection, op: int, data: Any) -> None:
        if op == 1:
            connection.heartbeats += 1
            await connection.send({"op": 11, "s": None, "t": None, "d": None})
        elif op == 2:
            await self._identify(connection, data or {})
        elif op == 6:
            await self._resume(connection, data or {})
        elif connection.session is None:
            await connection.close(4003, "Not authenticated")
        elif op == 8:
            await self._member_chunk(connection.session, data or {})
        elif op not in (3, 4):  # presence and voice state updates are only recorded
            await connection.close(4001, "Unknown opcode")
        self.notify()

    async def _identify(self, connection: GatewayConnection, data: dict[str, Any]) -> None:
        if connection.session is not None:
            await connection.close(4005, "Already authenticated")
            return
        if data.get("token") != self.token:
            await connection.close(4004, "Authentication failed")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.world.application.privileged_intents:
            await connection.close(4014, "Disallowed intent(s)")
            return
        session = GatewaySession(identify=data)
        session.connection = connection
        connection.session = session
        self.sessions.append(session)
        app = self.world.application
        me = self.world.bot_user.to_payload()
        me.update(verified=True, mfa_enabled=False, email=None)
        ready: dict[str, Any] = {
            "v": 10,
            "user": me,
            "user_settings": {},
            "session_type": "normal",
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "relationships": [],
            "private_channels": [],
            "presences": [],
            "guilds": [{"id": str(g.id), "unavailable": True} for g in self.world.guilds],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "auth": {},
            "application": {"id": str(app.id), "flags": app.flags},
            "_trace": ['["discord-stand-in",{"micros":0}]'],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._dispatch_to(session, "READY", ready)
        for guild in self.world.guilds:
            payload = guild.to_gateway_payload()
            if not intents & GUILD_MEMBERS_INTENT:
                # Without the members intent Discord sends only the bot's own member.
                payload["members"] = [m for m in payload["members"] if m["user"]["id"] == me["id"]]
            await self._dispatch_to(session, "GUILD_CREATE", payload)

    async def _resume(self, connection: GatewayConnection, data: dict[str, Any]) -> None:
        session = next((s for s in self.sessions if s.session_id == data.get("session_id")), None)
        if data.get("token") != self.token:
            await connection.close(4004, "Authentication failed")
            return
        if session is None or not session.resumable:
            await connection.send({"op": 9, "s": None, "t": None, "d": False})
            return
        if session.connection is not None and session.connection.open:
            await session.connection.close(4000, "Session resumed elsewhere")
        session.connection = connection
        connection.session = session
        seq = int(data.get("seq") or 0)
        for event in session.events:
            if event.seq > seq:
                await connection.send({"op": 0, "t": event.name, "s": event.seq, "d": event.data})
        await self._dispatch_to(session, "RESUMED", {"_trace": ["discord-stand-in"]})

    async def _member_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild = self.world.find_guild(int(data.get("guild_id", 0)))
        if guild is None:
            return
        query = (data.get("query") or "").lower()
        wanted = {int(u) for u in data.get("user_ids") or []}
        members = [
            m
            for m in guild.members
            if m.user.username.lower().startswith(query) and (not wanted or m.user.id in wanted)
        ]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [m.to_payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self._dispatch_to(session, "GUILD_MEMBERS_CHUNK", chunk)


# ---------------------------------------------------------------------- module helpers


async def _record(request: web.Request) -> RecordedRequest:
    recorded = RecordedRequest(
        method=request.method,
        path=request.path[len(API_PREFIX) :],
        query=dict(request.query),
        headers={
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "user-agent", "x-audit-log-reason")
        },
    )
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            data = await part.read(decode=False)  # type: ignore[union-attr]
            if part.name == "payload_json":
                recorded.json = json.loads(data)
            else:
                recorded.files.append(
                    UploadedFile(
                        field=part.name or "",
                        filename=part.filename,  # type: ignore[union-attr]
                        content_type=part.headers.get("Content-Type"),
                        data=bytes(data),
                    )
                )
    elif request.can_read_body:
        raw = await request.read()
        if raw:
            try:
                recorded.json = json.loads(raw)
            except ValueError:
                recorded.json = raw.decode(errors="replace")
    return recorded


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response whose Content-Type is exactly ``application/json``, as Discord sends it:
    discord.py compares the header verbatim, so aiohttp's ``; charset=utf-8`` would make it
    treat every body as text."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _normalise_embed(embed: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich", **embed}


def _bucket(method: str, path: str) -> str:
    template = re.sub(r"\d{15,}", ":id", path)
    return hashlib.sha1(f"{method} {template}".encode()).hexdigest()[:16]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _snowflake_param(request: web.Request, name: str) -> int:
    value = _int_or_none(request.match_info.get(name))
    if value is None:
        raise ApiError(404, 0, f"404: Not Found ({name})")
    return value
