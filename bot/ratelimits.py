"""Keeping discord.py's rate-limit bookkeeping linear in a release fan-out.

discord.py keeps a rate-limit bucket per route and channel, and once it holds 256 of them it
walks all of them for idle ones each time it adds another. A release posted to every server
adds a bucket per channel and per thread, so that walk alone made a fan-out quadratic in the
number of servers, stalling the event loop (and every command) more the longer it ran.

``amortise_bucket_sweeps`` keeps discord.py's sweep but runs it only when the number of
buckets has doubled since the last one: the same idle buckets go, at most twice the live ones
are ever kept, and the walking costs a constant per bucket added. It wraps a private method
of discord.py's ``HTTPClient``; ``tests/test_ratelimits.py`` fails if a release renames it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from discord.http import HTTPClient

log = logging.getLogger(__name__)

# discord.py's own threshold: below it, it never sweeps.
SWEEP_FROM = 256


class DoublingSweep:
    """Stands in for ``HTTPClient._try_clear_expired_ratelimits``: calls the original only
    when the bucket count reached twice what the last sweep left (and at least SWEEP_FROM)."""

    def __init__(self, http: HTTPClient, sweep: Callable[[], None]) -> None:
        self._http = http
        self._sweep = sweep
        self.next_at = SWEEP_FROM
        self.sweeps = 0

    def __call__(self) -> None:
        count = len(self._http._buckets)
        if count < self.next_at:
            return
        self._sweep()
        self.sweeps += 1
        self.next_at = max(SWEEP_FROM, 2 * len(self._http._buckets))


def amortise_bucket_sweeps(http: HTTPClient) -> DoublingSweep | None:
    """Install the doubling sweep on ``http``; None (discord.py's behaviour kept, one
    warning) if this discord.py no longer has the method it replaces."""
    sweep = getattr(http, "_try_clear_expired_ratelimits", None)
    if not callable(sweep) or not isinstance(getattr(http, "_buckets", None), dict):
        log.warning(
            "this discord.py has no rate-limit sweep to amortise: keeping its own, which "
            "slows down large release fan-outs"
        )
        return None
    doubling = DoublingSweep(http, sweep)
    http._try_clear_expired_ratelimits = doubling  # type: ignore[method-assign]
    return doubling
