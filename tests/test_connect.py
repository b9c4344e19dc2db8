"""The start-up retry's pure parts; the loop itself runs in tests/e2e/test_embargo_network.py."""

from bot.connect import Backoff, describe


def test_backoff_doubles_up_to_its_cap():
    backoff = Backoff(first=1.0, cap=60.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(10_000) == 60  # no overflow after a long outage


def test_the_reason_is_one_short_line():
    assert describe(TimeoutError()) == "timed out"
    long = describe(OSError("no\nroute " + "x" * 500))
    assert "\n" not in long
    assert long.startswith("no route x")
    assert len(long) == 200
