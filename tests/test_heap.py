"""settle_heap (bot/client.py): at READY the cache is set aside from the garbage collector,
and a later READY still lets the old cache be collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from bot.client import settle_heap


class CachedServer:
    """A cycle, like a discord.py guild and its channels: only a collection frees it."""

    def __init__(self) -> None:
        self.channels = [self]


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test run keeps an ordinary heap


def test_the_cache_at_ready_is_out_of_the_collectors_reach():
    cache = [CachedServer() for _ in range(1000)]
    settle_heap()
    assert gc.get_freeze_count() >= len(cache)
    assert not any(o is cache[0] for o in gc.get_objects(generation=2))


def test_a_later_ready_lets_the_old_cache_be_collected():
    cache = [CachedServer() for _ in range(1000)]
    first = weakref.ref(cache[0])
    settle_heap()
    del cache  # a new session replaces the cache
    gc.collect()
    assert first() is not None  # frozen: no collection can free it
    settle_heap()
    assert first() is None
