"""The discussion calendar, tested directly: what is due, what is skipped, when to wake."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.calendar import (
    CATCH_UP_LIMIT,
    LEDGER_KEEP,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    AnnounceSettings,
    AnnounceTarget,
    Calendar,
    DueReason,
    GuildSchedule,
    LedgerEntry,
    PostKey,
    PostKind,
    PostState,
    earliest_wake,
    post_nonce,
    prune_before,
    settle,
)
from bot.content.files import release_instant
from bot.content.models import Episode
from bot.spoilers.durations import SpoilerWindow, parse_window
from bot.spoilers.policy import Delivery, SpoilerSettings, decide

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
GUILD = 100
CHANNEL = 555
RELEASE = PostKind.RELEASE
CLOSED = PostKind.WINDOW_CLOSED


def episode(number: int, release_at: datetime, show: str = "show-a") -> Episode:
    return Episode(show, show.title(), 1, number, f"Title {number}", release_at)


def announce(set_at: datetime = T0 - 30 * DAY, channel: int = CHANNEL, **shows) -> AnnounceSettings:
    return AnnounceSettings(AnnounceTarget(channel, None, set_at), shows)


def guild(
    guild_id: int = GUILD,
    *,
    announce_settings: AnnounceSettings | None = None,
    window: str = "7d",
    show_windows: dict[str, str] | None = None,
    pruned_before: datetime | None = None,
) -> GuildSchedule:
    spoilers = SpoilerSettings(
        window=parse_window(window),
        show_windows=tuple(sorted((s, parse_window(w)) for s, w in (show_windows or {}).items())),
    )
    return GuildSchedule(guild_id, announce_settings or announce(), spoilers, pruned_before)


def plan_at(calendar, guilds, now, *, since=None, ledger=None, recheck=(), changed=False):
    index = calendar.index(guilds)
    ledger = ledger or {}
    retry = [key for key, entry in ledger.items() if not entry.settled]
    found = calendar.candidates(
        index, now=now, since=since, content_changed=changed, recheck=recheck, retry=retry
    )
    return settle(found, ledger, now=now)


def posted(plan) -> set[tuple[int, str, PostKind]]:
    return {tuple(item.key) for item in plan.post}


def record(ledger, plan, now, state=PostState.POSTED):
    for item in plan.post:
        ledger[item.key] = LedgerEntry(state, 1, now)
    for candidate in plan.skip:
        ledger[candidate.key] = LedgerEntry(PostState.SKIPPED, 0, now)


# -- release posts -----------------------------------------------------------------------------


def test_release_post_falls_due_at_the_release_instant_and_not_before():
    ep = episode(1, T0 + HOUR)
    calendar = Calendar([ep])
    guilds = [guild()]
    index = calendar.index(guilds)
    assert calendar.next_due(index, after=T0) == T0 + HOUR
    assert plan_at(calendar, guilds, T0 + HOUR - SECOND, since=T0).post == []
    plan = plan_at(calendar, guilds, T0 + HOUR, since=T0)
    assert posted(plan) == {(GUILD, ep.key, RELEASE)}
    item = plan.post[0]
    assert item.channel_id == CHANNEL
    assert item.reason is DueReason.ON_TIME
    assert item.late_by == timedelta(0)
    assert item.window_ends_at == T0 + HOUR + 7 * DAY


def test_no_announce_channel_or_show_off_posts_nothing():
    ep = episode(1, T0)
    other = episode(1, T0, show="show-b")
    calendar = Calendar([ep, other])
    guilds = [
        guild(1, announce_settings=AnnounceSettings()),
        guild(2, announce_settings=announce(**{"show-a": None})),
    ]
    plan = plan_at(calendar, guilds, T0 + DAY * 7, since=T0 - SECOND)
    assert posted(plan) | {tuple(c.key) for c in plan.skip} == {
        (2, other.key, RELEASE),
        (2, other.key, CLOSED),
    }
    assert calendar.next_due(calendar.index(guilds[:1]), after=T0 - DAY) is None


def test_per_show_override_posts_in_its_own_channel_with_its_ping():
    ep = episode(1, T0)
    override = AnnounceTarget(777, 42, T0 - DAY)
    calendar = Calendar([ep])
    plan = plan_at(calendar, [guild(announce_settings=announce(**{"show-a": override}))], T0,
                   since=T0 - SECOND)  # fmt: skip
    assert [(i.channel_id, i.ping_role_id) for i in plan.post] == [(777, 42)]


def test_release_posts_only_for_episodes_released_after_the_channel_was_set():
    before, at, after = episode(1, T0 - SECOND), episode(2, T0), episode(3, T0 + SECOND)
    calendar = Calendar([before, at, after])
    guilds = [guild(announce_settings=announce(set_at=T0), window="forever")]
    plan = plan_at(calendar, guilds, T0 + HOUR, since=T0 - HOUR)
    assert posted(plan) == {(GUILD, at.key, RELEASE), (GUILD, after.key, RELEASE)}


# -- window-closed posts -----------------------------------------------------------------------


def test_close_post_falls_due_when_the_window_ends():
    ep = episode(1, T0)
    calendar = Calendar([ep])
    guilds = [guild(window="36h")]
    index = calendar.index(guilds)
    assert calendar.next_due(index, after=T0) == T0 + 36 * HOUR
    assert posted(plan_at(calendar, guilds, T0 + 36 * HOUR - SECOND, since=T0)) == set()
    plan = plan_at(calendar, guilds, T0 + 36 * HOUR, since=T0)
    assert posted(plan) == {(GUILD, ep.key, CLOSED)}


def test_close_post_for_an_episode_released_before_the_channel_was_set():
    ep = episode(1, T0 - 3 * DAY)  # window ends T0 + 4 days; channel set at T0
    calendar = Calendar([ep])
    guilds = [guild(announce_settings=announce(set_at=T0))]
    index = calendar.index(guilds)
    assert calendar.next_due(index, after=T0) == T0 + 4 * DAY
    plan = plan_at(calendar, guilds, T0 + 4 * DAY, since=T0)
    assert posted(plan) == {(GUILD, ep.key, CLOSED)}


def test_a_window_ending_at_the_instant_the_channel_was_set_counts_as_after():
    ep = episode(1, T0 - 7 * DAY)
    calendar = Calendar([ep])
    guilds = [guild(announce_settings=announce(set_at=T0))]
    assert posted(plan_at(calendar, guilds, T0, since=T0 - SECOND)) == {(GUILD, ep.key, CLOSED)}


def test_no_close_post_for_a_window_that_ended_before_the_channel_was_set():
    ep = episode(1, T0 - 8 * DAY)
    calendar = Calendar([ep])
    guilds = [guild(announce_settings=announce(set_at=T0))]
    assert plan_at(calendar, guilds, T0 + HOUR, since=T0, recheck=[GUILD]).post == []


def test_off_means_no_close_post_and_forever_means_none_ever():
    ep = episode(1, T0)
    calendar = Calendar([ep])
    for window in ("off", "forever"):
        guilds = [guild(window=window)]
        index = calendar.index(guilds)
        assert calendar.next_due(index, after=T0) is None
        plan = plan_at(calendar, guilds, T0 + 3650 * DAY, since=T0 - SECOND, recheck=[GUILD])
        assert posted(plan) == set()
    # The release post is still made; with `off` its window ends at release.
    plan = plan_at(calendar, [guild(window="off")], T0, since=T0 - SECOND)
    assert posted(plan) == {(GUILD, ep.key, RELEASE)}
    assert plan.post[0].window_ends_at == T0
    plan = plan_at(calendar, [guild(window="forever")], T0, since=T0 - SECOND)
    assert plan.post[0].window_ends_at is None


def test_per_show_windows_move_only_their_show():
    a, b = episode(1, T0), episode(1, T0, show="show-b")
    calendar = Calendar([a, b])
    guilds = [guild(window="7d", show_windows={"show-b": "1d"})]
    index = calendar.index(guilds)
    assert calendar.next_due(index, after=T0) == T0 + DAY
    plan = plan_at(calendar, guilds, T0 + DAY, since=T0)
    assert posted(plan) == {(GUILD, b.key, CLOSED)}
    assert calendar.next_due(index, after=T0 + DAY) == T0 + 7 * DAY
    # A per-show `forever` removes that show's close post; `off` too.
    for window in ("forever", "off"):
        guilds = [guild(window="7d", show_windows={"show-a": window})]
        plan = plan_at(calendar, guilds, T0 + 7 * DAY, since=T0)
        assert posted(plan) == {(GUILD, b.key, CLOSED)}


def test_shortening_a_window_that_already_ended_posts_at_once():
    ep = episode(1, T0 - 3 * DAY)
    calendar = Calendar([ep])
    ledger = {}
    before = [guild(window="7d")]
    record(ledger, plan_at(calendar, before, T0 - 3 * DAY, since=T0 - 4 * DAY), T0 - 3 * DAY)
    assert calendar.next_due(calendar.index(before), after=T0) == T0 + 4 * DAY
    # The moderator sets 1d: that window ended two days ago.
    after = [guild(window="1d")]
    # Without the recheck the scheduler's interval has moved on and would never see it.
    assert plan_at(calendar, after, T0, since=T0 - SECOND, ledger=ledger).post == []
    plan = plan_at(calendar, after, T0, since=T0 - SECOND, ledger=ledger, recheck=[GUILD])
    assert posted(plan) == {(GUILD, ep.key, CLOSED)}
    item = plan.post[0]
    assert item.reason is DueReason.WINDOW_CHANGED
    assert item.late_by == timedelta(0)
    assert plan.skip == []
    record(ledger, plan, T0)
    # Rechecking again does not post twice; nothing is left to wake for.
    again = plan_at(calendar, after, T0 + HOUR, since=T0, ledger=ledger, recheck=[GUILD])
    assert again.post == []
    assert calendar.next_due(calendar.index(after), after=T0) is None


def test_lengthening_or_forever_moves_or_cancels_the_close_post():
    ep = episode(1, T0)
    calendar = Calendar([ep])
    assert calendar.next_due(calendar.index([guild(window="7d")]), after=T0) == T0 + 7 * DAY
    assert calendar.next_due(calendar.index([guild(window="14d")]), after=T0) == T0 + 14 * DAY
    forever = [guild(window="forever")]
    assert calendar.next_due(calendar.index(forever), after=T0) is None
    assert plan_at(calendar, forever, T0 + 8 * DAY, since=T0 + 6 * DAY).post == []


def test_recheck_does_not_post_closes_the_window_has_not_reached():
    ep = episode(1, T0 - DAY)
    calendar = Calendar([ep])
    plan = plan_at(calendar, [guild(window="2d")], T0, since=T0 - SECOND, recheck=[GUILD])
    assert plan.post == []


# -- pruning the ledger ------------------------------------------------------------------------


def test_the_ledger_horizon_waits_for_the_longest_window_and_only_moves_forward():
    slack = CATCH_UP_LIMIT + sum(RETRY_DELAYS, timedelta(0)) + LEDGER_KEEP
    assert prune_before(guild(window="7d"), now=T0) == T0 - 7 * DAY - slack
    longest = guild(window="7d", show_windows={"show-b": "90d", "show-c": "forever"})
    assert prune_before(longest, now=T0) == T0 - 90 * DAY - slack
    assert prune_before(guild(window="off"), now=T0) == T0 - slack
    kept = guild(window="90d", pruned_before=T0 - 10 * DAY)
    assert prune_before(kept, now=T0) == T0 - 10 * DAY


def test_episodes_before_the_horizon_are_never_posted_for_again():
    """Their ledger rows are gone, so nothing may make their posts again: not a window
    change, not a longer window, not a retry, not a content change."""
    old, new = episode(1, T0 - 60 * DAY), episode(2, T0 - 2 * DAY)
    calendar = Calendar([old, new])
    horizon = T0 - 40 * DAY
    since_long_ago = announce(set_at=T0 - 100 * DAY)
    shortened = [guild(announce_settings=since_long_ago, window="1d", pruned_before=horizon)]
    plan = plan_at(calendar, shortened, T0, since=T0 - SECOND, recheck=[GUILD], changed=True)
    assert posted(plan) == {(GUILD, new.key, CLOSED)}
    # A window long enough that the old episode's close post falls due again.
    longer = [guild(announce_settings=since_long_ago, window="61d", pruned_before=horizon)]
    assert plan_at(calendar, longer, T0 + 1 * DAY + HOUR, since=T0 + 1 * DAY).post == []
    failed = {PostKey(GUILD, old.key, RELEASE): LedgerEntry(PostState.FAILED, 1, T0 - HOUR)}
    assert plan_at(calendar, shortened, T0, since=T0 - SECOND, ledger=failed).post == []
    # Without the horizon the same changes would post for the old episode.
    unpruned = [guild(announce_settings=since_long_ago, window="1d")]
    plan = plan_at(calendar, unpruned, T0, since=T0 - SECOND, recheck=[GUILD])
    assert (GUILD, old.key, CLOSED) in posted(plan)


# -- catch-up and the ledger -------------------------------------------------------------------


def test_catch_up_posts_under_24h_late_once_and_skips_older():
    recent = episode(1, T0 - 23 * HOUR)
    old = episode(2, T0 - 25 * HOUR)
    boundary = episode(3, T0 - CATCH_UP_LIMIT)
    calendar = Calendar([recent, old, boundary])
    guilds = [guild(window="forever")]
    ledger = {}
    # The scheduler last settled everything three days ago, then the bot was down.
    plan = plan_at(calendar, guilds, T0, since=T0 - 3 * DAY, ledger=ledger)
    assert posted(plan) == {(GUILD, recent.key, RELEASE)}
    assert plan.post[0].reason is DueReason.CATCH_UP
    assert plan.post[0].late_by == 23 * HOUR
    assert {c.key.episode_key for c in plan.skip} == {old.key, boundary.key}
    record(ledger, plan, T0)
    # A restart right after posts nothing again.
    again = plan_at(calendar, guilds, T0 + SECOND, since=None, ledger=ledger)
    assert again.post == []
    assert again.skip == []


def test_a_release_in_the_past_at_first_start():
    recent = episode(1, T0 - 2 * HOUR)
    old = episode(2, T0 - 2 * DAY)
    calendar = Calendar([recent, old])
    plan = plan_at(calendar, [guild(window="forever")], T0, since=None)
    assert posted(plan) == {(GUILD, recent.key, RELEASE)}
    assert plan.post[0].late_by == 2 * HOUR
    assert plan.skip == []  # nothing is known to have fallen due while the bot was down


def test_a_few_minutes_late_is_not_called_late():
    ep = episode(1, T0 - 2 * 60 * SECOND)
    plan = plan_at(Calendar([ep]), [guild(window="forever")], T0, since=T0 - HOUR)
    assert plan.post[0].reason is DueReason.ON_TIME
    assert plan.post[0].late_by == timedelta(0)


def test_an_episode_added_after_its_release_is_caught_when_content_changed():
    ep = episode(1, T0 - 2 * HOUR)
    calendar = Calendar([ep])
    guilds = [guild(window="forever")]
    # The scheduler settled through T0 - 1 s before the file arrived.
    assert plan_at(calendar, guilds, T0, since=T0 - SECOND).post == []
    plan = plan_at(calendar, guilds, T0, since=T0 - SECOND, changed=True)
    assert posted(plan) == {(GUILD, ep.key, RELEASE)}
    assert plan.skip == []


def test_posted_and_skipped_posts_are_never_made_again():
    ep = episode(1, T0)
    calendar = Calendar([ep])
    guilds = [guild(window="forever")]
    key = PostKey(GUILD, ep.key, RELEASE)
    for state in (PostState.POSTED, PostState.SKIPPED):
        ledger = {key: LedgerEntry(state, 1, T0)}
        assert plan_at(calendar, guilds, T0 + HOUR, since=T0 - HOUR, ledger=ledger).post == []


def test_failed_posts_are_retried_after_growing_delays_then_given_up():
    ep = episode(1, T0)
    calendar = Calendar([ep])
    guilds = [guild(window="forever")]
    key = PostKey(GUILD, ep.key, RELEASE)
    now = T0
    for attempt, delay in enumerate(RETRY_DELAYS, start=1):
        ledger = {key: LedgerEntry(PostState.FAILED, attempt, now, last_error="Missing Access")}
        waiting = plan_at(calendar, guilds, now + delay - SECOND, since=now, ledger=ledger)
        assert waiting.post == []
        assert waiting.retry_at == now + delay
        # The retry comes from the ledger even once the item left the scheduler's interval.
        plan = plan_at(calendar, guilds, now + delay, since=now + delay - SECOND, ledger=ledger)
        assert posted(plan) == {tuple(key)}
        assert plan.post[0].reason is DueReason.RETRY
        now += delay
    final = {key: LedgerEntry(PostState.FAILED, MAX_ATTEMPTS, now)}
    assert final[key].settled
    plan = plan_at(calendar, guilds, now + DAY, since=now, ledger=final)
    assert plan.post == []
    assert plan.retry_at is None


def test_a_retry_is_dropped_when_the_settings_no_longer_define_the_post():
    ep = episode(1, T0)
    calendar = Calendar([ep])
    key = PostKey(GUILD, ep.key, CLOSED)
    ledger = {key: LedgerEntry(PostState.FAILED, 1, T0 + 7 * DAY)}
    guilds = [guild(window="forever")]
    assert plan_at(calendar, guilds, T0 + 8 * DAY, since=T0 + 8 * DAY, ledger=ledger).post == []


def test_earliest_wake_and_nonce():
    assert earliest_wake(None, T0 + DAY, T0 + HOUR, None) == T0 + HOUR
    assert earliest_wake(None) is None
    a = post_nonce(PostKey(1, "x/s01e01", RELEASE))
    assert a == post_nonce(PostKey(1, "x/s01e01", RELEASE))
    assert a != post_nonce(PostKey(1, "x/s01e01", CLOSED))
    assert a != post_nonce(PostKey(2, "x/s01e01", RELEASE))
    assert len(a) <= 25


def test_times_must_be_timezone_aware():
    calendar = Calendar([episode(1, T0)])
    index = calendar.index([guild()])
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.next_due(index, after=datetime(2026, 1, 1))


# -- time zones --------------------------------------------------------------------------------


def test_date_only_releases_across_dst_fall_on_local_midnight_and_windows_are_exact_lengths():
    london = "Europe/London"
    # Clocks go forward at 01:00 GMT on 2026-03-29 and back at 01:00 BST on 2026-10-25.
    before_spring = release_instant(date(2026, 3, 28), london)
    after_spring = release_instant(date(2026, 3, 30), london)
    autumn_day = release_instant(date(2026, 10, 25), london)
    assert before_spring == datetime(2026, 3, 28, 0, 0, tzinfo=UTC)
    assert after_spring == datetime(2026, 3, 29, 23, 0, tzinfo=UTC)
    assert autumn_day == datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    episodes = [
        episode(1, before_spring, "uk-show"),
        episode(2, after_spring, "uk-show"),
        episode(3, autumn_day, "uk-show"),
    ]
    calendar = Calendar(episodes)
    guilds = [guild(window="1d")]
    index = calendar.index(guilds)
    wakes = []
    instant = before_spring - SECOND
    while (instant := calendar.next_due(index, after=instant)) is not None:
        wakes.append(instant)
    # A window is an exact length: the 1-day window over the spring change ends at 01:00 local.
    assert wakes == [
        before_spring,
        before_spring + DAY,
        after_spring,
        after_spring + DAY,
        autumn_day,
        autumn_day + DAY,
    ]
    local = ZoneInfo(london)
    assert (before_spring + DAY).astimezone(local).hour == 0  # before the change: still GMT
    assert (after_spring + DAY).astimezone(local).hour == 0
    assert autumn_day.astimezone(local).hour == 0
    assert (autumn_day + DAY).astimezone(local).hour == 23  # 25-hour local day


def test_a_pacific_midnight_drop_on_the_day_clocks_change():
    # Netflix drops at 00:00 Pacific; 2026-03-08 is the day PST becomes PDT at 02:00 local.
    la = "America/Los_Angeles"
    drop = release_instant(date(2026, 3, 8), la)
    assert drop == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # still PST at midnight
    next_week = release_instant(date(2026, 3, 15), la)
    assert next_week == datetime(2026, 3, 15, 7, 0, tzinfo=UTC)
    calendar = Calendar([episode(1, drop, "nf"), episode(2, next_week, "nf")])
    index = calendar.index([guild(window="7d")])
    # Episode 1's window (exactly 168 h) ends an hour after episode 2's release.
    assert calendar.next_due(index, after=drop) == next_week
    assert calendar.next_due(index, after=next_week) == drop + 7 * DAY


def test_a_release_on_a_day_whose_local_midnight_does_not_exist():
    # Chile moves its clocks from 24:00 to 01:00 on 2026-09-06: that day has no midnight.
    santiago = "America/Santiago"
    saturday = release_instant(date(2026, 9, 5), santiago)
    sunday = release_instant(date(2026, 9, 6), santiago)
    assert saturday == datetime(2026, 9, 5, 4, 0, tzinfo=UTC)
    assert sunday == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)  # 01:00 local, the day's first hour
    calendar = Calendar([episode(1, saturday, "cl"), episode(2, sunday, "cl")])
    guilds = [guild(window="forever")]
    index = calendar.index(guilds)
    assert calendar.next_due(index, after=saturday) == sunday
    plan = plan_at(calendar, guilds, sunday, since=saturday)
    assert [item.key.episode_key for item in plan.post] == ["cl/s01e02"]


# -- the calendar agrees with the policy and with a brute-force reading of the rules ----------

WINDOWS = st.sampled_from(["off", "forever", "1h", "90m", "1d", "36h", "7d"])
OFFSETS = st.integers(min_value=-72, max_value=72).map(lambda h: T0 + h * HOUR)


@settings(max_examples=150, deadline=None)
@given(release=OFFSETS, window=WINDOWS, now=OFFSETS)
def test_close_post_exists_exactly_when_the_policy_opens_spoilers(release, window, now):
    ep = episode(1, release)
    calendar = Calendar([ep])
    guilds = [guild(announce_settings=announce(set_at=T0 - 100 * DAY), window=window)]
    plan = plan_at(calendar, guilds, now, since=T0 - 100 * DAY)
    closes = [item for item in plan.post + plan.skip if item.key.kind is CLOSED]
    decision = decide(
        release_at=release, now=now, settings=guilds[0].spoilers, show_slug=ep.show_slug
    )
    window_value = parse_window(window)
    opened_by_window = decision.delivery is Delivery.PLAIN and not window_value.is_off
    assert bool(closes) == opened_by_window
    if closes:
        # The post is due at the first instant the policy shows the ending in plain sight.
        due = closes[0].due_at
        assert decide(release_at=release, now=due, settings=guilds[0].spoilers,
                      show_slug=ep.show_slug).delivery is Delivery.PLAIN  # fmt: skip
        assert decide(release_at=release, now=due - SECOND, settings=guilds[0].spoilers,
                      show_slug=ep.show_slug).delivery is not Delivery.PLAIN  # fmt: skip


def _expected_posts(episodes, guilds, start, end):
    """Every post the rules define with a due instant in (start, end], by brute force."""
    expected = {}
    for g in guilds:
        for ep in episodes:
            target = g.announce.target_for(ep.show_slug)
            if target is None:
                continue
            window: SpoilerWindow = g.spoilers.window_for(ep.show_slug)
            dues = {RELEASE: ep.release_at}
            if window.length is not None and not window.is_off:
                dues[CLOSED] = ep.release_at + window.length
            for kind, due in dues.items():
                if due >= target.set_at and start < due <= end:
                    expected[(g.guild_id, ep.key, kind)] = due
    return expected


@st.composite
def worlds(draw):
    shows = ["show-a", "show-b", "show-c"]
    episodes = [
        episode(n, draw(OFFSETS), show)
        for show in shows
        for n in range(1, draw(st.integers(min_value=0, max_value=4)) + 1)
    ]
    guilds = []
    for guild_id in range(1, draw(st.integers(min_value=1, max_value=5)) + 1):
        default = draw(st.none() | OFFSETS.map(lambda at: AnnounceTarget(1, None, at)))
        overrides = draw(
            st.dictionaries(
                st.sampled_from(shows),
                st.none() | OFFSETS.map(lambda at: AnnounceTarget(2, 9, at)),
                max_size=2,
            )
        )
        spoilers = SpoilerSettings(
            window=parse_window(draw(WINDOWS)),
            show_windows=tuple(
                sorted(
                    (slug, parse_window(w))
                    for slug, w in draw(
                        st.dictionaries(st.sampled_from(shows), WINDOWS, max_size=2)
                    ).items()
                )
            ),
        )
        guilds.append(GuildSchedule(guild_id, AnnounceSettings(default, overrides), spoilers))
    return episodes, guilds


@settings(max_examples=200, deadline=None)
@given(world=worlds(), restart_gap=st.integers(min_value=0, max_value=40))
def test_a_scheduler_waking_at_next_due_posts_every_post_once_on_time(world, restart_gap):
    """Simulate the scheduler: sleep until next_due, plan, record. Every post the rules define
    in the run is made exactly once, at its due instant; after a restart gap, posts that fell
    due in the gap are posted once if under 24 h late and skipped otherwise."""
    episodes, guilds = world
    # Targets are set before the run starts (as the store hands them out: never in the future).
    start = T0 + 73 * HOUR
    end = start + 80 * HOUR
    calendar = Calendar(episodes)
    index = calendar.index(guilds)
    ledger: dict[PostKey, LedgerEntry] = {}
    made: dict[tuple, datetime] = {}
    skipped: set[tuple] = set()

    def run(since, until):
        now = since
        while True:
            plan = plan_at(calendar, guilds, now, since=since, ledger=ledger)
            for item in plan.post:
                assert tuple(item.key) not in made, "posted twice"
                made[tuple(item.key)] = now
            skipped.update(tuple(c.key) for c in plan.skip)
            record(ledger, plan, now)
            since = now
            now = calendar.next_due(index, after=now)
            if now is None or now > until:
                return since

    # The scheduler settled everything through `start` in an earlier run.
    gap = timedelta(hours=restart_gap)
    middle = start + 20 * HOUR
    settled = run(start, middle)
    # Down for `gap`, then restarted with the watermark it had persisted.
    restart = middle + gap
    run_since = settled
    plan = plan_at(calendar, guilds, restart, since=run_since, ledger=ledger)
    for item in plan.post:
        assert tuple(item.key) not in made
        made[tuple(item.key)] = restart
    skipped.update(tuple(c.key) for c in plan.skip)
    record(ledger, plan, restart)
    run(restart, end)

    expected = _expected_posts(episodes, guilds, start, end)
    for key, due in expected.items():
        if settled < due <= restart and restart - due >= CATCH_UP_LIMIT:
            assert key in skipped
            assert key not in made
        else:
            assert key in made, key
            posted_at = made[key]
            if settled < due <= restart:
                assert posted_at == restart  # caught up once after the restart
            else:
                assert posted_at == due  # woken exactly at its due instant
    assert set(made) <= set(expected)
    assert skipped <= set(expected)


def test_upcoming_lists_later_releases_soonest_first_across_shows():
    a1, a2 = episode(1, T0 + DAY), episode(2, T0 + 3 * DAY)
    b1, old = episode(1, T0 + 2 * DAY, show="show-b"), episode(9, T0 - DAY, show="show-b")
    calendar = Calendar([a2, b1, old, a1])
    assert calendar.upcoming(after=T0) == [a1, b1, a2]
    assert calendar.upcoming(after=T0 + DAY) == [b1, a2]
    assert calendar.upcoming(after=T0, show_slug="show-b") == [b1]
    assert calendar.upcoming(after=T0, show_slug="unknown") == []
