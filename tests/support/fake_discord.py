"""A loopback stand-in for Discord's REST API that records every request discord.py sends.

discord.py sends REST calls down two paths: ``HTTPClient.request`` for the bot's own calls
(login, sync, channel messages) and ``AsyncWebhookAdapter.request`` for everything that answers
an interaction (the callback, followups, edits of ``@original``). Both build their URL from
``discord.http.Route.BASE`` and send it with the bot's aiohttp session. Pointing ``Route.BASE``
at this server therefore captures both paths as real HTTP, after all of discord.py's payload
building, JSON encoding and multipart packing: what is recorded is what Discord would receive.

The server answers like Discord where the bot's code depends on the answer (message objects
with ids, the interaction callback resource, ``40060`` on a second acknowledgement, the first
followup after a "thinking" defer replacing the loading message). Routes it does not know are
answered ``404`` and listed in ``unhandled`` so a test can fail on them.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import discord
from aiohttp import BodyPartReader, web

from .specs import (
    GuildSpec,
    Snowflakes,
    UserSpec,
    channel_payload,
    dm_channel_payload,
    iso_now,
    user_payload,
)

API_PREFIX = "/api/v10"
EPHEMERAL = discord.MessageFlags.ephemeral.flag
_FOLLOWUP = re.compile(r"^/webhooks/\d+/[^/]+$")
_MESSAGE = re.compile(r"^/(webhooks/\d+/[^/]+|channels/\d+)/messages(/[^/]+)?$")
LOADING = discord.MessageFlags.loading.flag


@dataclass(frozen=True)
class RecordedFile:
    """One uploaded file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    """One HTTP request discord.py sent, with the answer the fake gave it."""

    method: str
    path: str  # without the /api/v10 prefix, e.g. "/interactions/1/tok/callback"
    query: dict[str, str]
    json: Any  # the JSON body, or the multipart "payload_json" part; None when there was none
    files: tuple[RecordedFile, ...] = ()
    reason: str | None = None  # X-Audit-Log-Reason, decoded
    status: int = 0
    response: Any = None
    # Set by the fake when the request answers an interaction (callback, followup, @original).
    interaction_id: int | None = None
    # The message the request created or changed, if any.
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
        return f"<{self.method} {self.path} -> {self.status} json={self.json!r}>"


Reply = tuple[int, Any]
Handler = Callable[..., Reply]


