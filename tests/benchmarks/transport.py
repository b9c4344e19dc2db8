"""HTTP recorded instead of sent: the benchmark's transport between discord.py and the stand-in.

discord.py hands every REST request, for its own calls (``HTTPClient.request``) and for
interaction answers (``AsyncWebhookAdapter.request``), to the one aiohttp session it opened at
login, as ``session.request(method, url, data=..., headers=..., params=...)``, with the body
already JSON-encoded. ``RecordingSession`` takes that session's place once the bot is logged in
(the harness's loopback server still answers the login and the command sync), hands each
request straight to the stand-in's ``DiscordApi.answer`` and gives discord.py back a response
it reads exactly as it reads aiohttp's (``status``, ``headers``, ``text()``). Everything
discord.py does on either side of the wire still runs: building the payload and encoding it,
then decoding the answer and building ``Message`` objects from it. What is left out is the
socket round trip and aiohttp's HTTP framing on both ends, which on a loopback server cost
about as much as a whole no-op command and varied with the machine's load.

Each exchange is stamped when discord.py hands the request over (the moment its payload is
out) and when the stand-in's answer is ready, so the timing can leave out the stand-in's own
work: see ``Exchange`` and ``commands.CommandBench.run_one``.

The bot's ``HTTPClient`` keeps its session in a name-mangled attribute, which ``Interaction``
objects also read (``state.http._HTTPClient__session``); swapping it is the one private
discord.py name this module touches.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import discord
from multidict import CIMultiDict, CIMultiDictProxy

from tests.support.standin.rest import API_PREFIX, DiscordApi, RecordedRequest

_JSON = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
_EMPTY: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found"}


@dataclass
class Exchange:
    """One request: when discord.py handed it over, and when the stand-in had answered it."""

    request: RecordedRequest
    handed_over: float
    answered: float


class RecordedResponse:
    """What discord.py reads of an aiohttp response: status, reason, headers and the text."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.reason = _REASONS.get(status, "")  # in discord.py's HTTPException messages
        self.headers = _JSON if body is not None else _EMPTY
        self._text = json.dumps(body) if body is not None else ""

    async def text(self, encoding: str = "utf-8") -> str:
        return self._text

    async def __aenter__(self) -> RecordedResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class RecordingSession:
    """Stands in for the bot's aiohttp session; see the module docstring."""

    def __init__(self, api: DiscordApi, real: aiohttp.ClientSession) -> None:
        self.api = api
        self.real = real  # closed with the bot, as discord.py closes its own session
        self.exchanges: list[Exchange] = []

    @property
    def closed(self) -> bool:
        return self.real.closed

    async def close(self) -> None:
        await self.real.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        data: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        **_: Any,
    ) -> RecordedResponse:
        handed_over = time.perf_counter()
        if data is not None and not isinstance(data, str):
            # Multipart bodies (file uploads) are not among the measured commands.
            raise TypeError(f"the in-process transport records JSON bodies only, got {data!r}")
        reason = (headers or {}).get("X-Audit-Log-Reason")
        request = RecordedRequest(
            method=method,
            path=urlsplit(url).path.removeprefix(API_PREFIX),
            query={key: str(value) for key, value in (params or {}).items()},
            json=json.loads(data) if data else None,
            reason=unquote(reason) if reason is not None else None,
        )
        body = self.api.answer(request)
        response = RecordedResponse(request.status, body)
        self.exchanges.append(Exchange(request, handed_over, time.perf_counter()))
        return response


def record_in_process(bot: discord.Client, api: DiscordApi) -> RecordingSession:
    """From now on, ``bot``'s REST requests go to ``api`` in-process, not over the socket."""
    real = bot.http._HTTPClient__session  # type: ignore[attr-defined]
    session = RecordingSession(api, real)
    bot.http._HTTPClient__session = session  # type: ignore[attr-defined]
    return session
