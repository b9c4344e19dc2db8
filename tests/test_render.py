"""Tests for bot/spoilers/render.py, judged by two independent readers.

Every rendered message is read by tests/markdown_oracle.py (Discord's lazy raw spoiler match, with
anything parser-dependent reported as a hazard) and by discord-markdown-py (an escape-aware
parser). A message passes only if both find nothing but list markup outside spoiler tags.
"""

from __future__ import annotations

import re
import unicodedata

import discord_markdown
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.spoilers import render
from bot.spoilers.render import (
    DISCORD_MESSAGE_LIMIT,
    MIN_LIMIT,
    plain_messages,
    spoiler_inline,
    spoiler_messages,
    truncate,
)
from tests import markdown_oracle as oracle

HEADER = "**S7E6 · ending**"  # short enough to share even the smallest limit
# Outside a tag, only list and subtext markers may show: bullets, numbers, "-#", whitespace.
MARKUP_ONLY = re.compile(r"[\s\-*#.\d]*")
SENTINEL = re.compile(r"SECRET\d+Q")
LIMITS = [MIN_LIMIT, 60, 97, 500, DISCORD_MESSAGE_LIMIT]

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE = [
    "|", "||", "|||", "||||", "\\", "\\\\", "\\|", "\\||", "\\|\\|", "|\\", "`", "``", "```",
    "```py\n", "\\`", "> ", ">", ">>> ", "\n> ", "\n>>> ", "# ", "## ", "-# ", "- ", "* ", "1. ",
    "  - ", "**", "__", "~~", "*", "_", "[", "](", ")", "<", ">", "https://example.com/a",
    "http://x.co/p?q=1|2", "<https://x.co/>", "HTTPS://UPPER.EXAMPLE/P", "https://", "http://",
    "https://e.com/w_(x)", "[link](https://ex.com/y)", "||https://x.com||", "https://x.com||",
    "https://x.com\\", "<@123>", "<@&45>", "<#6>", "<:e:7>", "<t:1:R>", "@everyone", "@here",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇯🇵", "日本語の文。", "次\uff01", "e\u0301",
    "Z\u0336\u0337", "\u200b", "\u2028", "\ufeff", "\r\n", "\r", "\n", "\n\n", "\t", " ", "  ",
    ". ", "! ", "? ",
]  # fmt: skip
SEPARATORS = [" ", " ", "\n", "\n\n", "\r\n", ". "]


def naive(text: str) -> list[str]:
    """The renderer every leak-class example must defeat."""
    return [f"||{text}||"]


# --- the judges ---------------------------------------------------------------------------


def library_text(message: str) -> tuple[str, str]:
    """(text outside spoiler nodes, text inside them) as discord-markdown-py parses it."""
    outside: list[str] = []
    inside: list[str] = []

    def walk(node: object, hidden: bool) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child, hidden)
        elif isinstance(node, dict):
            if node.get("type") == "spoiler":
                walk(node["value"]["content"], True)
                return
            for key, value in node.items():
                if key != "type":  # node kinds, not text
                    walk(value, hidden)
        elif isinstance(node, str):
            (inside if hidden else outside).append(node)

    walk(discord_markdown.parse(message), False)
    return "".join(outside), "".join(inside)


def bodies(messages: list[str], header: str) -> list[str]:
    """The messages without the caller's header."""
    if not header:
        return messages
    return [messages[0][len(header) + 1 :], *messages[1:]]


def leak_problems(messages: list[str], *, header: str = "", sentinels: list[str]) -> list[str]:
    """Everything that would let a spoiler show, according to either judge."""
    problems: list[str] = []
    hidden = ""
    for body in bodies(messages, header):
        reading = oracle.read(body)
        problems += [f"hazard: {hazard}" for hazard in reading.hazards]
        if not MARKUP_ONLY.fullmatch(reading.visible):
            problems.append(f"oracle sees {reading.visible!r} outside tags in {body!r}")
        outside, _ = library_text(body)
        if not MARKUP_ONLY.fullmatch(outside):
            problems.append(f"library sees {outside!r} outside tags in {body!r}")
        problems += bare_urls(body)
        hidden += reading.hidden
    problems += [f"{word} not inside any tag" for word in sentinels if word not in hidden]
    return problems


