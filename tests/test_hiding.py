"""Hiding a message as a spoiler, the pure part: who may, what can't be reposted, and the
repost's text judged by the markdown oracle the renderer's property tests use."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.hiding import (
    UPLOAD_HEADROOM,
    CannotHide,
    Hider,
    HideSource,
    Refusal,
    SourceAttachment,
    check_hideable,
    may_hide,
    spoiler_filename,
    upload_groups,
    webhook_name,
)
from bot.hiding_messages import RepostPart, repost_parts
from bot.spoilers.render import DISCORD_MESSAGE_LIMIT
from tests import markdown_oracle
from tests.support.reading import MARKUP_ONLY

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AUTHOR, OTHER, ROLE = 1, 2, 3
LIMIT = 10 * 1024 * 1024


def hider(user_id: int = OTHER, *, roles: tuple[int, ...] = (), manage: bool = False) -> Hider:
    return Hider(user_id=user_id, role_ids=frozenset(roles), manage_messages=manage)


def test_who_may_hide():
    assert may_hide(hider(AUTHOR), AUTHOR, None)
    assert may_hide(hider(manage=True), AUTHOR, None)
    assert may_hide(hider(roles=(ROLE,)), AUTHOR, ROLE)
    assert not may_hide(hider(roles=(ROLE,)), AUTHOR, None)
    assert not may_hide(hider(roles=(ROLE + 1,)), AUTHOR, ROLE)
    assert not may_hide(hider(), AUTHOR, ROLE)


def test_what_cannot_be_reposted():
    def check(**fields: object) -> CannotHide | None:
        source = HideSource(author_id=AUTHOR, **fields)  # type: ignore[arg-type]
        return check_hideable(source, upload_limit=LIMIT)

    assert check(text="words") is None
    assert check(text="", attachments=(SourceAttachment("a.png", 10),)) is None
    assert check(text="words", system=True) == CannotHide(Refusal.SYSTEM_MESSAGE)
    assert check(text="words", from_embargo=True) == CannotHide(Refusal.ALREADY_HIDDEN)
    assert check(text=" \n", rich_embeds=2) == CannotHide(Refusal.NOTHING_TO_HIDE)
    assert check(text="recap", rich_embeds=1) == CannotHide(Refusal.EMBEDS)
    assert check(text="look", stickers=1) == CannotHide(Refusal.STICKER)
    assert check(text="", poll=True) == CannotHide(Refusal.POLL)
    big = SourceAttachment("film.mkv", LIMIT + 1)
    assert check(text="words", attachments=(big,)) == CannotHide(
        Refusal.ATTACHMENT_TOO_LARGE, "film.mkv"
    )
    # A file exactly at the limit leaves no room for the message around it in the upload.
    at_limit = SourceAttachment("film.mkv", LIMIT)
    assert check(text="", attachments=(at_limit,)) == CannotHide(
        Refusal.ATTACHMENT_TOO_LARGE, "film.mkv"
    )
    fits = SourceAttachment("still.png", LIMIT - UPLOAD_HEADROOM)
    assert check(text="", attachments=(fits,)) is None


def test_attachments_are_split_into_uploads_discord_accepts():
    mib = 1024 * 1024
    assert upload_groups([], LIMIT) == []
    assert upload_groups([6 * mib, 6 * mib, 1024], LIMIT) == [[0], [1, 2]]
    assert upload_groups([3 * mib] * 4, LIMIT) == [[0, 1, 2], [3]]  # in the member's order
    assert upload_groups([10] * 11, LIMIT) == [list(range(10)), [10]]  # ten files a message
    assert upload_groups([LIMIT - UPLOAD_HEADROOM] * 2, LIMIT) == [[0], [1]]


def test_repost_parts_carry_the_uploads_and_end_with_who_hid_it():
    footer = "-# hidden as a spoiler by mod"
    [only] = repost_parts("Daly lives", hider_name="mod", uploads=[[0, 1]])
    assert only.files == (0, 1)
    assert only.content.endswith("||\n" + footer)
    parts = repost_parts("Daly lives", hider_name="mod", uploads=[[0], [1], [2]])
    assert [p.files for p in parts] == [(0,), (1,), (2,)]
    assert parts[0].content.startswith("||")
    assert footer not in parts[0].content
    assert [p.content for p in parts[1:]] == ["", footer]
    files_only = repost_parts("", hider_name="mod", reply_url="https://x/1", uploads=[[0]])
    assert files_only == [RepostPart(f"-# ↪ reply to <https://x/1>\n{footer}", (0,))]


def test_spoiler_file_names_and_webhook_names():
    assert spoiler_filename("a.png") == "SPOILER_a.png"
    assert spoiler_filename("SPOILER_a.png") == "SPOILER_a.png"
    assert webhook_name("Captain Fan") == "Captain Fan"
    assert webhook_name("my Discord fan\u202e\n") == "my fan"
    assert webhook_name("clyde") == "member"
    assert len(webhook_name("x" * 200)) == 80


member_text = st.text(
    alphabet=st.sampled_from(list("ab |`\\*_~<>@#:/.-\n")) | st.characters(codec="utf-8"),
    min_size=1,
    max_size=400,
)


@PROPERTY
@given(member_text)
@example("||already hidden|| but this is not")
@example("ask <@123> @everyone https://example.com/x")
@example("`code || span` \\|| escaped")
@example("- item\n# heading\n1. one")
def test_a_repost_shows_nothing_of_the_text_outside_tags(text):
    parts = repost_parts(text, hider_name="mod `||", reply_url="https://discord.com/c/1/2/3")
    contents = [part.content for part in parts]
    visible = ""
    for content in contents:
        assert len(content) <= DISCORD_MESSAGE_LIMIT
        reading = markdown_oracle.read(content)
        assert not reading.hazards, (reading.hazards, content)
        visible += reading.visible
    for line in visible.splitlines():
        # Embargo's own lines (the reply link, who hid it, their name escaped), and list
        # markers, which the renderer leaves outside the tags as for endings.
        assert line.startswith("-# ") or MARKUP_ONLY.fullmatch(line), (line, contents)
    assert contents[-1].endswith("-# hidden as a spoiler by mod \\`\\|\\|")
