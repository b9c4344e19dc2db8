"""The discussion's messages: exact wording where it matters, and property tests of the leak
rules (thread names within Discord's limit and free of spoiling titles; a hidden title only
inside spoiler tags, read by the markdown oracle)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.calendar import AnnounceSettings, AnnounceTarget, LedgerEntry, PostKey, PostKind, PostState
from bot.content.models import Episode
from bot.discussion_messages import (
    THREAD_NAME_LIMIT,
    UPCOMING_PAGE_SIZE,
    UpcomingRow,
    announce_field,
    describe_announce_target,
    release_post,
    thread_message,
    thread_name,
    title_hidden,
    upcoming_pages,
    window_closed_post,
)
from bot.spoilers.render import DISCORD_MESSAGE_LIMIT
from tests import markdown_oracle as oracle

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
SPOILER_TITLE = "Shaw Is Killed"


def episode(title="USS Callister", show="Black Mirror", season=7, number=6, release=NOW):
    return Episode("black-mirror", show, season, number, title, release)


def ts(moment, style="f"):
    return f"<t:{int(moment.timestamp())}:{style}>"


# -- title_hidden --------------------------------------------------------------------------------


def test_a_spoiling_title_is_hidden_until_the_window_ends():
    assert title_hidden(True, NOW + WEEK, NOW)
    assert not title_hidden(True, NOW + WEEK, NOW + WEEK)
    assert title_hidden(True, None, NOW + 1000 * WEEK)  # forever
    assert not title_hidden(True, NOW, NOW)  # off: open at release
    assert not title_hidden(False, NOW + WEEK, NOW)


# -- release post --------------------------------------------------------------------------------


def test_release_post_says_when_spoilers_open_and_pings_only_its_role():
    post = release_post(episode(), title_spoils=False, window_ends_at=NOW + WEEK, now=NOW,
                        ping_role_id=42)  # fmt: skip
    content = post.message.content
    assert content.startswith("<@&42>\n")
    assert post.ping_role_id == 42
    assert "**Black Mirror S7E6**" in content
    assert "*USS Callister*" in content
    assert f"Released {ts(NOW)} ({ts(NOW, 'R')})." in content
    assert (
        f"Spoilers stay hidden in this server until {ts(NOW + WEEK)} ({ts(NOW + WEEK, 'R')})."
        in content
    )
    assert "late" not in content
    assert not post.message.ephemeral
    assert post.thread_name == "Black Mirror S7E6 · USS Callister · spoilers"


def test_in_a_forum_the_release_post_is_the_thread_and_welcomes_spoilers_itself():
    post = release_post(
        episode(SPOILER_TITLE), title_spoils=True, window_ends_at=NOW + WEEK, now=NOW, forum=True
    )
    assert post.thread_message is None
    assert "Spoilers are welcome in the replies to this post." in post.message.content
    assert "spoiler thread" not in post.message.content
    assert post.thread_name == "Black Mirror S7E6 · spoilers"
    assert SPOILER_TITLE not in oracle.read(post.message.content).visible


def test_release_post_when_the_window_is_off_or_forever():
    off = release_post(episode(), title_spoils=False, window_ends_at=NOW, now=NOW)
    assert "Spoilers are open now in this server." in off.message.content
    assert "<@" not in off.message.content
    forever = release_post(episode(), title_spoils=False, window_ends_at=None, now=NOW)
    assert "Spoilers stay hidden in this server for good." in forever.message.content


def test_a_catch_up_release_post_says_how_late_it_is():
    post = release_post(
        episode(release=NOW - timedelta(hours=3)),
        title_spoils=False,
        window_ends_at=NOW + WEEK,
        now=NOW,
        late_by=timedelta(hours=3),
    )
    assert "Posted 3 hours late: Embargo was offline at release." in post.message.content
    assert ts(NOW - timedelta(hours=3), "R") in post.message.content


def test_a_spoiling_title_is_tagged_in_the_post_and_absent_from_the_thread_name():
    post = release_post(episode(SPOILER_TITLE), title_spoils=True, window_ends_at=NOW + WEEK,
                        now=NOW)  # fmt: skip
    reading = oracle.read(post.message.content)
    assert reading.hazards == ()
    assert SPOILER_TITLE not in reading.visible
    assert SPOILER_TITLE in reading.hidden
    assert post.thread_name == "Black Mirror S7E6 · spoilers"
    thread_reading = oracle.read(post.thread_message.content)
    assert SPOILER_TITLE not in thread_reading.visible
    assert thread_reading.hazards == ()


def test_content_file_text_cannot_ping_or_format():
    post = release_post(
        episode("@everyone <@&1> **bold**", show="<@123> || x"),
        title_spoils=False,
        window_ends_at=NOW + WEEK,
        now=NOW,
    )
    content = post.message.content
    assert "<@123>" not in content
    assert "<@&1>" not in content
    reading = oracle.read(content)
    assert reading.hidden == ""
    assert reading.hazards == ()


# -- thread first message and window-closed post -------------------------------------------------


def test_thread_message_welcomes_spoilers_and_says_when_the_rest_opens():
    message = thread_message(episode(), title_spoils=False, window_ends_at=NOW + WEEK, now=NOW)
    assert "Spoilers are welcome here" in message.content
    assert "leave the thread now" in message.content
    assert f"Outside this thread: Spoilers stay hidden in this server until {ts(NOW + WEEK)}" in (
        message.content
    )
    off = thread_message(episode(), title_spoils=False, window_ends_at=NOW, now=NOW)
    assert "Outside this thread" not in off.content


def test_window_closed_post():
    message = window_closed_post(episode(SPOILER_TITLE), closed_at=NOW, now=NOW)
    assert message.content == (
        "Spoilers for **Black Mirror S7E6** are now open everywhere in this server."
    )
    late = window_closed_post(episode(), closed_at=NOW - timedelta(hours=2), now=NOW)
    assert f"have been open everywhere in this server since {ts(NOW - timedelta(hours=2))}" in (
        late.content
    )


# -- /upcoming -----------------------------------------------------------------------------------


def test_upcoming_rows_show_times_and_hide_spoiling_titles():
    rows = [
        UpcomingRow(episode(release=NOW + WEEK), False, NOW + 2 * WEEK),
        UpcomingRow(episode(SPOILER_TITLE, number=7, release=NOW + 2 * WEEK), True, None),
        UpcomingRow(episode("Open", number=8, release=NOW + 3 * WEEK), False, NOW + 3 * WEEK),
    ]
    (message,) = upcoming_pages(rows, now=NOW)
    (embed,) = message.embeds
    description = embed["description"]
    assert SPOILER_TITLE not in str(embed)
    assert "*title hidden*" in description
    assert "USS Callister" in description
    assert f"{ts(NOW + WEEK)} ({ts(NOW + WEEK, 'R')})" in description
    assert f"spoilers open in this server {ts(NOW + 2 * WEEK)}" in description
    assert "spoilers never open in this server" in description
    assert "spoilers open in this server at release" in description
    assert "footer" not in embed
    assert message.ephemeral


def test_upcoming_pages_hold_ten_rows_each_in_order():
    rows = [
        UpcomingRow(episode(f"Episode {i}", number=i, release=NOW + i * WEEK), False, None)
        for i in range(1, 24)
    ]
    pages = upcoming_pages(rows, now=NOW, show_title="Black Mirror")
    assert len(pages) == 3
    for number, page in enumerate(pages, start=1):
        (embed,) = page.embeds
        assert embed["footer"] == {"text": f"Page {number}/3"}
        assert embed["title"] == "Upcoming: Black Mirror"
    shown = [
        int(n) for page in pages for n in re.findall(r"S7E(\d+)\*\*", page.embeds[0]["description"])
    ]
    assert shown == list(range(1, 24))
    assert [len(re.findall("S7E", p.embeds[0]["description"])) for p in pages] == [
        UPCOMING_PAGE_SIZE,
        UPCOMING_PAGE_SIZE,
        3,
    ]


def test_upcoming_with_nothing_known():
    (message,) = upcoming_pages([], now=NOW, show_title="Severance", in_guild=False)
    (embed,) = message.embeds
    assert embed["description"] == "No upcoming releases of Severance are known yet."
    assert "footer" not in embed


# -- announce settings ---------------------------------------------------------------------------


def test_announce_field_lists_targets_and_the_last_failure():
    announce = AnnounceSettings(
        AnnounceTarget(10, 20, NOW), {"severance": AnnounceTarget(11, None, NOW), "andor": None}
    )
    failed = LedgerEntry(PostState.FAILED, 2, NOW, last_error="Missing Permissions: Send Messages")
    key = PostKey(1, "severance/s01e01", PostKind.RELEASE)
    field = announce_field(announce, {"severance": "Severance", "andor": "Andor"}, (key, failed))
    assert field["value"].splitlines() == [
        "Default: <#10>, pinging <@&20>",
        "Andor: off",
        "Severance: <#11>",
        f"⚠️ The last post failed {ts(NOW)} ({ts(NOW, 'R')}): Missing Permissions: Send Messages",
    ]
    nothing = announce_field(AnnounceSettings(), {})
    assert nothing["value"] == "Default: off"
    assert describe_announce_target(None) == "off"
    assert describe_announce_target(AnnounceTarget(5, None, NOW)) == "<#5>"


# -- properties ----------------------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.sampled_from(list("abcXYZ 019.)+·:|*_~`\\<>@#&!-\n\t\u200d\u2028é漢😀")),
    max_size=260,
)
NAMED = TEXT.filter(lambda t: t.strip())


@settings(max_examples=400, deadline=None)
@given(show=NAMED, title=TEXT, other=TEXT, season=st.integers(0, 99), number=st.integers(0, 999),
       spoils=st.booleans())  # fmt: skip
def test_thread_names_fit_and_never_carry_a_spoiling_title(
    show, title, other, season, number, spoils
):
    ep = episode(title, show=show, season=season, number=number)
    name = thread_name(ep, title_spoils=spoils)
    assert 1 <= len(name) <= THREAD_NAME_LIMIT
    assert f" S{season}E{number}" in name
    assert name.endswith(" · spoilers")
    assert "\n" not in name
    assert "\u2028" not in name
    # A cut never ends on a lone backslash (one that would escape the ellipsis).
    if not re.search(r"\\…", show + title):
        assert not re.search(r"(?<!\\)(\\\\)*\\…", name)
    if spoils:
        # The name does not depend on the title at all: no part of it can leak.
        assert name == thread_name(episode(other, show=show, season=season, number=number),
                                   title_spoils=True)  # fmt: skip
        assert name == thread_name(episode("", show=show, season=season, number=number),
                                   title_spoils=False)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(show=NAMED, title=NAMED, other=NAMED, ping=st.none() | st.integers(1, 2**63 - 1),
       late=st.integers(0, 86_399), forum=st.booleans())  # fmt: skip
def test_a_hidden_title_is_only_ever_inside_spoiler_tags(show, title, other, ping, late, forum):
    def visible(title_text):
        ep = episode(title_text, show=show)
        post = release_post(ep, title_spoils=True, window_ends_at=NOW + WEEK, now=NOW,
                            ping_role_id=ping, late_by=timedelta(seconds=late),
                            forum=forum)  # fmt: skip
        messages = [post.message] if forum else [post.message, post.thread_message]
        readings = [oracle.read(message.content) for message in messages]
        for message in messages:
            assert len(message.content) <= DISCORD_MESSAGE_LIMIT
            assert not message.embeds
        for reading in readings:
            assert reading.hazards == ()
        mentions = re.findall(r"<@[!&]?\d+>", post.message.content)
        assert mentions == ([] if ping is None else [f"<@&{ping}>"])
        return [reading.visible for reading in readings], post.thread_name

    # What anyone sees outside the tags is the same whatever the title is.
    assert visible(title) == visible(other)
    # And a window-closed post never names the title at all.
    closed = window_closed_post(episode(title, show=show), closed_at=NOW, now=NOW)
    assert closed.content == window_closed_post(episode(other, show=show), closed_at=NOW,
                                                now=NOW).content  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(titles=st.lists(st.tuples(NAMED, st.booleans()), min_size=1, max_size=10))
def test_upcoming_never_shows_a_hidden_title_anywhere_in_its_embed(titles):
    rows = [
        UpcomingRow(
            episode(title, number=i, release=NOW + (i + 1) * WEEK), spoils, NOW + (i + 2) * WEEK
        )
        for i, (title, spoils) in enumerate(titles)
    ]
    # Every hidden title replaced by another: the page must not change.
    swapped = [
        UpcomingRow(
            episode("different", number=i, release=row.episode.release_at),
            True,
            row.window_ends_at,
        )
        if row.title_spoils
        else row
        for i, row in enumerate(rows)
    ]
    (page,) = upcoming_pages(rows, now=NOW)
    assert [page] == upcoming_pages(swapped, now=NOW)
    assert len(page.embeds[0]["description"]) <= 4096