def bare_urls(message: str) -> list[str]:
    """Each URL that is not written ``<url>`` (an escaped ``https\\://`` is no URL at all)."""
    found = []
    for match in re.finditer(r"https?://", message, re.IGNORECASE):
        opener = max(match.start() - 1, 0)
        wrapped = re.match(r"<https?://[^\s<>]+>", message[opener:], re.IGNORECASE)
        backslashes = len(message[:opener]) - len(message[:opener].rstrip("\\"))
        if not wrapped or backslashes % 2:  # "\<https://..." shows "<" and a bare URL
            found.append(f"bare URL at {match.start()} in {message!r}")
    return found


def squeeze(display: str, ignore: str) -> str:
    """Displayed text without whitespace and the characters in ``ignore``."""
    return re.sub(rf"[\s{re.escape(ignore)}]", "", display)


def shown(text: str, ignore: str) -> str:
    """What Discord shows for Markdown ``text``, squeezed."""
    return squeeze(oracle.unescape(text), ignore)


def shown_rendered(messages: list[str], header: str, ignore: str) -> str:
    """What the oracle shows for the message bodies, tags opened, squeezed."""
    segments = (text for body in bodies(messages, header) for _, text in oracle.read(body).segments)
    return squeeze("".join(segments), ignore)


# --- strategies ---------------------------------------------------------------------------

fragments = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(SEPARATORS),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=10),
    st.text("ab |\\`>*_~<:/h", max_size=12),
    st.builds(
        lambda char, count: char * count,
        st.sampled_from(["x", "é", "|", "\\", "`", "😀", "e\u0301", "-"]),
        st.integers(20, 140),
    ),
)


@st.composite
def secret_texts(draw: st.DrawFn, max_parts: int = 40) -> tuple[str, list[str]]:
    """Hostile text with sentinel words placed anywhere, touching whatever is next to them."""
    parts = draw(st.lists(fragments, max_size=max_parts))
    count = draw(st.integers(1, 5))
    for index in range(count):
        parts.insert(draw(st.integers(0, len(parts))), f"SECRET{index}Q")
    text = "".join(parts)
    return text, SENTINEL.findall(text)


