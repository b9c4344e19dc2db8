"""The doubling sweep of discord.py's rate-limit buckets (bot/ratelimits.py): the walking a
fan-out costs grows linearly with the buckets it adds, and idle buckets still go."""

from __future__ import annotations

import inspect
import logging

import discord
import pytest
from discord.http import HTTPClient, Ratelimit

from bot.ratelimits import SWEEP_FROM, amortise_bucket_sweeps

FAN_OUT = 4000


@pytest.fixture
def walked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a bucket was asked whether it is idle: the sweep's walking."""
    calls = [0]
    original = Ratelimit.is_inactive

    def counting(self: Ratelimit) -> bool:
        calls[0] += 1
        return original(self)

    monkeypatch.setattr(Ratelimit, "is_inactive", counting)
    return calls


def channel_key(n: int) -> str:
    return f"POST /channels/{{channel_id}}/messages:{n}"


def test_the_private_discord_py_parts_the_sweep_relies_on_still_exist():
    # A discord.py release that renames these must fail here, not slow the bot silently.
    assert callable(HTTPClient._try_clear_expired_ratelimits)
    assert "_try_clear_expired_ratelimits" in inspect.getsource(HTTPClient.get_ratelimit)
    assert "self._buckets" in inspect.getsource(HTTPClient.__init__)


async def test_discord_py_alone_walks_every_bucket_for_each_new_one(walked: list[int]):
    # The cost the doubling sweep removes: quadratic in the channels of a fan-out.
    http = HTTPClient(discord.utils.MISSING)
    for n in range(FAN_OUT):
        http.get_ratelimit(channel_key(n))
    assert walked[0] > (FAN_OUT - SWEEP_FROM) ** 2 // 2


async def test_a_fan_out_walks_the_buckets_a_constant_number_of_times_per_bucket(
    walked: list[int],
):
    http = HTTPClient(discord.utils.MISSING)
    sweep = amortise_bucket_sweeps(http)
    assert sweep is not None
    for n in range(FAN_OUT):
        http.get_ratelimit(channel_key(n))
    assert len(http._buckets) == FAN_OUT  # all active: nothing to drop
    assert walked[0] < 2 * FAN_OUT
    assert sweep.sweeps == 4  # at 256, 512, 1024 and 2048 buckets


async def test_idle_buckets_are_still_dropped_once_the_count_doubles(walked: list[int]):
    http = HTTPClient(discord.utils.MISSING)
    sweep = amortise_bucket_sweeps(http)
    assert sweep is not None
    for n in range(SWEEP_FROM - 1):
        http.get_ratelimit(channel_key(n))
    for bucket in http._buckets.values():
        bucket._last_request -= 301  # discord.py drops buckets idle for 300 s
    in_use = http._buckets[channel_key(0)]
    in_use._last_request += 301  # used just now
    http.get_ratelimit(channel_key(SWEEP_FROM))  # the 256th bucket: a sweep
    assert set(http._buckets) == {channel_key(0), channel_key(SWEEP_FROM)}
    assert http._buckets[channel_key(0)] is in_use
    assert sweep.next_at == SWEEP_FROM
    assert sweep.sweeps == 1


async def test_a_discord_py_without_the_sweep_keeps_its_own_behaviour(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.delattr(HTTPClient, "_try_clear_expired_ratelimits")
    http = HTTPClient(discord.utils.MISSING)
    with caplog.at_level(logging.WARNING):
        assert amortise_bucket_sweeps(http) is None
    assert "no rate-limit sweep" in caplog.text
    assert "_try_clear_expired_ratelimits" not in vars(http)
