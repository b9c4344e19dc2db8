"""One gateway connection: transport compression and the sequence of dispatched events.

discord.py 2.7 asks for transport compression in the URL query (``compress=zlib-stream``, or
``zstd-stream`` when the ``zstandard`` package, or Python 3.14's ``compression.zstd``, is
importable). Each gateway message is then sent as one binary frame: zlib-stream frames share one
deflate context and end with a Z_SYNC_FLUSH marker; zstd-stream frames share one zstd stream and
are flushed per message.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web


class Compressor(Protocol):
    def __call__(self, data: bytes) -> bytes: ...


def zlib_stream() -> Compressor:
    context = zlib.compressobj()

    def compress(data: bytes) -> bytes:
        return context.compress(data) + context.flush(zlib.Z_SYNC_FLUSH)

    return compress


def zstd_stream() -> Compressor | None:
    try:
        import zstandard  # optional: only when a client asks for zstd
    except ImportError:
        return None
    context = zstandard.ZstdCompressor().compressobj()

    def compress(data: bytes) -> bytes:
        return context.compress(data) + context.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    return compress


@dataclass
class SentEvent:
    seq: int
    name: str
    data: Any


@dataclass
class GatewaySession:
    """A gateway session. It outlives its websocket so that RESUME can replay missed events."""

    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    identify: dict[str, Any] | None = None
    seq: int = 0
    events: list[SentEvent] = field(default_factory=list)
    resumable: bool = True
    connection: GatewayConnection | None = None
    # (shard id, shard count) from IDENTIFY; a client that does not shard is shard 0 of 1.
    shard: tuple[int, int] = (0, 1)

    @property
    def shard_id(self) -> int:
        return self.shard[0]

    @property
    def open(self) -> bool:
        """Whether its websocket is connected now."""
        return self.connection is not None and self.connection.open


@dataclass(frozen=True)
class IdentifyRecord:
    """One IDENTIFY the stand-in received (whether it then accepted it or not), as Discord
    counts them against the session-start limits."""

    shard_id: int
    shard_count: int
    bucket: int  # shard_id % max_concurrency, the stand-in's at that moment
    at: float  # time.monotonic()


class GatewayConnection:
    """One websocket. Sends are serialised because compression contexts are stateful."""

    def __init__(self, ws: web.WebSocketResponse, compression: str | None, query: dict[str, str]):
        self.ws = ws
        self.compression = compression
        self.query = query
        self.session: GatewaySession | None = None
        self.received: list[dict[str, Any]] = []  # every frame the bot sent, as decoded JSON
        self.heartbeats = 0
        self.close_code: int | None = None
        self._lock = asyncio.Lock()
        self._compress: Compressor | None = None
        if compression == "zlib-stream":
            self._compress = zlib_stream()
        elif compression == "zstd-stream":
            self._compress = zstd_stream()

    @property
    def compression_supported(self) -> bool:
        return self.compression is None or self._compress is not None

    @property
    def open(self) -> bool:
        return not self.ws.closed

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return
            try:
                if self._compress is None:
                    await self.ws.send_str(text)
                else:
                    await self.ws.send_bytes(self._compress(text.encode()))
            except ConnectionResetError:
                # The client died before the socket was seen closed (kill -9): as when it is
                # closed, the session keeps the event for a RESUME.
                return

    async def close(self, code: int, message: str = "") -> None:
        self.close_code = code
        await self.ws.close(code=code, message=message.encode())
