"""The watch-progress texts (bot/progress_messages.py), built directly from plain values."""

from datetime import UTC, datetime, timedelta

from bot.content.models import Episode
from bot.progress import RoleSetupProblem, RoleSyncProblem, show_progress
from bot.progress_messages import (
    OUT_OF_ORDER_LISTED,
    RoleOutcome,
    forgotten_text,
    progress_pages,
    role_outcomes_text,
    role_setup_text,
    watched_message,
)
from bot.spoilers.policy import SpoilerSettings, TitleRule

NOW = datetime(2025, 6, 1, tzinfo=UTC)
TITLES = TitleRule(SpoilerSettings(), NOW)
TITLE = "||Spoiler|| *Show* @everyone <@1>"


def episodes(count: int, title: str = TITLE) -> list[Episode]:
    return [
        Episode("odd", title, 1, n, f"Part {n}", NOW - timedelta(days=count - n + 1))
        for n in range(1, count + 1)
    ]


def test_titles_from_content_files_are_escaped_everywhere():
    show = episodes(3)
    progress = show_progress(show, {show[0].key}, NOW)
    reply = watched_message(show[0], through=False, marked=1, progress=progress, titles=TITLES)
    assert "||Spoiler||" not in reply.content
    assert r"\|\|Spoiler\|\|" in reply.content
    assert "<@1>" not in reply.content
    (page,) = progress_pages([progress], None, TITLES)
    (field,) = page.embeds[0]["fields"]
    assert field["name"] == r"\|\|Spoiler\|\| \*Show\* \@everyone \<\@1\>"


def test_a_long_out_of_order_list_is_cut_short():
    show = episodes(40, "Long")
    watched = {e.key for e in show[5:]}  # E1-E5 skipped: 35 marked out of order
    (page,) = progress_pages([show_progress(show, watched, NOW)], None, TITLES)
    value = page.embeds[0]["fields"][0]["value"]
    assert f"and {35 - OUT_OF_ORDER_LISTED} more" in value
    assert "**not started, S1E40 is out** · 35 of 40 episodes watched" not in value
    assert value.startswith("**S1E40 of S1E40** · 35 of 40 episodes watched")


def test_role_texts_name_what_to_fix():
    both = role_setup_text(7, [RoleSetupProblem.MISSING_PERMISSION, RoleSetupProblem.ROLE_TOO_HIGH])
    assert "**Manage Roles**" in both
    assert "move Embargo's role above <@&7>" in both
    assert both.endswith("Nothing was changed.")
    text = role_outcomes_text(
        [
            RoleOutcome(1, granted=True),
            RoleOutcome(2, granted=False),
            RoleOutcome(3, granted=True, problem=RoleSyncProblem.ROLE_DELETED),
        ]
    )
    assert text == (
        "You now have <@&1>.\nYou no longer have <@&2>.\n"
        "Embargo couldn't give you <@&3>: the role no longer exists. The moderators can see "
        "this in `/embargo settings`; your progress is saved."
    )
    assert role_outcomes_text([]) is None


def test_forgotten_counts():
    assert forgotten_text(0, 0, 0) == "Embargo had nothing stored about you; nothing was deleted."
    assert forgotten_text(1, 0, 0).startswith("Deleted: 1 episode marked watched and 0 votes.")
    assert "and 2 votes in 2 servers." in forgotten_text(3, 2, 2)
