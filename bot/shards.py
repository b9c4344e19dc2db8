"""Shards: which one serves a server, and when one may log in.

A bot with ``shard_count`` shards gets each server's events on shard
``(guild_id >> 22) % shard_count``, and each process runs some of the shards (SHARD_IDS).

Discord starts a bot's gateway sessions in ``max_concurrency`` buckets (``GET /gateway/bot``,
``session_start_limit``): shard ``n`` is in bucket ``n % max_concurrency``, and each bucket
takes one IDENTIFY every 5 seconds, whichever process sends it. Before identifying, a shard
reserves the next free instant of its bucket in the database (``bot/storage/identify.py``),
one reservation at a time per bucket, and waits until then: processes sharing the database
never identify one bucket twice within the interval, and none of them holds a lock while it
waits.

Instants are seconds since the epoch on the database's clock, so processes on machines whose
clocks disagree still agree on the order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Discord's interval between two IDENTIFYs of one bucket.
IDENTIFY_INTERVAL_S = 5.0
# What the turns are spaced by: Discord's interval and a margin, since a turn is reserved
# just before its IDENTIFY is sent and the time until Discord receives it varies from one
# login to the next (a busy machine, another process's network).
IDENTIFY_SPACING_S = IDENTIFY_INTERVAL_S + 0.5


@dataclass(frozen=True, slots=True)
class IdentifySlot:
    """A reserved instant to identify at, and how long the shard waits for it."""

    at: float  # seconds since the epoch, on the database's clock
    wait_s: float


def guild_shard(guild_id: int, shard_count: int) -> int:
    """The shard that gets a server's events (Discord's rule)."""
    return (guild_id >> 22) % shard_count


def identify_bucket(shard_id: int, max_concurrency: int) -> int:
    """The session-start bucket of a shard."""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
    return shard_id % max_concurrency


def queue_horizon_s(shard_count: int, max_concurrency: int, interval_s: float) -> float:
    """How far ahead a bucket's last reservation can be when nothing is wrong: every shard of
    the bucket queued at once, each one interval after the one before (a shard waits for one
    reservation at a time)."""
    return math.ceil(shard_count / max_concurrency) * interval_s


def next_identify_at(
    reserved: float | None, now: float, *, interval_s: float, horizon_s: float
) -> float:
    """The instant a shard may identify: ``interval_s`` after the bucket's last reservation
    (``reserved``, None if there was none), and never before ``now``.

    A reservation further ahead than ``horizon_s`` cannot come from shards queueing: the
    database's clock was set back since it was made. Waiting for it could keep the shard
    offline for as long as the clock moved, so it is treated as if made ``now``.
    """
    if reserved is None:
        return now
    if reserved - now > horizon_s:
        reserved = now
    return max(now, reserved + interval_s)