@st.composite
def long_secret_texts(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Over 10 KB: a hostile sample repeated, with sentinels cut in at any character."""
    sample = "".join(draw(st.lists(fragments, min_size=5, max_size=25))) + draw(
        st.sampled_from(SEPARATORS)
    )
    text = sample * (10_001 // max(len(sample), 1) + 1)
    for index in range(draw(st.integers(1, 5))):
        cut = draw(st.integers(0, len(text)))
        text = f"{text[:cut]}SECRET{index}Q{text[cut:]}"
    return text, SENTINEL.findall(text)


headers = st.sampled_from(["", HEADER])
plain_texts = st.lists(fragments, min_size=1, max_size=40).map("".join)


# --- properties of spoiler_messages -------------------------------------------------------


@PROPERTY
@given(secret_texts(), st.sampled_from(LIMITS), headers)
def test_no_secret_shows_outside_a_tag_and_none_is_dropped(case, limit, header):
    """P1: both judges see only list markup outside tags, and every sentinel is inside one."""
    text, sentinels = case
    messages = spoiler_messages(text, header=header, limit=limit)
    assert leak_problems(messages, header=header, sentinels=sentinels) == []


@PROPERTY
@given(secret_texts(), st.sampled_from(LIMITS), headers)
def test_every_message_fits_and_only_the_first_has_the_header(case, limit, header):
    """P2: limits, including tiny ones; header first and only there."""
    messages = spoiler_messages(case[0], header=header, limit=limit)
    assert all(len(message) <= limit for message in messages)
    assert all(message.strip() for message in messages)
    if header:
        assert messages[0] == header or messages[0].startswith(header + "\n")
        assert not any(header in message for message in messages[1:])


@PROPERTY
@given(secret_texts(), st.sampled_from(LIMITS), headers)
@example(("SECRET0Q<|https://example.com/a", ["SECRET0Q"]), 32, HEADER)  # "<" meets our "<url>"
@example(("SECRET0Q<<https://example.com/a", ["SECRET0Q"]), 32, HEADER)  # and so does each "<"
def test_shown_text_is_the_input_in_order(case, limit, header):
    """P3: what shows (tags opened) is the input's text, nothing lost, added or reordered.

    Whitespace is ignored (splits drop it), and so are the characters markup may add or remove:
    ``<>`` around URLs, ``*`` of headings turned bold, ``#`` of heading markers.
    """
    text = case[0]
    messages = spoiler_messages(text, header=header, limit=limit)
    assert shown_rendered(messages, header, "<>*#") == shown(text, "<>*#")


@PROPERTY
@given(secret_texts(), st.sampled_from(LIMITS))
def test_no_escape_is_split_or_left_dangling(case, limit):
    """P4: no message ends in an unpaired backslash; no tag content ends in one either."""
    for message in spoiler_messages(case[0], limit=limit):
        assert (len(message) - len(message.rstrip("\\"))) % 2 == 0
        for content in re.findall(r"\|\|(.+?)\|\|(?!\|)", message):
            assert (len(content) - len(content.rstrip("\\"))) % 2 == 0, message


@PROPERTY
@given(secret_texts(), st.sampled_from(LIMITS))
def test_urls_never_sit_bare(case, limit):
    """P5: every URL is ``<url>``, so it cannot unfurl, however it touched its neighbours."""
    for message in spoiler_messages(case[0], limit=limit):
        assert bare_urls(message) == []


@LONG
@given(long_secret_texts(), st.sampled_from([60, DISCORD_MESSAGE_LIMIT]), headers)
def test_long_hostile_text(case, limit, header):
    """P1-P5 together on text over 10 KB."""
    text, sentinels = case
    assert len(text) > 10_000
    messages = spoiler_messages(text, header=header, limit=limit)
    assert all(len(message) <= limit for message in messages)
    assert leak_problems(messages, header=header, sentinels=sentinels) == []
    assert shown_rendered(messages, header, "<>*#") == shown(text, "<>*#")


@PROPERTY
@given(st.one_of(plain_texts, secret_texts().map(lambda case: case[0])))
def test_a_line_that_fits_renders_as_its_units_join(text):
    """Lines that fit a message skip cutting units (render._body); both ways must agree."""
    for line in text.splitlines():
        for style in (render._SPOILER, render._MESSAGE, render._EMBED):
            units = render._rstrip(render._units(line, style))
            assert render._body(line, style) == "".join(unit[0] for unit in units), (line, style)


@PROPERTY
@given(secret_texts(max_parts=12))
@example(("SECRET0Q\\", ["SECRET0Q"]))
@example(("\\", []))  # all the tag holds is an escaped backslash
@example(("`", []))
@example(("SECRET0Q |", ["SECRET0Q"]))
@example(("- SECRET0Q", ["SECRET0Q"]))
@example(("https://SECRET0Q.com/", ["SECRET0Q"]))
def test_an_inline_spoiler_hides_exactly_its_literal_text_mid_line(case):
    """P7: a title that spoils, tagged mid-line in a bold heading: both judges see only the
    heading outside the tag, in it the title exactly as written (whitespace collapsed), no
    markup, link or mention of its own, and no hazard."""
    text, sentinels = case
    if not text.split():
        with pytest.raises(ValueError, match="nothing visible"):
            spoiler_inline(text)
        return
    tagged = spoiler_inline(text)
    message = f"## Ending explained: **Show S1E1 · {tagged}**"
    reading = oracle.read(message)
    assert reading.hazards == ()
    assert reading.visible == "## Ending explained: **Show S1E1 · **"
    assert reading.hidden.strip() == " ".join(text.split())
    outside, inside = library_text(message)
    assert outside == "Ending explained: Show S1E1 · "  # it reads the heading and bold too
    assert all(sentinel in inside for sentinel in sentinels)
    assert bare_urls(message) == []
    assert "\n" not in tagged
    # As the header of a tagged ending, it pairs with nothing in the body.
    (first,) = spoiler_messages("SECRET9Q ends it.", header=message)
    reading = oracle.read(first)
    assert reading.hazards == ()
    assert reading.visible == "## Ending explained: **Show S1E1 · **\n"
    assert "SECRET9Q" in reading.hidden
    outside, inside = library_text(first)
    assert MARKUP_ONLY.fullmatch(outside.removeprefix("Ending explained: Show S1E1 · ")), outside
    assert "SECRET9Q" in inside
    # With every escaped pair removed, what is left is what Discord would act on.
    unescaped = re.sub(r"\\[^0-9A-Za-z\s]", "", tagged)
    assert not re.search(r"<[@#:t]|[*_~`>]|\|\|.*\|\|.", unescaped), tagged


# --- properties of the plain helpers ------------------------------------------------------


@PROPERTY
@given(plain_texts, st.sampled_from(LIMITS), headers)
@example("\\" * 33 + "https://example.com/a", 60, "")  # a lone "\" must not escape our "<"
def test_plain_messages_fit_keep_the_text_and_wrap_urls(text, limit, header):
    """P6: plain_messages keeps every shown character in order, fits, and leaves no bare URL."""
    if not text.strip():
        with pytest.raises(ValueError, match="nothing visible"):
            plain_messages(text, header=header, limit=limit)
        return
    messages = plain_messages(text, header=header, limit=limit)
    assert all(len(message) <= limit for message in messages)
    assert "".join(messages).count("|") == text.count("|") + header.count("|")  # adds no tags
    assert "".join(shown(body, "<>") for body in bodies(messages, header)) == shown(text, "<>")
    assert [problem for message in messages for problem in bare_urls(message)] == []


@PROPERTY
@given(plain_texts, st.integers(2, 300))
@example("||||\\ \\ |", 8)  # dropping one lone backslash bared another
def test_truncate_fits_and_keeps_a_prefix(text, limit):
    """P6: truncate fits, leaves short text alone, keeps a prefix and no dangling backslash."""
    result = truncate(text, limit)
    assert len(result) <= limit
    if len(text) <= limit:
        assert result == text
        return
    assert result.endswith("…")
    kept = result.removesuffix("…")
    assert (len(kept) - len(kept.rstrip("\\"))) % 2 == 0
    assert shown(text, "").startswith(shown(kept, ""))


# --- one example per leak class: the renderer passes, the naive wrapper does not -----------

LEAK_CLASSES = {
    "a || inside closes the tag early": "The killer is||SECRET0Q all along",
    "a backslash does not stop || closing it": "not even this \\||SECRET0Q escapes",
    "a quote line inside the tag breaks it": "she says\n> SECRET0Q was here",
    "CRLF before a quote line": "she says\r\n> SECRET0Q was here",
    "an unclosed fence swallows the close": "```\nSECRET0Q\n",
    "a code span across lines beats the tag": "a `b\nSECRET0Q` c",
    "a code span holding || beats the tag": "`SECRET0Q||` then more",
    "a trailing backslash escapes the close": "ends with SECRET0Q \\",
    "a trailing pipe makes |||": "SECRET0Q and a pipe |",
    "a URL against || swallows the tag": "https://x.com/a||SECRET0Q",
    "a spoilered URL still unfurls": "it is at https://example.com/SECRET0Q",
}


@pytest.mark.parametrize("text", LEAK_CLASSES.values(), ids=LEAK_CLASSES.keys())
def test_leak_class_is_closed(text):
    sentinels = SENTINEL.findall(text)
    for limit in (MIN_LIMIT, 60, DISCORD_MESSAGE_LIMIT):
        messages = spoiler_messages(text, header=HEADER, limit=limit)
        assert leak_problems(messages, header=HEADER, sentinels=sentinels) == []


@pytest.mark.parametrize("text", LEAK_CLASSES.values(), ids=LEAK_CLASSES.keys())
def test_the_judges_catch_the_naive_wrapper(text):
    """Shows the judges can fail: each leak class defeats ``f"||{text}||"``."""
    assert leak_problems(naive(text), sentinels=SENTINEL.findall(text)) != []


# --- examples: formatting, boundaries, arguments ------------------------------------------


def test_formatting_is_kept_and_block_markup_stays_outside():
    text = "# Who did it\n- **Joan** _knew_ __all__\n  - nested\n1. first\n-# small print"
    assert spoiler_messages(text) == [
        "||**Who did it**||\n- ||**Joan** _knew_ __all__||\n  - ||nested||\n1. ||first||\n"
        "-# ||small print||"
    ]


def test_code_quotes_and_pipes_are_neutralised():
    text = "run `rm` then\n> quoted | piped ||"
    assert spoiler_messages(text) == ["||run \\`rm\\` then||\n||\\> quoted \\| piped \\|\\| ||"]


def test_an_open_angle_before_a_url_is_escaped_so_it_cannot_pair_with_ours():
    assert spoiler_messages("x<|https://a.io y<z") == ["||x\\<\\|<https://a.io> y<z||"]
    assert spoiler_messages("<a<https://a.io") == ["||\\<a\\<<https://a.io>||"]
    assert plain_messages("<https://a.io> <@1>https://b.io") == [
        "<https://a.io> <@1><https://b.io>"
    ]


def test_an_open_angle_before_an_escaped_scheme_is_escaped_too():
    # Found by test_long_hostile_text: "<https\\://>" is still an autolink by Discord's rule,
    # and an autolink shows its text raw, backslash included.
    (message,) = spoiler_messages("see <https://> now")
    assert message == "||see \\<https\\://> now||"
    assert shown_rendered([message], "", "") == shown("see <https://> now", "")


def test_an_open_angle_before_any_colon_slash_is_escaped():
    # Found by test_long_hostile_text: "<h…ttps://\\`>" is an autolink to Discord too (any
    # letters before ":/"), and would show the backslash we put before the backtick.
    text = "<hSECRET0Qttps://`>"
    (message,) = spoiler_messages(text)
    assert message.startswith("||\\<")
    assert shown_rendered([message], "", "") == shown(text, "")


def test_only_a_plain_space_keeps_an_open_angle_from_pairing_with_our_url():
    # Found by a deep hypothesis run: Discord's [^: >] takes a tab, so "<|<tab><https://…>"
    # is one autolink from the first "<", and would show the backslash escaping the "|".
    text = "a<|\thttps://e.com x"
    (message,) = spoiler_messages(text)
    assert message.startswith("||a\\<")
    assert shown_rendered([message], "", "") == shown(text, "")


def test_lone_backslashes_are_doubled_and_author_escapes_kept():
    assert spoiler_messages("a \\* b \\ c\\") == ["||a \\* b \\\\ c\\\\||"]


def test_paragraphs_are_not_split_when_they_fit_a_message():
    first, second = "alpha " * 6, "beta " * 6  # each paragraph fits, both together do not
    messages = spoiler_messages(f"{first}\n\n{second}", limit=60)
    assert [oracle.read(message).hidden for message in messages] == [first.strip(), second.strip()]


def test_long_lines_split_at_sentences_before_words():
    sentence = "This sentence fills over half of the room."  # 42 of the 54 a piece may hold
    messages = spoiler_messages(f"{sentence} " + "word " * 20, limit=60)
    assert oracle.read(messages[0]).hidden == sentence
    # A sentence end in the first half of the room would waste a message: words win there.
    messages = spoiler_messages("Short one. " + "word " * 20, limit=60)
    assert oracle.read(messages[0]).hidden.startswith("Short one. word word")
    assert all(oracle.read(message).hidden.endswith("word") for message in messages[1:])


def test_a_hard_split_fills_the_room_even_inside_a_run_of_letters():
    """Letters are cut in runs for speed; a split still falls after exactly as many as fit."""
    room = MIN_LIMIT - 6  # the tags, a closing pad and an escaped ">" are reserved
    for lead in ("", "\u00e9", "1."):
        messages = spoiler_messages(lead + "x" * 100, limit=MIN_LIMIT)
        hidden = [oracle.read(message).hidden for message in messages]
        assert [len(piece) for piece in hidden[:-1]] == [room] * (len(hidden) - 1)
        assert "".join(hidden) == lead + "x" * 100


def test_a_sentence_end_counts_only_inside_the_piece():
    """Closing quotes that start a piece do not end a sentence whose stop went in the last one."""
    text = "a" * 25 + "." + '"' * 14 + " c " + "b" * 30
    messages = spoiler_messages(text, limit=MIN_LIMIT)
    assert [oracle.read(message).hidden for message in messages] == [
        "a" * 25 + ".",
        '"' * 14 + " c",
        "b" * 26,
        "b" * 4,
    ]


def test_a_url_glued_to_a_word_is_still_wrapped():
    text = "seehttps://a.io 1http://b.io HTTP\u017f://c.io https:x"
    assert spoiler_messages(text) == [
        "||see<https://a.io> 1<http://b.io> <HTTP\u017f://c.io> https:x||"
    ]


def test_cjk_sentences_split_without_spaces():
    text = "第一の文はここで終わる。" * 10
    messages = spoiler_messages(text, limit=MIN_LIMIT)
    assert all(oracle.read(message).hidden.endswith("。") for message in messages)


def test_combining_marks_stay_with_their_letters():
    for lead in ("", "x", "xy"):  # shift where the hard splits fall
        for limit in (MIN_LIMIT, MIN_LIMIT + 1):
            for message in spoiler_messages(lead + "e\u0301" * 80, limit=limit):
                assert not unicodedata.combining(oracle.read(message).hidden[0]), message


def test_oversized_url_is_split_as_text_with_its_scheme_escaped():
    url = "https://example.com/" + "p" * 100
    messages = spoiler_messages(f"see {url}", limit=60)
    assert "https\\://example.com/" in "".join(messages)
    assert shown_rendered(messages, "", "") == shown(f"see {url}", "")


def test_header_that_could_pair_with_the_body_is_refused():
    for header in ("unclosed `tick", "a || b", "```\nfence", "`a` `b"):
        with pytest.raises(ValueError, match="header"):
            spoiler_messages("secret", header=header)
    assert spoiler_messages("secret", header="**T** `S1E1` ||x||")[0].startswith("**T**")


def test_blank_text_and_tiny_limits_are_refused():
    for text in ("", " \n\t\r\n "):
        with pytest.raises(ValueError, match="nothing visible"):
            spoiler_messages(text)
    with pytest.raises(ValueError, match="minimum"):
        spoiler_messages("text", limit=MIN_LIMIT - 1)


def test_truncate_prefers_sentences_and_closes_no_markup_open():
    text = "The first sentence is here. The second **bold part runs on** for a while."
    assert truncate(text, 40) == "The first sentence is here.…"
    assert truncate("Hello **bold world** more words here", 18) == "Hello…"
    assert truncate("a `code span` that goes on", 12) == "a…"
    assert truncate("path C:\\ and more words", 10) == "path C:…"


def test_plain_messages_wrap_urls_but_add_no_tags():
    assert plain_messages("see https://x.com/a and <https://y.com>", header="H") == [
        "H\nsee <https://x.com/a> and <https://y.com>"
    ]
