"""The stand-in served on 127.0.0.1: Discord's REST API over HTTP, and its gateway.

:class:`DiscordStandIn` is :class:`~.rest.DiscordApi` (the one model of Discord the tests use)
reachable the two ways discord.py talks to Discord: HTTP for REST (every request is recorded
and answered by :meth:`~.rest.DiscordApi.answer`, with Discord's rate-limit headers added), and
a websocket gateway (HELLO, IDENTIFY, READY and GUILD_CREATE, heartbeats, RESUME, member
chunks) for a real bot process. The in-process harness uses the same server for REST and hands
gateway events straight to the bot's parsers instead.

Shards, as Discord runs them: each IDENTIFY opens a session for the shard it names
(``"shard": [shard_id, shard_count]``; a client that does not shard is shard 0 of 1), and each
session gets READY and GUILD_CREATE for its own servers only. Every later event goes to the
session of the shard Discord would pick: ``(guild_id >> 22) % shard_count`` for an event of a
server (an interaction in it, a message, the server itself), shard 0 for the rest (DMs). A
shard's newest session with an open websocket gets it; while none is open, its newest session
keeps it for RESUME. For tests of sharded bots, possibly several processes:

- ``DiscordStandIn(recommended_shards=2, max_concurrency=1)``: what ``GET /gateway/bot``
  answers (``shards``, and ``session_start_limit.max_concurrency``); both can be changed later
  (``standin.recommended_shards``, ``standin.max_concurrency``);
- ``standin.sessions_by_shard``: ``{shard_id: GatewaySession}``, each shard's session that gets
  its events now; ``standin.shard_count``: the count of the newest session;
  ``standin.shard_of_guild(guild_id)``: the shard a server's events go to;
- ``standin.identify_log``: every IDENTIFY received, in order (shard, count, bucket
  ``shard_id % max_concurrency``, ``time.monotonic()`` instant); ``standin.identify_gaps()``:
  the seconds between consecutive IDENTIFYs of each bucket;
- ``world.add_guild(name, shard=(shard_id, shard_count))``: a server whose id lands on a shard;
- ``max_guilds_per_shard``: a shard that would hold more servers is refused (close 4011,
  "Sharding required"), as Discord refuses one past 2,500;
- ``dispatch(name, data, shard_id=...)``, ``request_reconnect``, ``invalidate_session`` and
  ``drop_connection`` take ``shard_id=`` to pick a shard's session (default: the newest open
  session, which for an unsharded bot is its only one).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, WSMsgType, web

from .gateway import GatewayConnection, GatewaySession, IdentifyRecord, SentEvent
from .rest import (
    API_PREFIX,
    DEFAULT_TOKEN,
    DiscordApi,
    InteractionRecord,
    RecordedRequest,
    UploadedFile,
)
from .world import World

log = logging.getLogger(__name__)

# The most servers Discord lets one shard hold: more, and IDENTIFY is closed with 4011.
MAX_GUILDS_PER_SHARD = 2500
# Gateway intents Discord calls privileged: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT.
GUILD_MEMBERS_INTENT = 1 << 1
PRIVILEGED_INTENTS = GUILD_MEMBERS_INTENT | (1 << 8) | (1 << 15)


class DiscordStandIn(DiscordApi):
    """The stand-in server. ``async with DiscordStandIn() as standin:`` or start()/stop()."""

    def __init__(
        self,
        world: World | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        callback_deadline: float | None = 3.0,
        heartbeat_interval: float = 41.25,
        recommended_shards: int = 1,
        max_concurrency: int = 1,
        max_guilds_per_shard: int = MAX_GUILDS_PER_SHARD,
    ) -> None:
        super().__init__(world, token=token, callback_deadline=callback_deadline)
        self.heartbeat_interval = heartbeat_interval
        self.recommended_shards = recommended_shards
        self.max_concurrency = max_concurrency
        self.max_guilds_per_shard = max_guilds_per_shard
        self.identify_log: list[IdentifyRecord] = []
        self.sessions: list[GatewaySession] = []
        self.connections: list[GatewayConnection] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._gateway_emits: asyncio.Task[None] | None = None
        self.event_listeners.append(self._emit_to_gateway)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("GET", "/gateway", self._gateway)
        app.router.add_route(
            "GET", "/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment
        )
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        log.info("Discord stand-in listening on %s", self.base_url)

    @property
    def running(self) -> bool:
        return self._runner is not None

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
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    # ------------------------------------------------------------------ HTTP

    async def _http(self, http: web.Request) -> web.Response:
        request = await _record(http)
        if not self._authorised(http, request.path):
            self.requests.append(request)
            request.status = 401
            request.response = {"message": "401: Unauthorized", "code": 0}
            self.notify()
            return _json(request.response, status=401)
        body = self.answer(request)
        headers: dict[str, str] = {}
        rule = next((r for r in self.faults if request in r.hits), None)
        if self.globally_limited and request is self.globally_limited[-1]:
            headers = _rate_limited_headers(request, float(body["retry_after"]), True)
        elif rule is not None and rule.status == 429:
            headers = _rate_limited_headers(request, rule.retry_after, rule.is_global)
        elif rule is not None and isinstance(rule.body, str):
            return web.Response(text=rule.body, status=rule.status, content_type="text/html")
        elif 200 <= request.status < 300:
            headers = _rate_limit_headers(request)
        if body is None:
            return web.Response(status=request.status, headers=headers)
        return _json(body, status=request.status, headers=headers)

    def _authorised(self, request: web.Request, path: str) -> bool:
        # Interaction callbacks and webhook-token routes are authorised by their token alone.
        if path.startswith("/interactions/") or re.match(r"^/webhooks/\d+/[^/]+", path):
            return True
        return request.headers.get("Authorization") == f"Bot {self.token}"

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(int(request.match_info["attachment_id"] or 0))
        if data is None:
            raise web.HTTPNotFound
        return web.Response(body=data, content_type="application/octet-stream")

    # --- interactions

    async def send_interaction(self, payload: dict[str, Any]) -> InteractionRecord:
        """Dispatch INTERACTION_CREATE and start tracking the bot's answers to it."""
        record = self.expect_interaction(payload)
        await self.dispatch("INTERACTION_CREATE", payload)
        record.dispatched_at = time.monotonic()
        return record

    # ------------------------------------------------------------------ gateway

    @property
    def current_session(self) -> GatewaySession | None:
        """The most recent identified session whose websocket is open."""
        for session in reversed(self.sessions):
            if session.open:
                return session
        return None

    @property
    def shard_count(self) -> int:
        """The shard count of the newest session (1 before any)."""
        return self.sessions[-1].shard[1] if self.sessions else 1

    def shard_of_guild(self, guild_id: int) -> int:
        """The shard a server's events go to, Discord's way."""
        return (guild_id >> 22) % self.shard_count

    @property
    def sessions_by_shard(self) -> dict[int, GatewaySession]:
        """Each shard's session that gets its events now: its newest with an open websocket,
        else its newest (which keeps them for RESUME). Sessions of another shard count than
        the newest session's are left out: their bot was restarted differently."""
        count = self.shard_count
        found: dict[int, GatewaySession] = {}
        for session in self.sessions:
            if session.shard[1] != count:
                continue
            held = found.get(session.shard_id)
            if held is None or session.open or not held.open:
                found[session.shard_id] = session
        return found

    def shard_of_event(self, name: str, data: Any) -> int:
        """The shard Discord sends an event on: its server's, or shard 0 (DMs, the rest)."""
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        if guild_id is None and name.startswith("GUILD_") and isinstance(data, dict):
            guild_id = data.get("id")  # GUILD_CREATE, GUILD_UPDATE, GUILD_DELETE: the server
        return 0 if guild_id is None else self.shard_of_guild(int(guild_id))

    async def dispatch(self, name: str, data: Any, *, shard_id: int | None = None) -> SentEvent:
        """Send a DISPATCH event to the session of its shard (``shard_id``, or the one
        :meth:`shard_of_event` picks), buffered for RESUME if that session is away."""
        shard = self.shard_of_event(name, data) if shard_id is None else shard_id
        session = self.sessions_by_shard.get(shard)
        if session is None:
            raise RuntimeError(f"no gateway session of shard {shard} to dispatch {name} to")
        return await self._dispatch_to(session, name, data)

    def identify_gaps(self) -> dict[int, list[float]]:
        """The seconds between consecutive IDENTIFYs of each session-start bucket."""
        last: dict[int, float] = {}
        gaps: dict[int, list[float]] = {}
        for record in self.identify_log:
            if record.bucket in last:
                gaps.setdefault(record.bucket, []).append(record.at - last[record.bucket])
            last[record.bucket] = record.at
        return gaps

    async def _dispatch_to(self, session: GatewaySession, name: str, data: Any) -> SentEvent:
        session.seq += 1
        event = SentEvent(seq=session.seq, name=name, data=data)
        session.events.append(event)
        connection = session.connection
        if connection is not None and connection.open:
            await connection.send({"op": 0, "t": name, "s": event.seq, "d": data})
        self.notify()
        return event

    def _emit_to_gateway(self, name: str, data: dict[str, Any]) -> None:
        """Send an emitted event to the gateway session, after the ones emitted before it."""
        if not self.sessions:
            return  # nobody connected: an in-process driver hears emit() itself
        previous = self._gateway_emits
        self._gateway_emits = asyncio.get_running_loop().create_task(
            self._dispatch_after(previous, name, data), name=f"stand-in {name}"
        )

    async def _dispatch_after(
        self, previous: asyncio.Task[None] | None, name: str, data: dict[str, Any]
    ) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        await self.dispatch(name, data)

    async def request_reconnect(self, *, shard_id: int | None = None) -> None:
        """Send op 7 RECONNECT: the client should reconnect and RESUME."""
        session = self._require_session(shard_id)
        assert session.connection is not None
        await session.connection.send({"op": 7, "d": None})

    async def invalidate_session(
        self, *, resumable: bool = False, shard_id: int | None = None
    ) -> None:
        """Send op 9 INVALID_SESSION; with ``resumable=False`` the client must IDENTIFY again."""
        session = self._require_session(shard_id)
        session.resumable = resumable
        assert session.connection is not None
        await session.connection.send({"op": 9, "d": resumable})

    async def drop_connection(self, code: int = 4000, *, shard_id: int | None = None) -> None:
        """Close the current websocket with ``code`` (4000 = unknown error: client resumes)."""
        session = self._require_session(shard_id)
        assert session.connection is not None
        await session.connection.close(code, "stand-in dropped the connection")

    def _require_session(self, shard_id: int | None = None) -> GatewaySession:
        """The newest open session, or with ``shard_id`` that shard's open session."""
        if shard_id is None:
            session = self.current_session
        else:
            session = self.sessions_by_shard.get(shard_id)
            session = session if session is not None and session.open else None
        if session is None:
            shard = "" if shard_id is None else f" of shard {shard_id}"
            raise RuntimeError(f"no open gateway session{shard}")
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
        shard = _shard(data.get("shard", [0, 1]))
        if shard is None:
            await connection.close(4010, "Invalid shard")
            return
        self.identify_log.append(
            IdentifyRecord(
                shard_id=shard[0],
                shard_count=shard[1],
                bucket=shard[0] % self.max_concurrency,
                at=time.monotonic(),
            )
        )
        self.session_starts += 1
        if data.get("token") != self.token:
            await connection.close(4004, "Authentication failed")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.world.application.privileged_intents:
            await connection.close(4014, "Disallowed intent(s)")
            return
        guilds = [g for g in self.world.guilds if (g.id >> 22) % shard[1] == shard[0]]
        if len(guilds) > self.max_guilds_per_shard:
            await connection.close(4011, "Sharding required")
            return
        session = GatewaySession(identify=data, shard=shard)
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
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "auth": {},
            "application": {"id": str(app.id), "flags": app.flags},
            "_trace": ['["discord-stand-in",{"micros":0}]'],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._dispatch_to(session, "READY", ready)
        for guild in guilds:
            payload = guild.to_gateway_payload(
                bot_id=self.world.bot_user.id, members_intent=bool(intents & GUILD_MEMBERS_INTENT)
            )
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


