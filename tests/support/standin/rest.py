"""Discord's REST API (v10) as the stand-in answers it, independent of how requests arrive.

:class:`DiscordApi` holds what Discord holds for one application (registered commands,
messages, uploaded attachments, the interactions it sent) and answers each request with
:meth:`DiscordApi.answer`: the loopback HTTP server (``server.py``) hands it every request it
receives, and the benchmark's in-process transport calls it directly. It answers with
Discord-shaped payloads and errors and enforces the rules that bite real bots: the 3 second
deadline for an interaction's first response, a single acknowledgement per interaction, message,
modal and autocomplete limits, channel permissions for channel messages. Routes it does not know
answer Discord's 404 (405 for a known path with another method) and are listed in
:attr:`DiscordApi.unknown_routes`, so gaps show up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import logging
import mimetypes
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from . import validation
from .interactions import (
    APPLICATION_COMMAND,
    ATTACHMENT_SIZE_LIMIT,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
)
from .webhooks import READ_MESSAGE_HISTORY, Webhook, WebhookRoutes, _deleted
from .world import (
    ATTACH_FILES,
    DM_CHANNEL,
    MANAGE_MESSAGES,
    MANAGE_ROLES,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    Channel,
    Guild,
    Member,
    World,
    default_world,
    iso_now,
    snowflake,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
DEFAULT_TOKEN = "MTE3.e2e-stand-in.not-a-real-token"  # fake: only ever sent to 127.0.0.1
# What GET /gateway/bot says a bot may start per day (Discord's usual limit).
SESSION_STARTS_PER_DAY = 1000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_EMBEDS = 1 << 2
ATTACHMENT_IS_SPOILER = 1 << 3
# How long Discord remembers a message nonce for enforce_nonce ("a few minutes").
NONCE_WINDOW_S = 300.0

# Which callback types Discord accepts for which interaction type.
ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {4, 5, 9, 12},
    MESSAGE_COMPONENT: {4, 5, 6, 7, 9, 12},
    AUTOCOMPLETE: {8},
    MODAL_SUBMIT: {4, 5, 6, 7},
}
_FOLLOWUP = re.compile(r"^/webhooks/\d+/[^/]+$")
_MEMBER_ROLE = re.compile(r"^/guilds/(\d+)/members/(\d+)/roles/(\d+)$")
_MESSAGE = re.compile(r"^/(webhooks/\d+/[^/]+|channels/\d+)/messages(/[^/]+)?$")

T = TypeVar("T")
Reply = tuple[int, Any]  # status, JSON body (None: no content)
Handler = Callable[..., Reply]


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


@dataclass(frozen=True)
class UploadedFile:
    """One ``files[n]`` part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    """One request the bot sent, with the answer the stand-in gave it."""

    method: str
    path: str  # relative to /api/v10, e.g. "/users/@me"
    query: dict[str, str] = field(default_factory=dict)
    json: Any = None  # the JSON body, or the multipart "payload_json" part
    files: tuple[UploadedFile, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # X-Audit-Log-Reason, decoded
    at: float = field(default_factory=time.monotonic)
    status: int = 0
    response: Any = None
    injected: bool = False  # answered by a fault rule, not by the route
    # The interaction the request answers (callback, followup, @original), if any.
    interaction_id: int | None = None
    # The message the request created, changed or deleted, if any.
    message_id: int | None = None

    @property
    def message_payload(self) -> dict[str, Any] | None:
        """The message fields sent: a message callback's ``data``, else the whole body."""
        if not isinstance(self.json, dict) or self.method not in ("POST", "PATCH"):
            return None
        if self.path.endswith("/callback"):
            return self.json.get("data", {}) if self.json.get("type") in (4, 7) else None
        followup = self.method == "POST" and _FOLLOWUP.match(self.path)
        if followup or _MESSAGE.match(self.path):
            return self.json
        return None

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status} json={self.json!r:.300}>"


