from datetime import UTC, datetime, timedelta

import pytest

from bot.spoilers.durations import SpoilerWindow, parse_window
from bot.spoilers.policy import Delivery, SpoilerMode, SpoilerSettings, decide

RELEASE = datetime(2025, 4, 10, 7, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def verdict(now, settings=None, *, show="black-mirror", channels=()):
    return decide(
        release_at=RELEASE,
        now=now,
        settings=settings or SpoilerSettings(),
        show_slug=show,
        channel_ids=channels,
    )


def test_before_release_nothing_is_shown():
    decision = verdict(RELEASE - SECOND)
    assert decision.delivery is Delivery.UNRELEASED


def test_unreleased_even_in_a_spoilers_ok_channel():
    settings = SpoilerSettings(spoilers_ok_channels=frozenset({5}))
    assert verdict(RELEASE - SECOND, settings, channels={5}).delivery is Delivery.UNRELEASED


def test_exact_release_instant_opens_the_window():
    assert verdict(RELEASE).delivery is Delivery.TAGGED


def test_default_window_is_seven_days_half_open():
    assert verdict(RELEASE + timedelta(days=7) - SECOND).delivery is Delivery.TAGGED
    decision = verdict(RELEASE + timedelta(days=7))
    assert decision.delivery is Delivery.PLAIN
    assert decision.window_ends_at == RELEASE + timedelta(days=7)


@pytest.mark.parametrize(
    ("mode", "delivery", "ephemeral"),
    [
        (SpoilerMode.TAGGED, Delivery.TAGGED, False),
        (SpoilerMode.PRIVATE, Delivery.PRIVATE, True),
        (SpoilerMode.REFUSE, Delivery.REFUSED, False),
    ],
)
def test_mode_decides_delivery_inside_the_window(mode, delivery, ephemeral):
    decision = verdict(RELEASE + timedelta(hours=1), SpoilerSettings(mode=mode))
    assert decision.delivery is delivery
    assert decision.ephemeral is ephemeral


def test_window_off_is_plain_right_after_release():
    settings = SpoilerSettings(window=parse_window("off"), mode=SpoilerMode.REFUSE)
    decision = verdict(RELEASE, settings)
    assert decision.delivery is Delivery.PLAIN
    assert "no spoiler window" in decision.reason


def test_forever_never_ends():
    settings = SpoilerSettings(window=parse_window("forever"))
    decision = verdict(RELEASE + timedelta(days=365 * 50), settings)
    assert decision.delivery is Delivery.TAGGED
    assert decision.window_ends_at is None


def test_per_show_override_beats_server_window():
    settings = SpoilerSettings(
        window=parse_window("1d"), show_windows=(("black-mirror", parse_window("30d")),)
    )
    later = RELEASE + timedelta(days=10)
    assert verdict(later, settings).delivery is Delivery.TAGGED
    assert verdict(later, settings, show="other-show").delivery is Delivery.PLAIN


def test_per_show_override_can_switch_off():
    settings = SpoilerSettings(show_windows=(("black-mirror", SpoilerWindow(timedelta(0))),))
    assert verdict(RELEASE + SECOND, settings).delivery is Delivery.PLAIN


def test_spoilers_ok_channel_is_plain_inside_window():
    settings = SpoilerSettings(mode=SpoilerMode.REFUSE, spoilers_ok_channels=frozenset({42}))
    assert verdict(RELEASE + SECOND, settings, channels={42}).delivery is Delivery.PLAIN
    assert verdict(RELEASE + SECOND, settings, channels={43}).delivery is Delivery.REFUSED


def test_thread_inherits_spoilers_ok_parent():
    settings = SpoilerSettings(spoilers_ok_channels=frozenset({42}))
    assert verdict(RELEASE + SECOND, settings, channels={99, 42}).delivery is Delivery.PLAIN


def test_naive_times_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        verdict(datetime(2025, 4, 11))  # deliberately naive


# -- a member who marked the episode watched ------------------------------------------------------


def watcher(now, settings, *, channels=()):
    return decide(
        release_at=RELEASE,
        now=now,
        settings=settings,
        show_slug="black-mirror",
        channel_ids=channels,
        watched=True,
    )


def test_a_watcher_gets_it_privately_where_the_server_refuses():
    refuse = SpoilerSettings(mode=SpoilerMode.REFUSE)
    decision = watcher(RELEASE + timedelta(hours=1), refuse)
    assert decision.delivery is Delivery.PRIVATE
    assert decision.ephemeral
    assert decision.because_watched
    assert decision.window_ends_at == RELEASE + timedelta(days=7)
    # The same member, not marked: refused.
    assert verdict(RELEASE + timedelta(hours=1), refuse).delivery is Delivery.REFUSED


@pytest.mark.parametrize(
    ("mode", "delivery"),
    [(SpoilerMode.TAGGED, Delivery.TAGGED), (SpoilerMode.PRIVATE, Delivery.PRIVATE)],
)
def test_elsewhere_a_watcher_gets_what_the_server_decides(mode, delivery):
    # Tagged stays a tagged channel post: everyone else in the channel reads it too.
    decision = watcher(RELEASE + timedelta(hours=1), SpoilerSettings(mode=mode))
    assert decision.delivery is delivery
    assert not decision.because_watched


def test_watching_never_unlocks_an_unreleased_episode_and_plain_stays_plain():
    refuse = SpoilerSettings(mode=SpoilerMode.REFUSE, spoilers_ok_channels=frozenset({5}))
    assert watcher(RELEASE - SECOND, refuse).delivery is Delivery.UNRELEASED
    plain = watcher(RELEASE + timedelta(hours=1), refuse, channels={5})
    assert plain.delivery is Delivery.PLAIN
    assert not plain.because_watched
    after = watcher(RELEASE + timedelta(days=8), refuse)
    assert after.delivery is Delivery.PLAIN
    assert not after.because_watched
