"""/vote, /unvote, /myvotes and /rankings through the real ``python -m bot`` process.

One bot on a fresh database serves the module; tests run in file order (the critic fallback
needs a server without votes, so it comes first). Every vote cast goes through :func:`vote`,
which keeps a ledger, and expected community rankings are computed from that ledger with the
README's formula, independently of the bot. Refusals (unreleased, new members, bad scores,
unknown episodes, DMs) and paging are command behaviour, tested in-process in
tests/test_rankings_commands.py.
"""

from __future__ import annotations

import io
import re
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction

import pytest
from PIL import Image

from .embargo_checks import assert_reveals_nothing, assert_safe_delivery, moderator
from .embargo_content import SHOW_TITLE, E2EContent
from .scenario import REPO_ROOT, Scenario, ScenarioError, SentMessage

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
SHOW = tomllib.loads((REPO_ROOT / "data/shows/black-mirror.toml").read_text(encoding="utf-8"))
CRITIC = tomllib.loads((REPO_ROOT / "data/rankings/black-mirror.toml").read_text(encoding="utf-8"))
TITLES = {f"s{e['season']:02d}e{e['number']:02d}": e["title"] for e in SHOW["episodes"]}
SEASON_7 = [f"black-mirror/s07e0{n}" for n in range(1, 7)]
FINALE = "black-mirror/s07e06"
FINALE_LABEL = "Black Mirror S7E6 · USS Callister: Into Infinity"
M = 5  # the default minimum votes (README: default 5)
# A ranking row with markdown removed, as the README's examples show them.
COMMUNITY_ROW = re.compile(
    r"^(\d+)\. (S\d+E\d+) (.+) — (\d+\.\d\d) · (\d+) votes? · avg (\d+\.\d)$", re.MULTILINE
)
CRITIC_ROW = re.compile(r"^(\d+)\. (S\d+E\d+) (.+) — the critic's #(\d+) of (\d+)$", re.MULTILINE)
NOT_YOURS = (
    "These buttons belong to whoever ran the command. Run it yourself to get pages you can turn."
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Ledger:
    """Every vote standing in the server: (user, episode key) -> score."""

    votes: dict[tuple[str, str], int] = field(default_factory=dict)

    def scores(self, key: str) -> list[int]:
        return [s for (_, k), s in self.votes.items() if k == key]

    def show_mean(self, show: str) -> Fraction:
        scores = [s for (_, k), s in self.votes.items() if k.startswith(f"{show}/")]
        return Fraction(sum(scores), len(scores))

    def community(self, keys: list[str], m: int = M) -> list[tuple[str, str, int, str]]:
        """(code, weighted score, votes, average) best first: the README's formula and ties."""
        prior = self.show_mean(keys[0].split("/")[0])
        rows = []
        for key in keys:
            scores = self.scores(key)
            if scores:
                wr = (sum(scores) + m * prior) / (len(scores) + m)
                rows.append((wr, len(scores), key, Fraction(sum(scores), len(scores))))
        rows.sort(key=lambda r: (-r[0], -r[1], r[2]))  # earlier episode: key order
        return [(code(k), f"{float(wr):.2f}", n, f"{float(avg):.1f}") for wr, n, k, avg in rows]


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def scenario(embargo: Scenario) -> Scenario:
    embargo.checkpoint()
    return embargo


def code(key: str) -> str:
    """``black-mirror/s07e06`` -> ``S7E6``."""
    found = re.fullmatch(r".*/s(\d+)e(\d+)", key)
    assert found, key
    season, number = found.groups()
    return f"S{int(season)}E{int(number)}"


def plain(text: str) -> str:
    return text.replace("**", "").replace("`", "")


def readme_block(after: str) -> list[str]:
    start = README.index(after)
    block = re.search(r"```\n(.*?)```", README[start:], re.DOTALL)
    assert block, f"no example after {after!r} in the README"
    return block[1].strip().splitlines()


async def vote(scenario: Scenario, ledger: Ledger, user: str, key: str, score: int) -> SentMessage:
    handle = await scenario.slash("vote", as_user=user, episode=key, score=score)
    reply = await handle.reply()
    assert reply.ephemeral, reply.content
    assert reply.content.startswith(("Saved:", "Your vote for")), reply.content
    ledger.votes[(user, key)] = score
    return reply


def voter(scenario: Scenario, n: int) -> str:
    name = f"voter{n}"
    if name not in scenario.world.users:
        scenario.world.add_user(name)
    return name


# -- /rankings without votes: the critic --------------------------------------------------------


async def test_without_votes_the_critic_ranks_as_the_readme_shows(scenario: Scenario) -> None:
    example = readme_block("Without enough votes it falls back to the critic:")
    handle = await scenario.slash("rankings", show="black-mirror", season=7)
    (reply,) = await handle.messages()
    assert not reply.ephemeral
    assert_safe_delivery([reply])
    assert reply.components == []  # one page: no pager
    (embed,) = reply.embeds
    assert embed["title"] == example[0]
    description = plain(embed["description"])
    assert description.splitlines()[:2] == example[1:3]
    # The critic's own order, restricted to the season (data/rankings/black-mirror.toml).
    listed = [c for c in CRITIC["episodes"] if c.startswith("s07")]
    expected = [
        (str(rank), code(f"x/{c}"), TITLES[c], str(CRITIC["episodes"].index(c) + 1), "34")
        for rank, c in enumerate(listed, start=1)
    ]
    assert CRITIC_ROW.findall(description) == expected
    readme_rows = CRITIC_ROW.findall("\n".join(example))
    assert readme_rows
    assert readme_rows == expected[: len(readme_rows)]
    assert embed["footer"]["text"].startswith("Page 1 of 1 · best first · 6 episodes")
    scenario.assert_clean()


async def test_ranking_pages_turn_for_the_invoker_only(scenario: Scenario) -> None:
    handle = await scenario.slash("rankings", show="Black Mirror", source="critic")
    message = await handle.reply()
    assert not message.ephemeral
    assert message.embeds[0]["footer"]["text"].startswith("Page 1 of 4 ·")
    assert message.button("Previous")["disabled"] is True
    assert message.button("Next").get("disabled", False) is False
    ranks = [int(r[0]) for r in CRITIC_ROW.findall(plain(message.embeds[0]["description"]))]
    assert ranks == list(range(1, 11))

    async def turn(label: str, user: str = "alice") -> SentMessage:
        click = await scenario.click(message, message.button(label)["custom_id"], as_user=user)
        return await click.reply()

    page2 = await turn("Next")
    assert page2.id == message.id  # the same message, edited in place
    assert page2.embeds[0]["footer"]["text"].startswith("Page 2 of 4 ·")
    ranks = [int(r[0]) for r in CRITIC_ROW.findall(plain(page2.embeds[0]["description"]))]
    assert ranks == list(range(11, 21))
    assert page2.button("Previous").get("disabled", False) is False

    # Someone else's click: a private refusal, and the page stays where it is.
    refusal = await turn("Next", user="bob")
    assert refusal.id != message.id
    assert refusal.ephemeral
    assert refusal.visible_to == scenario.user("bob").id
    assert refusal.content == NOT_YOURS
    assert refusal.allowed_mentions == {"parse": []}
    current = scenario.message(message.id)
    assert current.edits == 1
    assert current.embeds[0]["footer"]["text"].startswith("Page 2 of 4 ·")

    await turn("Next")
    last = await turn("Next")
    assert last.embeds[0]["footer"]["text"].startswith("Page 4 of 4 ·")
    ranks = [int(r[0]) for r in CRITIC_ROW.findall(plain(last.embeds[0]["description"]))]
    assert ranks == list(range(31, 35))
    assert last.button("Next")["disabled"] is True
    with pytest.raises(ScenarioError, match="disabled"):
        await turn("Next")
    back = await turn("Previous")
    assert back.embeds[0]["footer"]["text"].startswith("Page 3 of 4 ·")
    scenario.assert_clean()


async def test_worst_first_keeps_rank_numbers(scenario: Scenario) -> None:
    handle = await scenario.slash(
        "rankings", show="black-mirror", source="critic", order="worst-first"
    )
    (reply,) = await handle.messages()
    rows = CRITIC_ROW.findall(plain(reply.embeds[0]["description"]))
    assert [int(r[0]) for r in rows] == list(range(34, 24, -1))
    assert rows[0][1] == code(f"x/{CRITIC['episodes'][-1]}")
    assert "worst first" in reply.embeds[0]["footer"]["text"]
    scenario.assert_clean()


async def test_a_show_without_votes_or_critic_has_nothing_to_rank(scenario: Scenario) -> None:
    (reply,) = await (await scenario.slash("rankings", show="clockwork")).messages()
    assert reply.ephemeral
    assert_safe_delivery([reply])
    assert reply.content == (
        f"Nothing to rank for **{SHOW_TITLE}** yet. No ranking yet: no votes from this server "
        "and no critic ranking. Members can add theirs with `/vote`."
    )
    scenario.assert_clean()


# -- /vote and /unvote ---------------------------------------------------------------------------


async def test_vote_replies_match_the_readme(scenario: Scenario, ledger: Ledger) -> None:
    example = readme_block("**`/vote episode: score:`**")
    first = await vote(scenario, ledger, "alice", FINALE, 6)
    assert_safe_delivery([first])
    assert first.content.splitlines()[0] == f"Saved: **6/10** for **{FINALE_LABEL}**."
    changed = await vote(scenario, ledger, "alice", FINALE, 8)
    assert changed.content.splitlines()[0] == example[0]  # "... changed from 6 to 8."
    # The standing lines, in the README's words, with this server's numbers.
    template = re.escape(plain("\n".join(example[1:])))
    template = re.sub(r"\\#\d+|\d+(?:\\\.\d+)?", r"[\\d.#]+", template)
    template = template.replace("votes", "votes?")  # "1 vote" here, "13 votes" there
    assert re.fullmatch(template, plain("\n".join(changed.content.splitlines()[1:])))
    assert changed.content.splitlines()[1:] == [
        "Community standing here: **#1 of 1** ranked Black Mirror episodes, weighted score "
        "**8.00** from 1 vote (average 8.0).",
        "-# Few votes pull a score towards the show's average here (8.00); the pull weighs "
        "like 5 votes (the server's minimum).",
    ]
    same = await vote(scenario, ledger, "alice", FINALE, 8)
    assert same.content.splitlines()[0] == (
        f"Your vote for **{FINALE_LABEL}** was already **8/10**; it stands."
    )

    await vote(scenario, ledger, "bob", "black-mirror/s03e04", 10)
    standing = await vote(scenario, ledger, "bob", FINALE, 4)
    rows = ledger.community(["black-mirror/s03e04", FINALE])
    assert [r[0] for r in rows] == ["S3E4", "S7E6"]
    _, score, votes, average = rows[1]
    prior = f"{float(ledger.show_mean('black-mirror')):.2f}"
    assert standing.content.splitlines()[1:] == [
        f"Community standing here: **#2 of 2** ranked Black Mirror episodes, weighted score "
        f"**{score}** from {votes} votes (average {average}).",
        f"-# Few votes pull a score towards the show's average here ({prior}); the pull weighs "
        "like 5 votes (the server's minimum).",
    ]
    scenario.assert_clean()


# -- /myvotes ------------------------------------------------------------------------------------


async def test_myvotes_lists_your_votes_like_the_readme(scenario: Scenario, ledger: Ledger) -> None:
    example = readme_block("**`/myvotes [show:]`**")
    await vote(scenario, ledger, "admin", FINALE, 8)
    handle = await scenario.slash("myvotes", as_user="admin")
    (reply,) = await handle.messages()
    assert reply.ephemeral
    assert_safe_delivery([reply])
    (embed,) = reply.embeds
    assert embed["title"] == example[0]
    (row,) = embed["description"].splitlines()
    readme_row = re.sub(r" · [^·]+ ago$", "", example[1])
    assert re.fullmatch(re.escape(readme_row) + r" · <t:\d+:R>", row)
    assert embed["footer"]["text"] == example[2]
    scenario.assert_clean()


# -- /rankings with votes ------------------------------------------------------------------------


async def test_community_ranking_with_enough_votes(scenario: Scenario, ledger: Ledger) -> None:
    example = readme_block("Pages of 10 have")  # the README's community example
    # Six voters score all of season 7 (distinct tastes, so no ties).
    for n in range(1, 7):
        name = voter(scenario, n)
        for i, key in enumerate(SEASON_7):
            await vote(scenario, ledger, name, key, 1 + (3 * i + 2 * n) % 10)
    handle = await scenario.slash("rankings", show="black-mirror", season=7)
    (reply,) = await handle.messages()
    assert not reply.ephemeral
    assert_safe_delivery([reply])
    (embed,) = reply.embeds
    assert embed["title"] == example[0]
    votes = sum(len(ledger.scores(k)) for k in SEASON_7)
    description = plain(embed["description"])
    assert description.splitlines()[0] == re.sub(r"\d+ votes", f"{votes} votes", example[1])
    rows = [(c, s, int(n), a) for _, c, _, s, n, a in COMMUNITY_ROW.findall(description)]
    assert rows == ledger.community(SEASON_7)
    assert [int(r[0]) for r in COMMUNITY_ROW.findall(description)] == list(range(1, 7))
    assert len(COMMUNITY_ROW.findall("\n".join(example))) == 6  # the README's rows, same shape
    c = f"{float(ledger.show_mean('black-mirror')):.2f}"
    footer = embed["footer"]["text"]
    assert footer == (
        "Page 1 of 1 · this server · best first · 6 episodes · m = 5\n"
        f"Weighted score = v/(v+m)·R + m/(v+m)·C, with m = 5 and C = {c} "
        "(the show's average in this server)"
    )
    readme_c = re.search(r"C = (\d+\.\d\d)", example[-1])
    assert readme_c
    assert footer.replace(f"C = {c}", f"C = {readme_c[1]}").splitlines() == example[-2:]
    scenario.assert_clean()


async def test_min_votes_changes_the_weighting_and_the_source(
    scenario: Scenario, ledger: Ledger
) -> None:
    await moderator(scenario, "min-votes", count=1000)
    (critic,) = await (await scenario.slash("rankings", show="black-mirror", season=7)).messages()
    votes = sum(len(ledger.scores(k)) for k in SEASON_7)
    assert plain(critic.embeds[0]["description"]).splitlines()[0] == (
        f"Critic ranking: only {votes} votes from this server so far, and a community ranking "
        "needs 1000."
    )
    await moderator(scenario, "min-votes", count=2)
    handle = await scenario.slash("rankings", show="black-mirror", season=7, source="community")
    (reply,) = await handle.messages()
    description = plain(reply.embeds[0]["description"])
    assert description.splitlines()[0] == (
        f"Community ranking, as asked: {votes} votes from this server."
    )
    rows = [(c, s, int(n), a) for _, c, _, s, n, a in COMMUNITY_ROW.findall(description)]
    assert rows == ledger.community(SEASON_7, m=2)
    await moderator(scenario, "min-votes", count=M)
    scenario.assert_clean()


async def test_chart_is_a_png_attachment_next_to_the_pages(scenario: Scenario) -> None:
    handle = await scenario.slash("rankings", show="black-mirror", source="critic", chart=True)
    message = await handle.reply()
    assert list(message.files) == ["ranking.png"]
    (attachment,) = message.attachments
    assert attachment["content_type"] == "image/png"
    data = message.files["ranking.png"]
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        image.load()  # the whole file decodes
        width, height = image.size
    assert width >= 400
    assert height >= 34 * 10  # a bar per ranked episode
    assert message.embeds[0]["title"] == "Black Mirror · Critic ranking"
    assert message.allowed_mentions == {"parse": []}
    # Turning the page keeps the chart (it shows the whole ranking).
    click = await scenario.click(message, message.button("Next")["custom_id"], as_user="alice")
    page2 = await click.reply()
    assert page2.files == {"ranking.png": data}

    (community,) = await (
        await scenario.slash("rankings", show="black-mirror", season=7, chart=True)
    ).messages()
    assert community.files["ranking.png"].startswith(PNG_SIGNATURE)
    assert community.files["ranking.png"] != data
    assert community.components == []
    scenario.assert_clean()


async def test_rankings_in_a_dm_pool_every_server(scenario: Scenario, ledger: Ledger) -> None:
    handle = await scenario.slash("rankings", show="black-mirror", season=7, in_channel="dm")
    (reply,) = await handle.messages()
    description = plain(reply.embeds[0]["description"])
    votes = sum(len(ledger.scores(k)) for k in SEASON_7)
    assert description.splitlines()[0] == (
        f"Community ranking: {votes} votes across all servers, at least the 5 needed to prefer it."
    )
    assert "· all servers ·" in reply.embeds[0]["footer"]["text"]
    assert "(the show's average across all servers)" in reply.embeds[0]["footer"]["text"]
    (refused,) = await (
        await scenario.slash("rankings", show="black-mirror", scope="server", in_channel="dm")
    ).messages()
    assert refused.ephemeral
    assert refused.content == "There's no server in direct messages: use `scope: global` here."
    scenario.assert_clean()


async def test_rankings_bad_input(scenario: Scenario) -> None:
    (unknown,) = await (await scenario.slash("rankings", show="Black Miror")).messages()
    assert unknown.ephemeral
    assert unknown.content.startswith("I don't know a show called “Black Miror”.")
    (season,) = await (await scenario.slash("rankings", show="black-mirror", season=99)).messages()
    assert season.ephemeral
    assert season.content == "Black Mirror has no season 99. Seasons: 0, 1, 2, 3, 4, 5, 6, 7."
    # A choice Discord's client never offers (a modified client): refused, not guessed at.
    payload = scenario.build_slash("rankings", show="black-mirror", order="best-first")
    for option in payload["data"]["options"]:
        if option["name"] == "order":
            option["value"] = "sideways"
    (order,) = await (await scenario.send_raw_interaction(payload)).messages()
    assert order.ephemeral
    assert order.content.startswith("That value isn't one of `best-first`, `worst-first`.")
    scenario.assert_clean()


async def test_rankings_show_titles_and_scores_never_endings(
    scenario: Scenario, ledger: Ledger, content: E2EContent
) -> None:
    await vote(scenario, ledger, "alice", content.recent.key, 9)
    await vote(scenario, ledger, "alice", content.old.key, 6)
    (reply,) = await (await scenario.slash("rankings", show=SHOW_TITLE)).messages()
    description = plain(reply.embeds[0]["description"])
    assert description.splitlines()[0] == (
        "Community ranking, provisional: only 2 votes from this server so far, and a community "
        "ranking needs 5, but there is no critic ranking."
    )
    assert [r[1] for r in COMMUNITY_ROW.findall(description)] == ["S1E2", "S1E1"]
    for episode in content.episodes:
        assert_reveals_nothing([reply], episode.ending)
    scenario.assert_clean()


async def test_show_options_autocomplete(scenario: Scenario) -> None:
    for command in ("rankings", "myvotes"):
        choices = await scenario.autocomplete(command, "show", "black")
        assert choices[0] == {"name": "Black Mirror", "value": "black-mirror"}
    choices = await scenario.autocomplete("embargo", "show", "clock", "show-window", as_user="mod")
    assert choices == [{"name": SHOW_TITLE, "value": "clockwork-test"}]
    episodes = await scenario.autocomplete("vote", "episode", "into infinity")
    assert episodes[0] == {"name": FINALE_LABEL, "value": FINALE}
    scenario.assert_clean()