def _shard(value: Any) -> tuple[int, int] | None:
    """IDENTIFY's ``shard``: ``[shard_id, shard_count]`` with ``0 <= shard_id < shard_count``."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(type(n) is int for n in value)
        and 0 <= value[0] < value[1]
    ):
        return value[0], value[1]
    return None


async def _record(request: web.Request) -> RecordedRequest:
    """The request as discord.py sent it: JSON body, or multipart ``payload_json`` and files."""
    body: Any = None
    files: list[UploadedFile] = []
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            # discord.py sends flat multipart bodies: payload_json and files, never nested.
            assert isinstance(part, BodyPartReader), "a nested multipart body"
            data = await part.read(decode=False)
            if part.name == "payload_json":
                body = json.loads(data)
            else:
                files.append(
                    UploadedFile(
                        field=part.name or "",
                        filename=part.filename,
                        content_type=part.headers.get("Content-Type"),
                        data=bytes(data),
                    )
                )
    elif request.can_read_body:
        raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
    reason = request.headers.get("X-Audit-Log-Reason")
    return RecordedRequest(
        method=request.method,
        path=request.path[len(API_PREFIX) :],
        query=dict(request.query),
        json=body,
        files=tuple(files),
        headers={
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "user-agent", "x-audit-log-reason")
        },
        reason=unquote(reason) if reason is not None else None,
    )


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response whose Content-Type is exactly ``application/json``, as Discord sends it:
    discord.py compares the header verbatim, so aiohttp's ``; charset=utf-8`` would make it
    treat every body as text."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _bucket(method: str, path: str) -> str:
    template = re.sub(r"\d{15,}", ":id", path)
    return hashlib.sha1(f"{method} {template}".encode()).hexdigest()[:16]


def _rate_limit_headers(request: RecordedRequest) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "50",
        "X-RateLimit-Remaining": "49",
        "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
        "X-RateLimit-Reset-After": "1.000",
        "X-RateLimit-Bucket": _bucket(request.method, request.path),
    }


def _rate_limited_headers(
    request: RecordedRequest, retry_after: float, is_global: bool
) -> dict[str, str]:
    headers = {
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": _bucket(request.method, request.path),
        "X-RateLimit-Scope": "global" if is_global else "user",
        # discord.py treats a 429 without Via as a Cloudflare ban and does not retry.
        "Via": "1.1 google",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    return headers