@dataclass
class InteractionRecord:
    """What the fake knows about an interaction it has sent to the bot."""

    id: int
    token: str
    type: int
    channel_id: int
    guild_id: int | None
    user: UserSpec
    original_id: int | None = (
        None  # the clicked message for components until a new reply replaces it
    )
    acknowledged: bool = False
    followups: int = 0


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def _compile(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")


@dataclass
class FakeDiscord:
    """Discord's REST API for one bot, one guild and the interactions the harness sends."""

    app_id: int
    bot_user: UserSpec
    guild: GuildSpec
    ids: Snowflakes
    requests: list[RecordedRequest] = field(default_factory=list)
    unhandled: list[RecordedRequest] = field(default_factory=list)
    crashes: list[Exception] = field(default_factory=list)  # bugs in the stand-in or a custom route
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Command payloads the bot synced, keyed by guild id (None for global), then by name.
    commands: dict[int | None, dict[str, dict[str, Any]]] = field(default_factory=dict)
    interactions: dict[str, InteractionRecord] = field(default_factory=dict)
    dm_channels: dict[int, int] = field(default_factory=dict)  # user id -> channel id
    _routes: list[_Route] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        builtin: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("PUT", "/applications/{app_id}/commands", self._sync),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._sync),
            ("GET", "/applications/{app_id}/commands", self._list_commands),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self._list_commands),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app_id}/{token}", self._followup),
            ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self._get_webhook_message),
            (
                "PATCH",
                "/webhooks/{app_id}/{token}/messages/{message_id}",
                self._edit_webhook_message,
            ),
            (
                "DELETE",
                "/webhooks/{app_id}/{token}/messages/{message_id}",
                self._delete_webhook_message,
            ),
            ("POST", "/channels/{channel_id}/messages", self._create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("POST", "/users/@me/channels", self._open_dm),
        ]
        self._routes = [_Route(m, _compile(p), h) for m, p, h in builtin]

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on an ephemeral loopback port; returns the API base URL for ``Route.BASE``."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{port}{API_PREFIX}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` (with ``{name}`` placeholders) ahead of the built-in routes.

        ``handler(request: RecordedRequest, **placeholders) -> (status, body)``; a body of None
        answers 204 with no content.
        """
        self._routes.insert(0, _Route(method.upper(), _compile(path), handler))

    # -- message store -----------------------------------------------------------------------

    def store_message(self, message: dict[str, Any]) -> dict[str, Any]:
        self.messages[int(message["id"])] = message
        return message

    def new_message(
        self,
        payload: dict[str, Any],
        *,
        channel_id: int,
        guild_id: int | None,
        files: tuple[RecordedFile, ...] = (),
        flags: int | None = None,
        interaction: InteractionRecord | None = None,
    ) -> dict[str, Any]:
        """A message authored by the bot, shaped like Discord's message object."""
        message_id = self.ids()
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": 0,
            "author": user_payload(self.bot_user),
            "content": payload.get("content") or "",
            "embeds": payload.get("embeds") or [],
            "components": payload.get("components") or [],
            "attachments": self._attachments(payload, files, channel_id, []),
            "flags": payload.get("flags", 0) if flags is None else flags,
            "tts": bool(payload.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "timestamp": iso_now(),
            "edited_timestamp": None,
        }
        if guild_id is not None:
            message["guild_id"] = str(guild_id)
        if interaction is not None:
            message["webhook_id"] = str(self.app_id)
            message["application_id"] = str(self.app_id)
            # 20 is CHAT_INPUT_COMMAND: the reply shown under the "used /command" line.
            message["type"] = 20 if interaction.type == 2 else 0
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": user_payload(interaction.user),
                # Guild installation; Discord reports its owner as "0" in a bot DM.
                "authorizing_integration_owners": {"0": str(guild_id or 0)},
            }
        return self.store_message(message)

    def _attachments(
        self,
        payload: dict[str, Any],
        files: tuple[RecordedFile, ...],
        channel_id: int,
        existing: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Attachments the message ends up with: kept ones by id, uploads by ``files[n]`` index."""
        if "attachments" not in payload:
            return existing
        kept = {a["id"]: a for a in existing}
        uploads = {f.field: f for f in files}
        result = []
        for entry in payload["attachments"] or []:
            entry_id = str(entry.get("id"))
            if entry_id in kept:
                result.append(kept[entry_id])
                continue
            upload = uploads.get(f"files[{entry_id}]")
            if upload is None:
                continue
            attachment_id = self.ids()
            filename = entry.get("filename") or upload.filename or "file"
            url = f"https://cdn.discordapp.com/attachments/{channel_id}/{attachment_id}/{filename}"
            attachment = {
                "id": str(attachment_id),
                "filename": filename,
                "size": len(upload.data),
                "url": url,
                "proxy_url": url,
            }
            if upload.content_type:
                attachment["content_type"] = upload.content_type
            if entry.get("description"):
                attachment["description"] = entry["description"]
            result.append(attachment)
        return result

    def _edit(
        self,
        message: dict[str, Any],
        request: RecordedRequest,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        # An UPDATE_MESSAGE callback carries the message fields in "data"; edits at the top level.
        body = (request.json or {}) if body is None else body
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        if "flags" in body and body["flags"] is not None:
            # Ephemerality is fixed at creation; only the other flags (suppress embeds) change.
            message["flags"] = (message["flags"] & EPHEMERAL) | (body["flags"] & ~EPHEMERAL)
        message["flags"] &= ~LOADING
        message["attachments"] = self._attachments(
            body, request.files, int(message["channel_id"]), message["attachments"]
        )
        message["edited_timestamp"] = iso_now()
        request.message_id = int(message["id"])
        return message

    # -- HTTP plumbing -----------------------------------------------------------------------

    async def _handle(self, http: web.Request) -> web.StreamResponse:
        try:
            return await self._answer(http)
        except Exception as error:
            # A 5xx would make discord.py retry with sleeps; fail the request at once instead.
            self.crashes.append(error)
            body = json.dumps({"message": f"test harness crashed: {error!r}", "code": 0}).encode()
            return web.Response(body=body, status=400, headers={"Content-Type": "application/json"})

    async def _answer(self, http: web.Request) -> web.StreamResponse:
        path = http.path.removeprefix(API_PREFIX)
        body: Any = None
        files: list[RecordedFile] = []
        if http.content_type == "multipart/form-data":
            reader = await http.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                else:
                    files.append(
                        RecordedFile(
                            field=part.name or "",
                            filename=part.filename,
                            content_type=part.headers.get("Content-Type"),
                            data=bytes(await part.read(decode=False)),
                        )
                    )
        elif http.can_read_body:
            raw = await http.read()
            body = json.loads(raw) if raw else None
        reason = http.headers.get("X-Audit-Log-Reason")
        request = RecordedRequest(
            method=http.method,
            path=path,
            query=dict(http.query),
            json=body,
            files=tuple(files),
            reason=unquote(reason) if reason is not None else None,
        )
        response = self.answer(request)
        if response is None:
            return web.Response(status=request.status)
        # Exactly "application/json", no charset: discord.py only decodes that content type.
        body_bytes = json.dumps(response).encode()
        return web.Response(
            body=body_bytes, status=request.status, headers={"Content-Type": "application/json"}
        )

    def answer(self, request: RecordedRequest) -> Any:
        """Record ``request`` and answer it as Discord would: sets its ``status`` and returns
        the response body (None for an empty 204). The loopback server and the benchmark's
        in-process transport both come through here."""
        request.interaction_id = self._interaction_of(request.path)
        self.requests.append(request)
        status, response = self._dispatch(request)
        request.status, request.response = status, copy.deepcopy(response)
        return response

    def _interaction_of(self, path: str) -> int | None:
        """The interaction a request answers: its token is the third segment of both the
        callback route and the webhook routes (``/interactions/{id}/{token}/callback``,
        ``/webhooks/{app_id}/{token}/...``)."""
        parts = path.split("/")
        if len(parts) > 3 and parts[1] in ("interactions", "webhooks"):
            record = self.interactions.get(parts[3])
            return record.id if record is not None else None
        return None

    def _dispatch(self, request: RecordedRequest) -> Reply:
        payload = request.message_payload
        if payload is not None:
            callback = request.path.endswith("/callback")
            updating = callback and (request.json or {}).get("type") == 7
            if request.method == "POST" and not updating and is_empty(payload, request.files):
                return _error(400, 50006, "Cannot send an empty message")
            problems = message_problems(payload)
            if problems:
                errors = _error_tree(problems)
                if callback:
                    errors = {"data": errors}
                return 400, {"message": "Invalid Form Body", "code": 50035, "errors": errors}
        for route in self._routes:
            if route.method != request.method:
                continue
            match = route.pattern.match(request.path)
            if match:
                return route.handler(request, **match.groupdict())
        self.unhandled.append(request)
        return _error(
            404, 0, f"404: Not Found (the test harness has no {request.method} {request.path})"
        )

    # -- built-in routes ---------------------------------------------------------------------

    def _get_me(self, request: RecordedRequest) -> Reply:
        return 200, {
            **user_payload(self.bot_user),
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
        }

    def _get_application(self, request: RecordedRequest) -> Reply:
        return 200, {
            "id": str(self.app_id),
            "name": self.bot_user.name,
            "icon": None,
            "description": "",
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": user_payload(UserSpec(id=self.guild.owner_id, name="owner")),
            "flags": 0,
            "interactions_endpoint_url": None,
        }

    def _sync(self, request: RecordedRequest, app_id: str, guild_id: str | None = None) -> Reply:
        scope = int(guild_id) if guild_id else None
        known = self.commands.get(scope, {})
        synced: dict[str, dict[str, Any]] = {}
        for command in request.json or []:
            previous = known.get(command["name"])
            entry = {
                **command,
                "id": previous["id"] if previous else str(self.ids()),
                "application_id": app_id,
                "version": str(self.ids()),
            }
            if scope is not None:
                entry["guild_id"] = str(scope)
            synced[command["name"]] = entry
        self.commands[scope] = synced
        return 200, list(synced.values())

    def _list_commands(
        self, request: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Reply:
        scope = int(guild_id) if guild_id else None
        return 200, list(self.commands.get(scope, {}).values())

    def _callback(self, request: RecordedRequest, interaction_id: str, token: str) -> Reply:
        record = self.interactions.get(token)
        if record is None or record.id != int(interaction_id):
            return _error(404, 10062, "Unknown interaction")
        if record.acknowledged:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        record.acknowledged = True
        body = request.json or {}
        kind = body.get("type")
        data = body.get("data") or {}
        resource: dict[str, Any] = {"type": kind}
        message: dict[str, Any] | None = None
        if kind == 4:
            message = self.new_message(
                data,
                channel_id=record.channel_id,
                guild_id=record.guild_id,
                files=request.files,
                interaction=record,
            )
            record.original_id = int(message["id"])
        elif kind == 5:
            message = self.new_message(
                {},
                channel_id=record.channel_id,
                guild_id=record.guild_id,
                flags=(data.get("flags") or 0) | LOADING,
                interaction=record,
            )
            record.original_id = int(message["id"])
        elif kind == 7:
            target = self.messages.get(record.original_id or 0)
            if target is None:
                return _error(404, 10008, "Unknown Message")
            message = self._edit(target, request, data)
        if message is not None:
            request.message_id = int(message["id"])
            resource["message"] = message
        return 200, {
            "interaction": {
                "id": str(record.id),
                "type": record.type,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message and message["flags"] & EPHEMERAL),
            },
            "resource": resource,
        }

    def _webhook_interaction(self, app_id: str, token: str) -> InteractionRecord | None:
        record = self.interactions.get(token)
        if record is None or int(app_id) != self.app_id or not record.acknowledged:
            return None
        return record

    def _followup(self, request: RecordedRequest, app_id: str, token: str) -> Reply:
        record = self._webhook_interaction(app_id, token)
        if record is None:
            return _error(404, 10015, "Unknown Webhook")
        body = request.json or {}
        original = self.messages.get(record.original_id or 0)
        record.followups += 1
        if record.followups == 1 and original is not None and original["flags"] & LOADING:
            # Discord turns the first followup after a "thinking" defer into that message.
            message = self._edit(original, request)
        else:
            message = self.new_message(
                body,
                channel_id=record.channel_id,
                guild_id=record.guild_id,
                files=request.files,
                interaction=record,
            )
        request.message_id = int(message["id"])
        if request.query.get("wait") not in ("1", "true", "True"):
            return 204, None
        return 200, message

    def _webhook_message(
        self, request: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> dict[str, Any] | None:
        record = self._webhook_interaction(app_id, token)
        if record is None:
            return None
        wanted = record.original_id if message_id == "@original" else int(message_id)
        return self.messages.get(wanted or 0)

    def _get_webhook_message(self, request: RecordedRequest, **ids: str) -> Reply:
        message = self._webhook_message(request, **ids)
        return (200, message) if message else _error(404, 10008, "Unknown Message")

    def _edit_webhook_message(self, request: RecordedRequest, **ids: str) -> Reply:
        message = self._webhook_message(request, **ids)
        return (
            (200, self._edit(message, request))
            if message
            else _error(404, 10008, "Unknown Message")
        )

    def _delete_webhook_message(self, request: RecordedRequest, **ids: str) -> Reply:
        message = self._webhook_message(request, **ids)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        del self.messages[int(message["id"])]
        request.message_id = int(message["id"])
        return 204, None

    def _channel_exists(self, channel_id: int) -> bool:
        return (
            any(c.id == channel_id for c in self.guild.channels)
            or channel_id in self.dm_channels.values()
        )

    def _create_message(self, request: RecordedRequest, channel_id: str) -> Reply:
        if not self._channel_exists(int(channel_id)):
            return _error(404, 10003, "Unknown Channel")
        guild_id = self.guild.id if int(channel_id) not in self.dm_channels.values() else None
        message = self.new_message(
            request.json or {}, channel_id=int(channel_id), guild_id=guild_id, files=request.files
        )
        request.message_id = int(message["id"])
        return 200, message

    def _channel_message(self, channel_id: str, message_id: str) -> dict[str, Any] | None:
        message = self.messages.get(int(message_id))
        if message is None or message["channel_id"] != channel_id:
            return None
        return message

    def _get_message(self, request: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        message = self._channel_message(channel_id, message_id)
        return (200, message) if message else _error(404, 10008, "Unknown Message")

    def _edit_message(self, request: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        message = self._channel_message(channel_id, message_id)
        return (
            (200, self._edit(message, request))
            if message
            else _error(404, 10008, "Unknown Message")
        )

    def _delete_message(self, request: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        if self._channel_message(channel_id, message_id) is None:
            return _error(404, 10008, "Unknown Message")
        del self.messages[int(message_id)]
        request.message_id = int(message_id)
        return 204, None

    def _get_channel(self, request: RecordedRequest, channel_id: str) -> Reply:
        for spec in self.guild.channels:
            if spec.id == int(channel_id):
                return 200, channel_payload(spec, self.guild)
        for user_id, dm_id in self.dm_channels.items():
            if dm_id == int(channel_id):
                return 200, dm_channel_payload(dm_id, UserSpec(id=user_id, name=str(user_id)))
        return _error(404, 10003, "Unknown Channel")

    def dm_channel_id(self, user: UserSpec) -> int:
        if user.id not in self.dm_channels:
            self.dm_channels[user.id] = self.ids()
        return self.dm_channels[user.id]

    def _open_dm(self, request: RecordedRequest) -> Reply:
        recipient_id = int((request.json or {})["recipient_id"])
        known = {u.id: u for u in self.guild.members}
        recipient = known.get(recipient_id, UserSpec(id=recipient_id, name=str(recipient_id)))
        return 200, dm_channel_payload(self.dm_channel_id(recipient), recipient)


def _error(status: int, code: int, message: str) -> Reply:
    return status, {"message": message, "code": code}


# Discord's documented message limits; the API answers 50035 "Invalid Form Body" past them.
_CONTENT_MAX = 2000
_EMBEDS_MAX = 10
_EMBED_TOTAL_MAX = 6000
_EMBED_FIELDS_MAX = 25
_EMBED_TEXT_MAX = {
    ("title",): 256,
    ("description",): 4096,
    ("footer", "text"): 2048,
    ("author", "name"): 256,
}
_FIELD_TEXT_MAX = {"name": 256, "value": 1024}
_ROWS_MAX = 5
_COMPONENTS_V2 = 1 << 15


def _too_long(limit: int) -> str:
    return f"BASE_TYPE_MAX_LENGTH: Must be {limit} or fewer in length."


def is_empty(payload: dict[str, Any], files: tuple[RecordedFile, ...]) -> bool:
    """Discord refuses to create a message with nothing to show."""
    shown = ("content", "embeds", "components", "poll", "sticker_ids")
    return not files and not any(payload.get(key) for key in shown)


def message_problems(payload: dict[str, Any]) -> dict[tuple[str, ...], str]:
    """What Discord would reject in a message payload, keyed by the path of the bad field."""
    problems: dict[tuple[str, ...], str] = {}
    content = payload.get("content") or ""
    if len(content) > _CONTENT_MAX:
        problems[("content",)] = _too_long(_CONTENT_MAX)
    embeds = payload.get("embeds") or []
    if len(embeds) > _EMBEDS_MAX:
        problems[("embeds",)] = _too_long(_EMBEDS_MAX)
    total = 0
    for index, embed in enumerate(embeds):
        where = ("embeds", str(index))
        for path, limit in _EMBED_TEXT_MAX.items():
            value: Any = embed
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            text = value if isinstance(value, str) else ""
            total += len(text)
            if len(text) > limit:
                problems[(*where, *path)] = _too_long(limit)
        fields = embed.get("fields") or []
        if len(fields) > _EMBED_FIELDS_MAX:
            problems[(*where, "fields")] = _too_long(_EMBED_FIELDS_MAX)
        for number, embed_field in enumerate(fields):
            for key, limit in _FIELD_TEXT_MAX.items():
                text = embed_field.get(key) or ""
                total += len(text)
                if len(text) > limit:
                    problems[(*where, "fields", str(number), key)] = _too_long(limit)
    if total > _EMBED_TOTAL_MAX:
        problems[("embeds",)] = f"Embed size exceeds maximum size of {_EMBED_TOTAL_MAX}"
    components = payload.get("components") or []
    if not (payload.get("flags") or 0) & _COMPONENTS_V2:
        if len(components) > _ROWS_MAX:
            problems[("components",)] = _too_long(_ROWS_MAX)
        for index, row in enumerate(components):
            if len(row.get("components") or []) > _ROWS_MAX:
                problems[("components", str(index), "components")] = _too_long(_ROWS_MAX)
    return problems


def _error_tree(problems: dict[tuple[str, ...], str]) -> dict[str, Any]:
    """Discord's nested ``errors`` object, which discord.py flattens into its exception text."""
    tree: dict[str, Any] = {}
    for path, text in problems.items():
        node = tree
        for key in path:
            node = node.setdefault(key, {})
        code, _, message = text.partition(": ") if ": " in text else ("", "", text)
        node.setdefault("_errors", []).append({"code": code or "INVALID", "message": message})
    return tree
