"""Watch progress rules (bot/progress.py), tested directly on plain episodes."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.content.models import Episode
from bot.progress import (
    NotReleasedError,
    RoleSetupProblem,
    WatchRole,
    episodes_to_mark,
    episodes_to_unmark,
    has_completed,
    in_order,
    member_progress,
    member_role_scope,
    next_release_after,
    next_to_watch,
    order_for_unwatched,
    order_for_watched,
    released_between,
    role_changes,
    role_setup_problems,
    roles_to_recheck,
    show_progress,
    through_episodes,
    up_next,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=400)


def ep(season, number, show="bm", released=LONG_AGO, title=None):
    return Episode(
        show_slug=show,
        show_title={"bm": "Black Mirror", "sev": "Severance", "bear": "The Bear"}.get(show, show),
        season=season,
        number=number,
        title=title or f"Episode {season}.{number}",
        release_at=released,
    )


# Black Mirror: two specials, S1E1-3, S2E1-3, and S2E4 next week. Shuffled on purpose.
BM = [
    ep(2, 1), ep(1, 3), ep(0, 2), ep(1, 1), ep(2, 3), ep(0, 1), ep(1, 2), ep(2, 2),
    ep(2, 4, released=NOW + timedelta(days=7)),
]  # fmt: skip
SEV = [ep(1, n, show="sev") for n in (1, 2, 3)]
BY_SHOW = {"bm": BM, "sev": SEV}


def find(episodes, season, number):
    return next(e for e in episodes if (e.season, e.number) == (season, number))


def codes(episodes):
    return [e.short_code for e in episodes]


def keys(*pairs, show="bm"):
    return frozenset(f"{show}/s{s:02d}e{n:02d}" for s, n in pairs)


# ---- through ----------------------------------------------------------------------------


def test_episodes_run_by_season_then_number_with_specials_first():
    assert codes(in_order(BM)) == [
        "S0E1", "S0E2", "S1E1", "S1E2", "S1E3", "S2E1", "S2E2", "S2E3", "S2E4",
    ]  # fmt: skip


def test_marking_through_a_main_line_episode_sweeps_earlier_seasons_but_no_special():
    marked = episodes_to_mark(BM, find(BM, 2, 2), through=True, now=NOW)
    assert codes(marked) == ["S1E1", "S1E2", "S1E3", "S2E1", "S2E2"]


def test_marking_through_a_special_sweeps_only_earlier_specials():
    assert codes(episodes_to_mark(BM, find(BM, 0, 2), through=True, now=NOW)) == ["S0E1", "S0E2"]
    assert codes(episodes_to_mark(BM, find(BM, 0, 1), through=False, now=NOW)) == ["S0E1"]


def test_marking_without_through_marks_only_the_episode():
    assert codes(episodes_to_mark(BM, find(BM, 2, 2), through=False, now=NOW)) == ["S2E2"]


def test_an_unreleased_episode_is_refused_with_its_release_time():
    upcoming = find(BM, 2, 4)
    for through in (False, True):
        with pytest.raises(NotReleasedError) as refused:
            episodes_to_mark(BM, upcoming, through=through, now=NOW)
        assert refused.value.episode is upcoming
        assert upcoming.release_at.isoformat() in str(refused.value)
    # Released at exactly now counts as released.
    assert episodes_to_mark(BM, upcoming, through=False, now=upcoming.release_at) == [upcoming]


def test_through_skips_an_earlier_episode_that_is_not_released():
    delayed = [ep(1, 1), ep(1, 2, released=NOW + timedelta(hours=1)), ep(1, 3)]
    assert codes(episodes_to_mark(delayed, delayed[2], through=True, now=NOW)) == ["S1E1", "S1E3"]


def test_through_ignores_other_shows_passed_in():
    assert codes(through_episodes(BM + SEV, find(SEV, 1, 2))) == ["S1E1", "S1E2"]
    assert all(e.show_slug == "sev" for e in through_episodes(BM + SEV, find(SEV, 1, 2)))


def test_unmarking_through_removes_the_same_episodes_released_or_not():
    assert codes(episodes_to_unmark(BM, find(BM, 2, 4), through=True)) == [
        "S1E1", "S1E2", "S1E3", "S2E1", "S2E2", "S2E3", "S2E4",
    ]  # fmt: skip
    assert codes(episodes_to_unmark(BM, find(BM, 1, 2), through=False)) == ["S1E2"]


def mark(watched, show_episodes, episode, *, through, now):
    """The watched set after /watched: what the command stores."""
    marked = episodes_to_mark(show_episodes, episode, through=through, now=now)
    return frozenset(watched) | {e.key for e in marked}


def unmark(watched, show_episodes, episode, *, through):
    unmarked = episodes_to_unmark(show_episodes, episode, through=through)
    return frozenset(watched) - {e.key for e in unmarked}


def test_mark_and_unmark_change_the_set():
    watched = mark(keys((0, 1)), BM, find(BM, 1, 2), through=True, now=NOW)
    assert watched == keys((0, 1), (1, 1), (1, 2))
    assert unmark(watched, BM, find(BM, 1, 1), through=False) == keys((0, 1), (1, 2))
    assert unmark(watched, BM, find(BM, 1, 2), through=True) == keys((0, 1))


# ---- progress -----------------------------------------------------------------------------


def test_progress_of_a_member_in_order():
    progress = show_progress(BM, keys((1, 1), (1, 2), (1, 3), (2, 1), (0, 2)), NOW)
    assert progress.show_title == "Black Mirror"
    assert progress.through.short_code == "S2E1"
    assert progress.furthest.short_code == "S2E1"
    assert progress.next_up.short_code == "S2E2"
    assert progress.latest.short_code == "S2E3"
    assert progress.upcoming.short_code == "S2E4"
    assert progress.out_of_order == ()
    assert (progress.watched, progress.released) == (4, 6)
    assert (progress.specials_watched, progress.specials_released) == (1, 2)
    assert not progress.caught_up


def test_episodes_marked_beyond_a_gap_are_out_of_order():
    progress = show_progress(BM, keys((1, 1), (1, 3), (2, 2)), NOW)
    assert progress.through.short_code == "S1E1"
    assert progress.next_up.short_code == "S1E2"
    assert codes(progress.out_of_order) == ["S1E3", "S2E2"]
    assert progress.furthest.short_code == "S2E2"


def test_a_member_who_started_late_has_not_started_and_everything_is_out_of_order():
    progress = show_progress(BM, keys((2, 3)), NOW)
    assert progress.through is None
    assert progress.next_up.short_code == "S1E1"
    assert codes(progress.out_of_order) == ["S2E3"]


def test_caught_up_until_the_next_release():
    everything = keys((1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3))
    progress = show_progress(BM, everything, NOW)
    assert progress.caught_up
    assert progress.next_up is None
    assert progress.through.short_code == "S2E3"
    assert progress.upcoming.short_code == "S2E4"
    after_release = show_progress(BM, everything, NOW + timedelta(days=8))
    assert not after_release.caught_up
    assert after_release.next_up.short_code == "S2E4"
    assert after_release.upcoming is None


def test_a_show_with_nothing_released_is_not_caught_up():
    future = [ep(1, 1, released=NOW + timedelta(days=1))]
    progress = show_progress(future, frozenset(), NOW)
    assert not progress.caught_up
    assert (progress.latest, progress.next_up, progress.through) == (None, None, None)


def test_member_progress_lists_shows_with_any_mark_by_title_and_skips_removed_shows():
    watched = keys((1, 1)) | keys((1, 2), show="sev") | keys((1, 1), show="gone")
    listed = member_progress(BY_SHOW, watched, NOW)
    assert [p.show_title for p in listed] == ["Black Mirror", "Severance"]
    assert member_progress(BY_SHOW, frozenset(), NOW) == []


def test_next_to_watch_is_the_first_unwatched_released_main_line_episode():
    assert next_to_watch(BM, frozenset(), NOW).short_code == "S1E1"
    assert next_to_watch(BM, keys((1, 1), (1, 2)), NOW).short_code == "S1E3"
    assert next_to_watch(BM, keys((1, 1), (1, 3)), NOW).short_code == "S1E2"
    caught_up = keys((1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3))
    assert next_to_watch(BM, caught_up, NOW) is None


# ---- autocomplete --------------------------------------------------------------------------


def test_up_next_lists_the_next_episode_of_each_show_being_watched():
    sev_late = [ep(1, n, show="sev", released=NOW - timedelta(days=1)) for n in (1, 2)]
    by_show = {"bm": BM, "sev": sev_late}
    watched = keys((1, 1)) | keys((1, 1), show="sev")
    assert [e.key for e in up_next(by_show, watched, NOW)] == ["sev/s01e02", "bm/s01e02"]
    assert up_next(by_show, frozenset(), NOW) == []


def test_watched_autocomplete_offers_the_next_unwatched_episode_first():
    candidates = in_order(BM)  # what a search returned, in catalogue order
    watched = keys((1, 1), (1, 2))
    ordered = order_for_watched(candidates, up_next(BY_SHOW, watched, NOW), watched, NOW)
    assert codes(ordered) == [
        "S1E3",  # next up
        "S0E1", "S0E2", "S2E1", "S2E2", "S2E3",  # unwatched, released
        "S1E1", "S1E2",  # already watched
        "S2E4",  # not released: can't be marked
    ]  # fmt: skip
    assert sorted(e.key for e in ordered) == sorted(e.key for e in candidates)


def test_watched_autocomplete_offers_only_next_episodes_that_match():
    candidates = [find(BM, 2, 1), find(BM, 2, 2)]
    next_episodes = [find(SEV, 1, 1), find(BM, 2, 2)]
    assert order_for_watched(candidates, next_episodes, frozenset(), NOW) == [
        find(BM, 2, 2),
        find(BM, 2, 1),
    ]


def test_unwatched_autocomplete_offers_watched_episodes_first():
    candidates = in_order(BM)[2:6]
    assert codes(order_for_unwatched(candidates, keys((1, 3), (2, 1)))) == [
        "S1E3", "S2E1", "S1E1", "S1E2",
    ]  # fmt: skip


# ---- watch roles ---------------------------------------------------------------------------

ALL_MAIN = keys((1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3))


def test_a_show_role_needs_every_released_main_line_episode_not_the_specials():
    assert has_completed(BM, None, ALL_MAIN, NOW)
    assert not has_completed(BM, None, ALL_MAIN - keys((1, 2)), NOW)
    assert has_completed(BM, 0, keys((0, 1), (0, 2)), NOW)
    assert not has_completed(BM, 0, ALL_MAIN, NOW)


def test_a_season_role_needs_only_that_seasons_released_episodes():
    assert has_completed(BM, 1, keys((1, 1), (1, 2), (1, 3)), NOW)
    # S2E4 is not out yet: S2E1-3 complete the season for now.
    assert has_completed(BM, 2, keys((2, 1), (2, 2), (2, 3)), NOW)


def test_a_newly_released_episode_makes_a_member_no_longer_complete():
    later = NOW + timedelta(days=8)
    assert has_completed(BM, 2, ALL_MAIN, NOW)
    assert not has_completed(BM, 2, ALL_MAIN, later)
    assert not has_completed(BM, None, ALL_MAIN, later)
    assert has_completed(BM, 1, ALL_MAIN, later)
    # An episode added to the content later, already released, does the same.
    added = [*BM, ep(1, 4)]
    assert not has_completed(added, 1, ALL_MAIN, NOW)


def test_nothing_released_earns_nothing():
    future = [ep(1, 1, released=NOW + timedelta(days=1))]
    assert not has_completed(future, None, frozenset(), NOW)
    assert not has_completed(BM, 5, ALL_MAIN, NOW)  # no such season


GUILD = 9
SHOW_ROLE = WatchRole(GUILD, "bm", None, 101)
S1_ROLE = WatchRole(GUILD, "bm", 1, 102)
SEV_ROLE = WatchRole(GUILD, "sev", None, 103)
GONE_ROLE = WatchRole(GUILD, "gone", None, 104)
ROLES = [SHOW_ROLE, S1_ROLE, SEV_ROLE, GONE_ROLE]


def test_role_changes_grant_what_is_earned_and_remove_what_is_not():
    s1 = keys((1, 1), (1, 2), (1, 3))
    changes = role_changes(ROLES, BY_SHOW, s1, held_role_ids={101, 104}, now=NOW)
    assert changes.grant == (S1_ROLE,)
    assert changes.revoke == (SHOW_ROLE,)  # and the removed show's role is left alone

    settled = role_changes(ROLES, BY_SHOW, s1, held_role_ids={102}, now=NOW)
    assert settled.grant == settled.revoke == ()


def test_a_release_moves_a_role_at_the_next_check():
    held = {101, 102}
    assert role_changes(ROLES, BY_SHOW, ALL_MAIN, held, NOW).revoke == ()
    later = role_changes(ROLES, BY_SHOW, ALL_MAIN, held, NOW + timedelta(days=8))
    assert later.revoke == (SHOW_ROLE,)
    assert later.grant == ()


def test_a_role_bound_to_two_targets_is_earned_by_either():
    shared = [WatchRole(GUILD, "bm", 1, 200), WatchRole(GUILD, "sev", None, 200)]
    s1 = keys((1, 1), (1, 2), (1, 3))
    assert role_changes(shared, BY_SHOW, s1, set(), NOW).grant == (shared[0],)
    assert role_changes(shared, BY_SHOW, frozenset(), {200}, NOW).revoke == (shared[0],)


# ---- properties ---------------------------------------------------------------------------

SHOW = [
    ep(season, number, released=LONG_AGO + timedelta(days=10 * season + number))
    for season in range(4)
    for number in range(1, 5)
]
SHOW_KEYS = [e.key for e in SHOW]
watched_sets = st.frozensets(st.sampled_from(SHOW_KEYS))
episodes = st.sampled_from(SHOW)
instants = st.sampled_from(
    [LONG_AGO, LONG_AGO + timedelta(days=15), LONG_AGO + timedelta(days=25), NOW]
)
seasons = st.sampled_from([None, 0, 1, 2, 3])


@settings(max_examples=300, deadline=None)
@given(watched=watched_sets, episode=episodes, through=st.booleans(), now=instants)
def test_marking_then_unmarking_restores_what_was_not_marked_before(watched, episode, through, now):
    try:
        marked = mark(watched, SHOW, episode, through=through, now=now)
    except NotReleasedError:
        assert episode.release_at > now
        return
    assert watched <= marked
    assert episode.key in marked
    restored = unmark(marked, SHOW, episode, through=through)
    touched = {e.key for e in episodes_to_mark(SHOW, episode, through=through, now=now)}
    assert restored == watched - touched
    if not watched & touched:
        assert restored == watched
    # Marking is idempotent.
    assert mark(marked, SHOW, episode, through=through, now=now) == marked


@settings(max_examples=300, deadline=None)
@given(watched=watched_sets, extra=watched_sets, season=seasons, now=instants)
def test_completion_is_monotone_in_the_watched_set(watched, extra, season, now):
    if has_completed(SHOW, season, watched, now):
        assert has_completed(SHOW, season, watched | extra, now)


@settings(max_examples=300, deadline=None)
@given(watched=watched_sets, now=instants)
def test_progress_partitions_the_released_main_line(watched, now):
    progress = show_progress(SHOW, watched, now)
    line = [e for e in in_order(SHOW) if e.season > 0 and e.release_at <= now]
    prefix = line[: line.index(progress.next_up)] if progress.next_up else line
    assert all(e.key in watched for e in prefix)
    assert progress.through == (prefix[-1] if prefix else None)
    assert progress.next_up == next_to_watch(SHOW, watched, now)
    assert progress.watched == len(prefix) + len(progress.out_of_order)
    assert progress.caught_up == (bool(line) and all(e.key in watched for e in line))
    # Completing the whole show is exactly being caught up.
    assert has_completed(SHOW, None, watched, now) == progress.caught_up


@settings(max_examples=200, deadline=None)
@given(watched=watched_sets, now=instants)
def test_marking_through_the_next_episode_leaves_nothing_before_it_unwatched(watched, now):
    following = next_to_watch(SHOW, watched, now)
    if following is None:
        return
    after = mark(watched, SHOW, following, through=True, now=now)
    progress = show_progress(SHOW, after, now)
    assert progress.through is not None
    assert (progress.through.season, progress.through.number) >= (
        following.season,
        following.number,
    )


role_sets = st.lists(
    st.builds(
        WatchRole,
        guild_id=st.just(GUILD),
        show_slug=st.sampled_from(["bm", "gone"]),
        season=seasons,
        role_id=st.integers(1, 6),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(roles=role_sets, watched=watched_sets, held=st.frozensets(st.integers(1, 8)), now=instants)
def test_applying_role_changes_leaves_exactly_the_earned_roles(roles, watched, held, now):
    by_show = {"bm": SHOW}
    changes = role_changes(roles, by_show, watched, held, now)
    assert not {r.role_id for r in changes.grant} & held
    assert {r.role_id for r in changes.revoke} <= held
    after = (held - {r.role_id for r in changes.revoke}) | {r.role_id for r in changes.grant}
    for role in roles:
        if role.show_slug == "gone":
            continue
        earned = any(
            has_completed(SHOW, other.season, watched, now)
            for other in roles
            if other.role_id == role.role_id and other.show_slug == "bm"
        )
        assert (role.role_id in after) == earned
    # Roles that only a removed show uses, and roles that aren't watch roles, are untouched.
    known = {r.role_id for r in roles if r.show_slug == "bm"}
    assert after - known == held - known
    settled = role_changes(roles, by_show, watched, after, now)
    assert settled.grant == settled.revoke == ()


@settings(max_examples=200, deadline=None)
@given(
    candidates=st.lists(episodes, unique_by=lambda e: e.key),
    watched=watched_sets,
    now=instants,
)
def test_watched_autocomplete_reorders_without_losing_or_adding(candidates, watched, now):
    following = up_next({"bm": SHOW}, watched, now)
    ordered = order_for_watched(candidates, following, watched, now)
    assert sorted(e.key for e in ordered) == sorted(e.key for e in candidates)
    if following and following[0] in candidates:
        assert ordered[0] == following[0]


# -- watch-role set-up -----------------------------------------------------------------------------


def setup_problems(**changed):
    values = {
        "is_everyone": False,
        "managed": False,
        "can_manage_roles": True,
        "role_position": 2,
        "top_role_position": 3,
    }
    return role_setup_problems(**{**values, **changed})


def test_a_role_below_embargos_with_manage_roles_can_be_a_watch_role():
    assert setup_problems() == []


def test_every_setup_problem_is_named():
    assert setup_problems(can_manage_roles=False) == [RoleSetupProblem.MISSING_PERMISSION]
    # Equal is not below: Discord refuses a role at Embargo's own position.
    assert setup_problems(role_position=3) == [RoleSetupProblem.ROLE_TOO_HIGH]
    assert setup_problems(role_position=9, can_manage_roles=False) == [
        RoleSetupProblem.MISSING_PERMISSION,
        RoleSetupProblem.ROLE_TOO_HIGH,
    ]
    assert setup_problems(is_everyone=True, role_position=0) == [RoleSetupProblem.EVERYONE]
    assert setup_problems(managed=True) == [RoleSetupProblem.MANAGED]


# -- the re-check when episodes come out -----------------------------------------------------------


def test_next_release_and_what_came_out_since():
    upcoming = find(BM, 2, 4)
    assert next_release_after(BM + SEV, NOW) == upcoming.release_at
    assert next_release_after(BM, upcoming.release_at) is None
    assert released_between(BM, NOW, upcoming.release_at) == [upcoming]
    # Half-open: an episode released exactly at ``since`` was handled by the previous check.
    assert released_between(BM, upcoming.release_at, upcoming.release_at + timedelta(days=1)) == []
    assert codes(released_between(BM, LONG_AGO - timedelta(days=1), NOW)) == [
        "S0E1", "S0E2", "S1E1", "S1E2", "S1E3", "S2E1", "S2E2", "S2E3",
    ]  # fmt: skip


def test_a_release_rechecks_the_roles_whose_scope_it_joins():
    whole, season2, season1, specials, other = (
        WatchRole(1, "bm", None, 10),
        WatchRole(1, "bm", 2, 11),
        WatchRole(1, "bm", 1, 12),
        WatchRole(1, "bm", 0, 13),
        WatchRole(1, "sev", None, 14),
    )
    roles = [whole, season2, season1, specials, other]
    assert roles_to_recheck(roles, [find(BM, 2, 4)]) == [whole, season2]
    assert roles_to_recheck(roles, [find(BM, 0, 1)]) == [specials]
    assert roles_to_recheck(roles, []) == []


# ---- which roles follow a change heard from another process ----------------------------------


def test_the_roles_in_question_are_the_watched_shows_and_those_embargo_gave():
    other = 2
    roles = [
        WatchRole(1, "bm", None, 10),
        WatchRole(1, "sev", 1, 14),  # given earlier; nothing of Severance watched any more
        WatchRole(1, "gone", None, 15),  # neither watched nor given
        WatchRole(other, "bm", 7, 20),
        WatchRole(other, "bm", 7, 20),  # read twice (by show and by server): once
    ]
    scope = member_role_scope(roles, {"bm/s01e01"}, {(1, 14)})
    assert scope == {
        1: [WatchRole(1, "bm", None, 10), WatchRole(1, "sev", 1, 14)],
        other: [WatchRole(other, "bm", 7, 20)],
    }
    # Forgotten: nothing watched; only what Embargo gave is in question (to be taken back).
    assert member_role_scope(roles, frozenset(), {(other, 20)}) == {
        other: [WatchRole(other, "bm", 7, 20)]
    }
    assert member_role_scope(roles, frozenset(), set()) == {}