@dataclass
class FaultRule:
    """Let the first ``after`` requests matching ``method`` and ``path`` through, then answer
    the next ``count`` with a failure."""

    method: str
    path: re.Pattern[str]
    status: int
    count: int
    retry_after: float
    is_global: bool
    body: Any
    after: int = 0
    passed: list[RecordedRequest] = field(default_factory=list)
    hits: list[RecordedRequest] = field(default_factory=list)

    def matches(self, request: RecordedRequest) -> bool:
        """Whether the rule fails ``request`` (one it lets through is counted here)."""
        if (
            len(self.hits) >= self.count
            or self.method not in (request.method, "*")
            or self.path.search(request.path) is None
        ):
            return False
        if len(self.passed) < self.after:
            self.passed.append(request)
            return False
        return True


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
    """An interaction the stand-in sent, and every answer the bot gave to it."""

    payload: dict[str, Any]
    dispatched_at: float
    callback: dict[str, Any] | None = None  # the accepted initial response {type, data}
    callback_at: float | None = None
    callback_files: tuple[UploadedFile, ...] = ()
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
        user: dict[str, Any] = self.payload.get("member", {}).get("user") or self.payload["user"]
        return int(user["id"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    @property
    def guild_id(self) -> int | None:
        guild_id = self.payload.get("guild_id")
        return int(guild_id) if guild_id else None

    @property
    def callback_type(self) -> int | None:
        return None if self.callback is None else self.callback["type"]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def _compile(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")


class DiscordApi(WebhookRoutes):
    """Discord's state for one application and its REST API; see the module docstring."""

    def __init__(
        self,
        world: World | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        callback_deadline: float | None = 3.0,
    ) -> None:
        self.world = world or default_world()
        self.token = token
        # Discord refuses an interaction's first response after 3 s; None switches it off.
        self.callback_deadline = callback_deadline
        self.base_url = "http://127.0.0.1"  # where attachments are served; set by the server
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[RecordedRequest] = []
        self.internal_errors: list[str] = []  # the stand-in's own bugs, never the bot's
        self.faults: list[FaultRule] = []
        # Discord's global limit on a bot's requests (per second; None: no limit), the
        # requests it refused, and the times of those it let through in the last second.
        self.global_limit: int | None = None
        self.globally_limited: list[RecordedRequest] = []
        self._recent: collections.deque[float] = collections.deque()
        # (channel id, nonce) -> (message id, when), for enforce_nonce.
        self._nonces: dict[tuple[int, str], tuple[int, float]] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # None: global commands
        self.messages: dict[int, StoredMessage] = {}
        self.attachments: dict[int, bytes] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self._by_token: dict[str, InteractionRecord] = {}
        self.webhooks: dict[int, Webhook] = {}
        # The largest upload Discord accepts in a message (a server without boosts); what
        # interactions announce as attachment_size_limit.
        self.upload_limit = ATTACHMENT_SIZE_LIMIT
        # GET /gateway/bot: the shard count Discord recommends, its session-start buckets, and
        # the IDENTIFYs so far (the gateway counts them).
        self.recommended_shards = 1
        self.max_concurrency = 1
        self.session_starts = 0
        # Who hears the gateway events REST changes cause (see emit): the in-process harness
        # feeds them to the bot's parsers, the server sends them to its gateway sessions.
        self.event_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._changed = asyncio.Event()
        self._routes = [_Route(m, _compile(p), h) for m, p, h in self._builtin_routes()]
        from .threads import thread_routes  # threads.py builds on this module

        self._routes += [_Route(m, _compile(p), h) for m, p, h in thread_routes(self)]

    # ------------------------------------------------------------------ waiting

    def emit(self, name: str, data: dict[str, Any]) -> None:
        """Announce a gateway event (``MESSAGE_CREATE``, ``MESSAGE_UPDATE``,
        ``MESSAGE_DELETE``...) caused by a REST call or by a test, to every listener."""
        for listener in list(self.event_listeners):
            listener(name, copy.deepcopy(data))

    def notify(self) -> None:
        """Wake every :meth:`wait_for`; called after each change of recorded state."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
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
        after: int = 0,
    ) -> FaultRule:
        """Answer the next ``count`` matching requests with ``status`` instead of the route,
        once ``after`` of them went through (``after=1``: the second one fails).

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
            after=after,
        )
        self.faults.append(rule)
        return rule

    def _fault_body(self, rule: FaultRule) -> Any:
        if rule.status == 429:
            return rule.body or {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.is_global,
                "code": 0,
            }
        if rule.body is not None:
            return rule.body
        return {"message": f"{rule.status}: {reason_phrase(rule.status)}", "code": 0}

    # ------------------------------------------------------------------ answering

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` (``{name}`` placeholders) ahead of the built-in routes.

        ``handler(request: RecordedRequest, **placeholders) -> (status, body)``; a body of None
        answers with no content.
        """
        self._routes.insert(0, _Route(method.upper(), _compile(path), handler))

    def answer(self, request: RecordedRequest) -> Any:
        """Record ``request`` and answer it as Discord would: sets its ``status`` and
        ``response`` and returns the response body (None for no content)."""
        request.interaction_id = self._interaction_of(request.path)
        self.requests.append(request)
        rule = next((r for r in self.faults if r.matches(request)), None)
        retry_after = self._over_global_limit(request)
        if retry_after is not None:
            self.globally_limited.append(request)
            status, body = (
                429,
                {
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": True,
                    "code": 0,
                },
            )
        elif rule is not None:
            rule.hits.append(request)
            request.injected = True
            status, body = rule.status, self._fault_body(rule)
        else:
            try:
                status, body = self._route(request)
            except ApiError as error:
                status, body = error.status, error.body
            except Exception as error:
                # A bug in the stand-in or a test's route, not in the bot: kept apart so tests
                # fail on it, and answered 400 so discord.py reports it at once (it would
                # retry a 5xx with pauses).
                log.exception("stand-in failed on %s %s", request.method, request.path)
                self.internal_errors.append(f"{request.method} {request.path}: {error!r}")
                status, body = 400, {"message": f"stand-in crashed: {error!r}", "code": 0}
            if status >= 400:
                log.info("stand-in answered %s %s with %s", request.method, request.path, status)
        request.status, request.response = status, copy.deepcopy(body)
        self.notify()
        return body

    def _over_global_limit(self, request: RecordedRequest) -> float | None:
        """Seconds to wait if ``request`` breaks the global limit, else None (and it counts).
        Interaction callbacks and webhook-token routes are exempt, as on Discord."""
        if self.global_limit is None or request.path.startswith(("/interactions/", "/webhooks/")):
            return None
        now = time.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.global_limit:
            return round(self._recent[0] + 1.0 - now, 3)
        self._recent.append(now)
        return None

    def _route(self, request: RecordedRequest) -> Reply:
        allowed: list[str] = []
        for route in self._routes:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            if route.method == request.method:
                return route.handler(request, **match.groupdict())
            allowed.append(route.method)
        self.unknown_routes.append(request)
        log.warning("stand-in has no route for %s %s", request.method, request.path)
        status = 405 if allowed else 404
        return status, {"message": f"{status}: {reason_phrase(status)}", "code": 0}

    def _interaction_of(self, path: str) -> int | None:
        """The interaction a request answers: its token is the third segment of both the
        callback route and the webhook routes."""
        parts = path.split("/")
        if len(parts) > 3 and parts[1] in ("interactions", "webhooks"):
            record = self._by_token.get(parts[3])
            return record.id if record is not None else None
        return None

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

    def _builtin_routes(self) -> list[tuple[str, str, Handler]]:
        app_cmds = "/applications/{app_id}/commands"
        guild_cmds = "/applications/{app_id}/guilds/{guild_id}/commands"
        webhook = "/webhooks/{app_id}/{token}"
        return [
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("GET", "/users/@me", self._get_me),
            ("POST", "/users/@me/channels", self._create_dm),
            ("GET", "/users/{user_id}", self._get_user),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/applications/@me", self._get_application),
            ("GET", app_cmds, self._list_commands),
            ("PUT", app_cmds, self._bulk_commands),
            ("POST", app_cmds, self._upsert_command),
            ("GET", guild_cmds + "/permissions", self._command_permissions),
            ("GET", app_cmds + "/{command_id}", self._get_command),
            ("PATCH", app_cmds + "/{command_id}", self._edit_command),
            ("DELETE", app_cmds + "/{command_id}", self._delete_command),
            ("GET", guild_cmds, self._list_commands),
            ("PUT", guild_cmds, self._bulk_commands),
            ("POST", guild_cmds, self._upsert_command),
            ("GET", guild_cmds + "/{command_id}", self._get_command),
            ("PATCH", guild_cmds + "/{command_id}", self._edit_command),
            ("DELETE", guild_cmds + "/{command_id}", self._delete_command),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._callback),
            ("POST", webhook, self._followup),
            ("GET", webhook + "/messages/{message_id}", self._get_webhook_message),
            ("PATCH", webhook + "/messages/{message_id}", self._edit_webhook_message),
            ("DELETE", webhook + "/messages/{message_id}", self._delete_webhook_message),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("GET", "/channels/{channel_id}/messages", self._channel_history),
            ("POST", "/channels/{channel_id}/messages", self._create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message),
            ("POST", "/channels/{channel_id}/typing", self._typing),
            ("GET", "/guilds/{guild_id}", self._get_guild),
            ("GET", "/guilds/{guild_id}/channels", self._get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self._get_guild_roles),
            ("GET", "/guilds/{guild_id}/members", self._get_guild_members),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_guild_member),
            *self._webhook_routes(),
            ("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self._add_member_role),
            (
                "DELETE",
                "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
                self._remove_member_role,
            ),
        ]

    # --- small helpers

    def _channel(self, channel_id: str) -> Channel:
        channel = self.world.find_channel(_snowflake(channel_id, "channel_id"))
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    def _check_app(self, app_id: str) -> None:
        if app_id != str(self.world.application.id):
            raise ApiError(403, 50001, "Missing Access")

    # --- gateway and identity

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    def _get_gateway(self, request: RecordedRequest) -> Reply:
        return 200, {"url": self.gateway_url}

    def _get_gateway_bot(self, request: RecordedRequest) -> Reply:
        return 200, {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": {
                "total": SESSION_STARTS_PER_DAY,
                "remaining": max(0, SESSION_STARTS_PER_DAY - self.session_starts),
                "reset_after": 14_400_000,
                "max_concurrency": self.max_concurrency,
            },
        }

    def _get_me(self, request: RecordedRequest) -> Reply:
        payload = self.world.bot_user.to_payload()
        payload.update(verified=True, mfa_enabled=False, email=None, locale="en-US")
        return 200, payload

    def _get_user(self, request: RecordedRequest, user_id: str) -> Reply:
        user = self.world.user_by_id(_snowflake(user_id, "user_id"))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return 200, user.to_payload()

    def _create_dm(self, request: RecordedRequest) -> Reply:
        body = request.json or {}
        user = self.world.user_by_id(int(body.get("recipient_id", 0)))
        if user is None:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        return 200, self.world.dm_channel(user).to_payload()

    def _get_application(self, request: RecordedRequest) -> Reply:
        return 200, self.world.application.to_payload()

    # --- application commands

    def _command_scope(self, app_id: str, guild_id: str | None) -> int | None:
        self._check_app(app_id)
        if guild_id is None:
            return None
        scope = _snowflake(guild_id, "guild_id")
        if self.world.find_guild(scope) is None:
            raise ApiError(403, 50001, "Missing Access")
        return scope

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

    def _validate_commands(self, bodies: list[dict[str, Any]]) -> None:
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

    def _list_commands(
        self, request: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Reply:
        return 200, self.commands.get(self._command_scope(app_id, guild_id), [])

    def _bulk_commands(
        self, request: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Reply:
        scope = self._command_scope(app_id, guild_id)
        bodies = request.json
        if not isinstance(bodies, list):
            raise ApiError.form([("_", "Must be an array.")])
        self._validate_commands(bodies)
        old = {(c["type"], c["name"]): c for c in self.commands.get(scope, [])}
        self.commands[scope] = [
            self._stored_command(b, scope, old.get((b.get("type", 1), b["name"]))) for b in bodies
        ]
        return 200, self.commands[scope]

    def _upsert_command(
        self, request: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Reply:
        scope = self._command_scope(app_id, guild_id)
        body = request.json or {}
        self._validate_commands([body])
        commands = self.commands.setdefault(scope, [])
        key = (body.get("type", 1), body.get("name"))
        old = next((c for c in commands if (c["type"], c["name"]) == key), None)
        stored = self._stored_command(body, scope, old)
        if old:
            commands[commands.index(old)] = stored
        else:
            commands.append(stored)
        return (200 if old else 201), stored

    def _find_command(
        self, app_id: str, command_id: str, guild_id: str | None
    ) -> tuple[int | None, dict[str, Any]]:
        scope = self._command_scope(app_id, guild_id)
        for command in self.commands.get(scope, []):
            if command["id"] == command_id:
                return scope, command
        raise ApiError(404, 10063, "Unknown application command")

    def _get_command(
        self, request: RecordedRequest, app_id: str, command_id: str, guild_id: str | None = None
    ) -> Reply:
        return 200, self._find_command(app_id, command_id, guild_id)[1]

    def _edit_command(
        self, request: RecordedRequest, app_id: str, command_id: str, guild_id: str | None = None
    ) -> Reply:
        _, command = self._find_command(app_id, command_id, guild_id)
        merged = {**command, **(request.json or {})}
        self._validate_commands([merged])
        command.update(merged, version=str(snowflake()))
        return 200, command

    def _delete_command(
        self, request: RecordedRequest, app_id: str, command_id: str, guild_id: str | None = None
    ) -> Reply:
        scope, command = self._find_command(app_id, command_id, guild_id)
        self.commands[scope].remove(command)
        return 204, None

    def _command_permissions(self, request: RecordedRequest, app_id: str, guild_id: str) -> Reply:
        self._command_scope(app_id, guild_id)
        return 200, []

    def registered_command(self, name: str, *, guild_id: int | None = None) -> dict[str, Any]:
        """The registered chat-input command ``name``: the guild's first, then the global one."""
        scopes = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name and command["type"] == 1:
                    return command
        registered = sorted(c["name"] for cs in self.commands.values() for c in cs)
        raise KeyError(f"no slash command /{name}; registered: {registered}")

    # --- interactions

    def expect_interaction(self, payload: dict[str, Any]) -> InteractionRecord:
        """Start tracking the bot's answers to the INTERACTION_CREATE ``payload`` about to be
        delivered. Delivering the same interaction again keeps its record, as Discord does: a
        second acknowledgement is refused."""
        record = self.interactions.get(int(payload["id"]))
        if record is None:
            record = InteractionRecord(payload=payload, dispatched_at=time.monotonic())
            self.interactions[record.id] = record
            self._by_token[record.token] = record
        return record

    def forget_interaction(self, interaction_id: int) -> None:
        """Drop an interaction and the messages answering it (a long benchmark keeps memory
        flat this way)."""
        record = self.interactions.pop(interaction_id, None)
        if record is None:
            return
        self._by_token.pop(record.token, None)
        for message_id in [record.original_id, *record.followup_ids]:
            self.messages.pop(message_id or 0, None)

    def _interaction_by_token(self, app_id: str, token: str) -> InteractionRecord:
        self._check_app(app_id)
        record = self._by_token.get(token)
        if record is None or record.callback is None:
            # Discord knows no webhook for an interaction that has not been answered yet.
            raise ApiError(404, 10015, "Unknown Webhook")
        return record

    def _callback(self, request: RecordedRequest, interaction_id: str, token: str) -> Reply:
        record = self.interactions.get(_snowflake(interaction_id, "interaction_id"))
        if record is None or record.token != token:
            raise ApiError(404, 10062, "Unknown interaction")
        if record.callback is not None:
            record.rejected.append(request)
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        elapsed = time.monotonic() - record.dispatched_at
        if self.callback_deadline is not None and elapsed > self.callback_deadline:
            record.rejected.append(request)
            log.warning("interaction %s answered after %.2fs: refused", record.id, elapsed)
            raise ApiError(404, 10062, "Unknown interaction")
        body = request.json or {}
        kind = body.get("type")
        data = body.get("data") or {}
        if kind not in ALLOWED_CALLBACKS.get(record.type, set()):
            raise ApiError.form([("type", f"Invalid callback type {kind} for this interaction")])
        message: StoredMessage | None = None
        try:
            message = self._callback_message(record, kind, data, request)
        except ApiError as error:
            # The message fields of a callback are its "data".
            if "errors" in error.body:
                error.body["errors"] = {"data": error.body["errors"]}
            raise
        record.callback = body
        record.callback_at = time.monotonic()
        record.callback_files = request.files
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
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
        return 200, {"interaction": interaction, "resource": resource}

    def _callback_message(
        self, record: InteractionRecord, kind: int, data: dict[str, Any], request: RecordedRequest
    ) -> StoredMessage | None:
        """Apply a callback of type ``kind``; returns the message it created or changed."""
        message: StoredMessage | None = None
        if kind == 4:
            message = self._new_message(
                channel_id=record.channel_id,
                body=data,
                files=request.files,
                interaction=record,
                request=request,
            )
            record.original_id, record.original_ready = message.id, True
        elif kind == 5:
            message = self._new_message(
                channel_id=record.channel_id,
                body={"flags": int(data.get("flags") or 0) & EPHEMERAL},
                files=(),
                interaction=record,
                request=request,
                loading=True,
            )
            record.original_id, record.original_ready = message.id, False
        elif kind in (6, 7):
            target = self._component_message(record)
            record.original_id = target.id if target else None
            if kind == 7 and target is not None:
                self._apply_edit(target, data, request.files, request)
                message = target
            record.original_ready = kind == 7
        elif kind == 8:
            problems = validation.check_choices(data.get("choices") or [])
            if problems:
                raise ApiError.form([(p.removeprefix("data."), m) for p, m in problems])
        elif kind == 9:
            problems = []
            validation.check_length(problems, "title", data.get("title"), 45, 1)
            validation.check_length(problems, "custom_id", data.get("custom_id"), 100, 1)
            if not 1 <= len(data.get("components") or []) <= 5:
                problems.append(("components", "Must be between 1 and 5 in length."))
            if problems:
                raise ApiError.form(problems)
        return message

    def _component_message(self, record: InteractionRecord) -> StoredMessage | None:
        raw = record.payload.get("message")
        return self.messages.get(int(raw["id"])) if raw else None

    def _followup(self, request: RecordedRequest, app_id: str, token: str) -> Reply:
        if app_id != str(self.world.application.id):  # a channel webhook, not an interaction
            return self._execute_webhook(request, app_id, token)
        record = self._interaction_by_token(app_id, token)
        body = request.json or {}
        original = self.messages.get(record.original_id or 0)
        if record.callback_type == 5 and original is not None and not record.original_ready:
            # The first followup after a "thinking" deferral replaces the loading message; its
            # own ephemeral flag is ignored: the deferral already decided who sees it.
            edit = {k: v for k, v in body.items() if k != "flags"}
            self._apply_edit(original, edit, request.files, request)
            record.original_ready = True
            message = original
        else:
            message = self._new_message(
                channel_id=record.channel_id,
                body=body,
                files=request.files,
                interaction=record,
                request=request,
            )
            record.followup_ids.append(message.id)
        if request.query.get("wait", "").lower() in ("1", "true"):
            return 200, message.payload
        return 204, None

    def _webhook_message(
        self, app_id: str, token: str, message_id: str, request: RecordedRequest
    ) -> tuple[InteractionRecord, StoredMessage]:
        record = self._interaction_by_token(app_id, token)
        wanted = record.original_id if message_id == "@original" else _int_or_none(message_id)
        own = {record.original_id, *record.followup_ids}
        message = self.messages.get(wanted or 0)
        if message is None or message.deleted or wanted not in own:
            raise ApiError(404, 10008, "Unknown Message")
        request.message_id = message.id
        return record, message

    def _get_webhook_message(self, request: RecordedRequest, **ids: str) -> Reply:
        return 200, self._webhook_message(request=request, **ids)[1].payload

    def _edit_webhook_message(self, request: RecordedRequest, **ids: str) -> Reply:
        record, message = self._webhook_message(request=request, **ids)
        self._apply_edit(message, request.json or {}, request.files, request)
        if message.id == record.original_id:
            record.original_ready = True
        return 200, message.payload

    def _delete_webhook_message(self, request: RecordedRequest, **ids: str) -> Reply:
        if ids["app_id"] != str(self.world.application.id):  # a channel webhook's message
            return self._delete_executed_message(
                request, ids["app_id"], ids["token"], ids["message_id"]
            )
        _, message = self._webhook_message(request=request, **ids)
        message.deleted = True
        return 204, None

    # --- messages

    def _new_message(
        self,
        *,
        channel_id: int,
        body: dict[str, Any],
        files: tuple[UploadedFile, ...],
        request: RecordedRequest | None,
        interaction: InteractionRecord | None = None,
        loading: bool = False,
    ) -> StoredMessage:
        """Store a message the bot sends; ``loading`` is the empty "thinking..." placeholder."""
        problems = validation.check_message(body)
        if problems:
            raise ApiError.form(problems)
        flags = int(body.get("flags") or 0)
        payload: dict[str, Any] = {
            "id": str(snowflake()),
            "type": 0,
            "channel_id": str(channel_id),
            "author": self.world.bot_user.to_payload(),
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
        channel = self.world.find_channel(channel_id)
        if channel is not None and channel.guild_id is not None:
            payload["guild_id"] = str(channel.guild_id)
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
            requests=[request] if request is not None else [],
        )
        self.messages[message.id] = message
        if request is not None:
            request.message_id = message.id
        if channel is not None and message.visible_to is None:
            channel.last_message_id = message.id
        return message

    def post_message(self, channel: Channel, body: dict[str, Any]) -> StoredMessage:
        """A message the bot posted earlier (before the test, or before a restart)."""
        return self._new_message(channel_id=channel.id, body=body, files=(), request=None)

    def _apply_edit(
        self,
        message: StoredMessage,
        body: dict[str, Any],
        files: tuple[UploadedFile, ...],
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
        request.message_id = message.id

    def _attachments(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: tuple[UploadedFile, ...],
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
            attachment_id, url = self.store_attachment(channel_id, filename, upload.data)
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
            if filename.startswith("SPOILER_"):
                attachment["flags"] = ATTACHMENT_IS_SPOILER  # Discord blurs it
            result.append(attachment)
        return result

    def store_attachment(self, channel_id: int, filename: str, data: bytes) -> tuple[int, str]:
        """Keep an uploaded file where its URL serves it; returns (attachment id, URL)."""
        attachment_id = snowflake()
        self.attachments[attachment_id] = data
        return attachment_id, f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{filename}"

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

    def _channel_message(
        self, channel_id: str, message_id: str, request: RecordedRequest
    ) -> tuple[Channel, StoredMessage]:
        channel = self._channel(channel_id)
        if not self._bot_permissions(channel) & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        message = self.messages.get(_snowflake(message_id, "message_id"))
        if (
            message is None
            or message.deleted
            or message.channel_id != channel.id
            or message.visible_to is not None
        ):
            raise ApiError(404, 10008, "Unknown Message")
        request.message_id = message.id
        return channel, message

    def _create_message(self, request: RecordedRequest, channel_id: str) -> Reply:
        channel = self._channel(channel_id)
        perms = self._bot_permissions(channel)
        if not perms & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        send = SEND_MESSAGES_IN_THREADS if channel.is_thread else SEND_MESSAGES
        if not perms & send or (request.files and not perms & ATTACH_FILES):
            raise ApiError(403, 50013, "Missing Permissions")
        self._check_upload_size(request)
        body = dict(request.json or {})
        # enforce_nonce: the same nonce in the same channel within minutes returns the first
        # message instead of making a second.
        nonce = str(body["nonce"]) if body.get("nonce") is not None else None
        if nonce is not None and body.get("enforce_nonce"):
            seen = self._nonces.get((channel.id, nonce))
            earlier = self.messages.get(seen[0]) if seen else None
            if seen and earlier and time.monotonic() - seen[1] < NONCE_WINDOW_S:
                request.message_id = earlier.id
                return 200, earlier.payload
        # Only interaction responses can be ephemeral; Discord drops the flag elsewhere.
        body["flags"] = int(body.get("flags") or 0) & ~EPHEMERAL
        message = self._new_message(
            channel_id=channel.id, body=body, files=request.files, request=request
        )
        if nonce is not None:
            message.payload["nonce"] = nonce
            self._nonces[(channel.id, nonce)] = (message.id, time.monotonic())
        return 200, message.payload

    def _check_upload_size(self, request: RecordedRequest) -> None:
        """Discord refuses a message whose upload (its files and fields together) is larger
        than the server's upload limit."""
        if not request.files:
            return
        size = sum(len(f.data) for f in request.files) + len(json.dumps(request.json or {}))
        if size > self.upload_limit:
            raise ApiError(413, 40005, "Request entity too large")

    def _get_message(self, request: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        channel, message = self._channel_message(channel_id, message_id, request)
        if not self._bot_permissions(channel) & READ_MESSAGE_HISTORY:
            raise ApiError(403, 50013, "Missing Permissions")
        return 200, message.payload

    def _edit_message(self, request: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        _, message = self._channel_message(channel_id, message_id, request)
        if message.payload["author"]["id"] != str(self.world.bot_user.id):
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        self._apply_edit(message, request.json or {}, request.files, request)
        return 200, message.payload

    def _delete_message(self, request: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        channel, message = self._channel_message(channel_id, message_id, request)
        own = message.payload["author"]["id"] == str(self.world.bot_user.id)
        if not own and not self._bot_permissions(channel) & MANAGE_MESSAGES:
            raise ApiError(403, 50013, "Missing Permissions")
        message.deleted = True
        self.emit("MESSAGE_DELETE", _deleted(message.payload))
        return 204, None

    def _channel_history(self, request: RecordedRequest, channel_id: str) -> Reply:
        channel = self._channel(channel_id)
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
        return 200, [m.payload for m in visible[:limit]]

    def _get_channel(self, request: RecordedRequest, channel_id: str) -> Reply:
        channel = self._channel(channel_id)
        if not self._bot_permissions(channel) & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        return 200, channel.to_payload()

    def _typing(self, request: RecordedRequest, channel_id: str) -> Reply:
        self._channel(channel_id)
        return 204, None

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

    # --- guilds

    def _guild(self, guild_id: str) -> Guild:
        guild = self.world.find_guild(_snowflake(guild_id, "guild_id"))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    def _get_guild(self, request: RecordedRequest, guild_id: str) -> Reply:
        guild = self._guild(guild_id)
        payload = guild.to_rest_payload()
        if request.query.get("with_counts", "").lower() in ("1", "true"):
            payload.update(
                approximate_member_count=len(guild.members), approximate_presence_count=0
            )
        return 200, payload

    def _get_guild_channels(self, request: RecordedRequest, guild_id: str) -> Reply:
        return 200, [c.to_payload() for c in self._guild(guild_id).channels]

    def _get_guild_roles(self, request: RecordedRequest, guild_id: str) -> Reply:
        return 200, [r.to_payload() for r in self._guild(guild_id).roles]

    def _get_guild_members(self, request: RecordedRequest, guild_id: str) -> Reply:
        limit = max(1, min(1000, int(request.query.get("limit", "1"))))
        members = sorted(self._guild(guild_id).members, key=lambda m: m.user.id)
        return 200, [m.to_payload() for m in members[:limit]]

    def _get_guild_member(self, request: RecordedRequest, guild_id: str, user_id: str) -> Reply:
        member = self._guild(guild_id).member(_snowflake(user_id, "user_id"))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return 200, member.to_payload()

    def _member_role(self, guild_id: str, user_id: str, role_id: str) -> tuple[Member, int]:
        """Discord's checks before a member's role changes: the member and role exist, the bot
        has Manage Roles, and the role is not managed and sits strictly below the bot's
        highest role (the owner's bot excepted). Every refusal is 403 50013."""
        guild = self._guild(guild_id)
        member = guild.member(_snowflake(user_id, "user_id"))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        wanted = _snowflake(role_id, "role_id")
        role = next((r for r in guild.roles if r.id == wanted), None)
        if role is None:
            raise ApiError(404, 10011, "Unknown Role")
        bot_id = self.world.bot_user.id
        if bot_id != guild.owner_id:
            top = guild.top_role(bot_id)
            below = (role.position, -role.id) < (top.position, -top.id)
            can_manage = bool(guild.base_permissions(bot_id) & MANAGE_ROLES)
            if not can_manage or not below or role.managed or role.id == guild.id:
                raise ApiError(403, 50013, "Missing Permissions")
        return member, role.id

    def _add_member_role(
        self, request: RecordedRequest, guild_id: str, user_id: str, role_id: str
    ) -> Reply:
        member, role = self._member_role(guild_id, user_id, role_id)
        if role not in member.roles:
            member.roles.append(role)
        return 204, None

    def _remove_member_role(
        self, request: RecordedRequest, guild_id: str, user_id: str, role_id: str
    ) -> Reply:
        member, role = self._member_role(guild_id, user_id, role_id)
        if role in member.roles:
            member.roles.remove(role)
        return 204, None

    def role_changes(self) -> list[tuple[str, int, int, int]]:
        """Every member-role change Discord accepted: (PUT or DELETE, guild, user, role)."""
        found = []
        for request in self.requests:
            match = _MEMBER_ROLE.match(request.path)
            if match and request.method in ("PUT", "DELETE") and request.status == 204:
                guild, user, role = (int(part) for part in match.groups())
                found.append((request.method, guild, user, role))
        return found


def _normalise_embed(embed: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich", **embed}


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _snowflake(value: str, name: str) -> int:
    number = _int_or_none(value)
    if number is None:
        raise ApiError(404, 0, f"404: Not Found ({name})")
    return number
