"""/vote, /unvote, /myvotes and /rankings through the real app-command tree (tests/support)."""

import asyncio
import copy
import io
import json
import random
import re
import shutil
import sys
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from bot import chart
from bot.chart import chart_size
from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.guild_settings import DEFAULT_MIN_VOTES
from bot.spoilers.render import escape_inline
from bot.storage import Storage
from tests.content_factory import episode_table, show_toml
from tests.support import DEFAULT_GUILD_ID, MEMBER, Harness, HarnessError, UserSpec
from tests.support.standin.world import snowflake

DATA = PROJECT_DIR / "data"
AFTER_SEASON_7 = datetime(2025, 6, 1, 12, tzinfo=UTC)
BEFORE_SEASON_7 = datetime(2025, 4, 1, 12, tzinfo=UTC)
SEASON_7 = [f"black-mirror/s07e0{n}" for n in range(1, 7)]
OTHER_GUILD = 1_300_000_000_000_000_999
ROW = re.compile(r"\*\*(\d+)\.\*\* `(S\d+E\d+)` .*? — (?:\*\*(\d+\.\d\d)\*\* · (\d+) votes?)?")
FINALE_LABEL = "Black Mirror S7E6 · USS Callister: Into Infinity"
README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
STRANGER = UserSpec(id=1_300_000_000_000_000_777, name="stranger")


def voter(n: int) -> UserSpec:
    return UserSpec(id=1_300_000_000_000_010_000 + n, name=f"voter{n}")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, h: Harness, storage: Storage, clock: Clock) -> None:
        self.h = h
        self.storage = storage
        self.clock = clock

    async def vote(self, user: UserSpec, episode: str, score: int):
        return await self.h.slash("vote", as_user=user, episode=episode, score=score)

    async def rankings(self, user: UserSpec = MEMBER, **options):
        return await self.h.slash("rankings", as_user=user, **options)


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    # The shipped Black Mirror data, plus a show nobody has written a critic ranking for.
    content = tmp_path / "content"
    shutil.copytree(DATA, content, ignore=shutil.ignore_patterns("*.db*"))
    episodes = [episode_table(1, n, f"Quiet {n}", released=date(2024, 1, n)) for n in (1, 2, 3)]
    (content / "shows" / "quiet-show.toml").write_text(
        show_toml(title="Quiet Show", episodes=episodes), encoding="utf-8"
    )
    return content


@pytest.fixture
async def world(database_url: str, tmp_path: Path, content_dir: Path):
    url = database_url
    storage = await Storage.open(url, tmp_path)
    settings = Settings(
        discord_token=None,
        database_url=url,
        content_dir=content_dir,
        log_level="INFO",
        dev_guild_id=None,
    )
    clock = Clock(AFTER_SEASON_7)
    try:
        async with Harness(EmbargoBot(settings, storage, clock=clock)) as h:
            yield World(h, storage, clock)
    finally:
        await storage.close()


def description(reply) -> str:
    (embed,) = reply.embeds
    return embed["description"]


def ranked_codes(reply) -> list[str]:
    return [match[1] for match in ROW.findall(description(reply))]


def shown(reply) -> dict:
    """The message as it looks after ``reply``, to click on next.

    The stand-in does not yet apply an UPDATE_MESSAGE callback's ``data`` to its copy of the
    message, so the components the bot just sent are laid over it.
    """
    message = copy.deepcopy(reply.message)
    message["components"] = reply.components
    return message


def button(reply, label: str) -> dict:
    for row in reply.components:
        for component in row["components"]:
            if component.get("label") == label:
                return component
    raise AssertionError(f"no {label!r} button in {reply.components}")


async def stored_votes(storage: Storage) -> list[tuple]:
    rows = await storage.db.fetch_all(
        "SELECT user_id, episode_key, score FROM votes ORDER BY user_id, episode_key"
    )
    return [tuple(row) for row in rows]


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image.convert("RGB")


def bar_lengths(image: Image.Image, rows: int) -> list[int]:
    left = chart.PADDING + chart.LABEL_WIDTH
    ends = []
    for index in range(rows):
        y = chart.HEADER_HEIGHT + chart.ROW_HEIGHT * index + chart.ROW_HEIGHT // 2
        colour = image.getpixel((left + 2, y))
        assert colour in (chart.BAR, chart.BEST_BAR)
        x = left + 2
        while image.getpixel((x + 1, y)) == colour:
            x += 1
        ends.append(x - left)
    return ends


# -- /vote and /unvote ---------------------------------------------------------------------------


async def test_vote_change_and_unvote(world: World):
    first = await world.vote(MEMBER, "black-mirror/s07e06", 6)
    assert first.ephemeral
    assert first.allowed_mentions == {"parse": []}
    assert "Saved: **6/10**" in first.content
    assert escape_inline("USS Callister: Into Infinity") in first.content
    assert "Community standing here: **#1 of 1**" in first.content
    assert "from 1 vote" in first.content

    changed = await world.vote(MEMBER, "s7e6", 8)
    assert changed.ephemeral
    assert "changed from 6 to 8" in changed.content
    assert await stored_votes(world.storage) == [(MEMBER.id, "black-mirror/s07e06", 8)]

    same = await world.vote(MEMBER, "s7e6", 8)
    assert "was already **8/10**" in same.content

    withdrawn = await world.h.slash("unvote", episode="into infinity")
    assert withdrawn.ephemeral
    readme_unvote = README[README.index("**`/unvote episode:`**") :].split("\n\n")[0]
    quoted = re.search(r"`(Withdrawn: .+?)`", readme_unvote)
    assert quoted, "the README's /unvote example is gone"
    assert withdrawn.content is not None
    assert withdrawn.content.splitlines()[0] == quoted[1]
    assert "no votes in this server now" in withdrawn.content
    assert await stored_votes(world.storage) == []
    assert await world.storage.check_vote_totals() == []

    again = await world.h.slash("unvote", episode="s7e6")
    assert again.content == (
        f"You haven't voted on **{FINALE_LABEL}** in this server; nothing to withdraw."
    )


async def test_vote_reply_shows_the_standing_among_the_shows_ranked_episodes(world: World):
    for n, score in ((1, 9), (2, 9), (3, 9)):
        await world.vote(voter(n), "s7e1", score)
    await world.vote(voter(4), "s7e2", 3)
    reply = await world.vote(voter(5), "s7e2", 4)
    # C = (27 + 7) / 5 = 6.8, m = 5: S7E1 (27 + 34) / 8 = 7.625, S7E2 (7 + 34) / 7 = 5.857
    assert "**#2 of 2**" in reply.content
    assert "**5.86** from 2 votes" in reply.content
    assert "average 3.5" in reply.content


async def test_unreleased_episode_is_refused_with_its_release_time(world: World):
    world.clock.now = BEFORE_SEASON_7
    refused = await world.vote(MEMBER, "s7e6", 9)
    assert refused.ephemeral
    assert refused.allowed_mentions == {"parse": []}
    release = int(datetime(2025, 4, 10, 7, tzinfo=UTC).timestamp())
    assert refused.content == (
        f"**{FINALE_LABEL}** isn't out yet: it's released <t:{release}:f> "
        f"(<t:{release}:R>). Voting opens then."
    )
    assert await stored_votes(world.storage) == []
    mine = await world.h.slash("myvotes", show="black-mirror")
    assert mine.content == (
        "You haven't voted on any Black Mirror episode in this server yet. Try `/vote`."
    )


async def test_out_of_range_score_is_declared_to_discord_and_refused_by_the_bot(world: World):
    registered = world.h.standin.registered_command("vote")
    options = {o["name"]: o for o in registered["options"]}
    assert (options["score"]["min_value"], options["score"]["max_value"]) == (1, 10)

    # The stand-in refuses to send what Discord's client would not; craft the payload a
    # modified client could still send.
    with pytest.raises(HarnessError, match="must be in"):
        await world.vote(MEMBER, "s7e6", 11)
    valid = await world.vote(MEMBER, "s7e6", 5)
    for bad in (11, 0, -4):
        refused = await resend(world, valid, score=bad)
        assert refused.ephemeral
        assert refused.content == "A score is a whole number from 1 to 10. Nothing was saved."
    assert await stored_votes(world.storage) == [(MEMBER.id, "black-mirror/s07e06", 5)]


async def resend(world: World, sent, **changed: object):
    """``sent``'s interaction again, with option values Discord's client would never send."""
    payload = copy.deepcopy(sent.payload)
    interaction_id = snowflake()
    payload["id"] = str(interaction_id)
    payload["token"] = f"crafted-{interaction_id}"
    for option in payload["data"]["options"]:
        if option["name"] in changed:
            option["value"] = changed[option["name"]]
    return await world.h.dispatch(payload)


async def test_over_long_episode_and_show_text_is_refused_and_nothing_is_stored(world: World):
    long = "s7e6 " + "\u3000" * 5995
    valid = await world.vote(MEMBER, "s7e6", 5)
    refused = await resend(world, valid, episode=long, score=9)
    assert refused.ephemeral
    assert refused.content == (
        "That's too long for an episode: at most 100 characters, and this has 6,000. "
        "Nothing was changed."
    )
    assert await stored_votes(world.storage) == [(MEMBER.id, "black-mirror/s07e06", 5)]
    for command in ("myvotes", "rankings"):
        sent = await world.h.slash(command, as_user=MEMBER, show="Black Mirror")
        refused = await resend(world, sent, show=long)
        assert refused.ephemeral, command
        assert refused.content.startswith("That's too long for a show: at most 100"), command
    assert await world.h.autocomplete("rankings", "show", long) == []


async def test_new_members_are_refused_until_old_enough_and_nothing_is_stored(world: World):
    # The stand-in's members joined on 2024-01-01; the clock says 2025-06-01 (517 days on).
    await world.storage.set_min_member_days(DEFAULT_GUILD_ID, 1000)
    refused = await world.vote(MEMBER, "s7e6", 9)
    assert refused.ephemeral
    eligible = int((datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=1000)).timestamp())
    assert refused.content == (
        "Members can vote once they've been in this server for 1000 days. You can vote from "
        f"<t:{eligible}:f> (<t:{eligible}:R>). Nothing was saved."
    )
    assert await stored_votes(world.storage) == []
    mine = await world.h.slash("myvotes")
    assert mine.content == "You haven't voted on any episode in this server yet. Try `/vote`."

    await world.storage.set_min_member_days(DEFAULT_GUILD_ID, 365)
    accepted = await world.vote(MEMBER, "s7e6", 9)
    assert "Saved" in accepted.content
    assert await stored_votes(world.storage) == [(MEMBER.id, "black-mirror/s07e06", 9)]


async def test_voting_commands_are_offered_in_servers_only(world: World):
    for name in ("vote", "unvote", "myvotes"):
        assert world.h.standin.registered_command(name)["contexts"] == [0]
    with pytest.raises(HarnessError, match="not offered in a DM"):
        await world.h.slash("vote", in_dm=True, episode="s7e6", score=5)
    # A stale client that still offers it in a DM: refused on the bot's side.
    in_server = await world.h.build_slash("vote", episode="s7e6", score=5)
    in_dm = await world.h.build_slash("spoilers", in_dm=True)
    in_dm["data"] = in_server["data"]
    reply = await world.h.dispatch(in_dm)
    assert reply.ephemeral
    assert reply.content == "This command only works in a server, not in direct messages."
    assert await stored_votes(world.storage) == []


async def test_unknown_episode_gets_suggestions(world: World):
    reply = await world.vote(MEMBER, "callistr infinty", 7)
    assert reply.ephemeral
    assert reply.content.startswith("I couldn't find an episode matching “callistr infinty”.")
    assert FINALE_LABEL in reply.content
    assert await stored_votes(world.storage) == []


async def test_episode_and_show_autocomplete(world: World):
    choices = await world.h.autocomplete("vote", "episode", "callister")
    assert "black-mirror/s07e06" in [c["value"] for c in choices]
    assert len(choices) <= 25
    shows = await world.h.autocomplete("rankings", "show", "quiet")
    assert [c["value"] for c in shows] == ["quiet-show"]
    mine = await world.h.autocomplete("myvotes", "show", "black")
    assert [c["value"] for c in mine] == ["black-mirror"]


# -- /myvotes --------------------------------------------------------------------------------------


async def test_myvotes_pages_through_a_members_own_votes(world: World):
    codes = [f"s{s}e{n}" for s in (3, 4) for n in range(1, 7)]  # 12 episodes
    for code in codes:
        await world.vote(MEMBER, code, 7)
    await world.vote(STRANGER, "s7e6", 2)  # someone else's vote is not listed

    first = await world.h.slash("myvotes")
    assert first.ephemeral
    assert first.embeds[0]["title"] == "Your votes in this server"
    assert description(first).count("**7**/10") == 10
    assert first.embeds[0]["footer"]["text"].startswith("Page 1 of 2 · 12 votes ·")
    assert button(first, "Previous")["disabled"] is True
    second = await world.h.click(button(first, "Next")["custom_id"], message=shown(first))
    assert second.callback_type == 7
    assert second.message is not None
    assert first.message is not None
    assert second.message["id"] == first.message["id"]
    assert second.ephemeral
    assert description(second).count("**7**/10") == 2
    assert second.embeds[0]["footer"]["text"].startswith("Page 2 of 2 ·")
    assert "S7E6" not in description(first) + description(second)

    shown_alone = await world.h.slash("myvotes", show="Black Mirror")
    assert shown_alone.embeds[0]["title"] == "Your Black Mirror votes in this server"
    quiet = await world.h.slash("myvotes", show="Quiet Show")
    assert quiet.ephemeral
    assert quiet.content is not None
    assert "haven't voted on any Quiet Show episode" in quiet.content


# -- /rankings -------------------------------------------------------------------------------------


def _short_code(code: str) -> str:
    """``s07e06`` as the rankings show it: ``S7E6``."""
    found = re.match(r"s(\d+)e(\d+)", code)
    assert found, code
    return "S{}E{}".format(*map(int, found.groups()))


async def test_rankings_pages_only_the_invoker_can_turn(world: World):
    critic = await world.storage.get_critic_ranking("black-mirror")
    assert critic is not None
    assert len(critic.best_first) > 20  # enough for three pages

    first = await world.rankings(show="Black Mirror")
    assert not first.ephemeral
    assert first.allowed_mentions == {"parse": []}
    assert "Critic ranking" in first.embeds[0]["title"]
    expected = [_short_code(code) for code in critic.best_first]
    assert ranked_codes(first) == expected[:10]
    assert button(first, "Previous")["disabled"] is True
    assert not button(first, "Next").get("disabled")

    refused = await world.h.click(
        button(first, "Next")["custom_id"], message=shown(first), as_user=STRANGER
    )
    assert refused.ephemeral
    assert refused.content is not None
    assert "belong to whoever ran the command" in refused.content
    assert refused.callback_type == 4  # a private answer, not an edit of the ranking

    second = await world.h.click(button(first, "Next")["custom_id"], message=shown(first))
    assert second.callback_type == 7
    assert ranked_codes(second) == expected[10:20]
    assert [int(r) for r, *_ in ROW.findall(description(second))] == list(range(11, 21))
    back = await world.h.click(button(second, "Previous")["custom_id"], message=shown(second))
    assert ranked_codes(back) == expected[:10]


async def test_pager_buttons_are_disabled_when_it_times_out(world: World, monkeypatch):
    monkeypatch.setattr(sys.modules["bot.ui"], "PAGER_TIMEOUT", 0.2)
    reply = await world.rankings(show="Black Mirror")
    assert not button(reply, "Next").get("disabled")
    for _ in range(100):
        await asyncio.sleep(0.02)
        edits = [
            r
            for r in world.h.requests
            if r.method == "PATCH" and r.path.endswith("/messages/@original")
        ]
        if edits:
            break
    else:
        pytest.fail("the pager never disabled its buttons")
    message = world.h.standin.messages[int(reply.message["id"])].payload
    states = [c.get("disabled") for row in message["components"] for c in row["components"]]
    assert states == [True, True]


async def test_critic_is_the_default_until_there_are_enough_votes(world: World):
    few = await world.rankings(show="Black Mirror", season=7)
    assert "Critic ranking" in few.embeds[0]["title"]
    assert "no votes from this server yet, and a community ranking needs 5" in description(few)
    assert "the critic's #" in description(few)

    for n in range(DEFAULT_MIN_VOTES):
        await world.vote(voter(n), "s7e1", 8)
    enough = await world.rankings(show="Black Mirror", season=7)
    assert "Community ranking" in enough.embeds[0]["title"]
    assert f"{DEFAULT_MIN_VOTES} votes from this server" in description(enough)
    assert ranked_codes(enough) == ["S7E1"]
    assert "5 more episode(s) in range have no votes yet" in description(enough)

    forced = await world.rankings(show="Black Mirror", season=7, source="critic")
    assert "Critic ranking" in forced.embeds[0]["title"]
    assert "as asked" in description(forced)
    assert len(ranked_codes(forced)) == 6

    await world.storage.set_min_votes(DEFAULT_GUILD_ID, 50)
    raised = await world.rankings(show="Black Mirror", season=7)
    assert "Critic ranking" in raised.embeds[0]["title"]
    assert "community ranking needs 50" in description(raised)
    asked = await world.rankings(show="Black Mirror", season=7, source="community")
    assert "Community ranking" in asked.embeds[0]["title"]


async def test_a_show_without_a_critic_ranking(world: World):
    nothing = await world.rankings(show="Quiet Show")
    assert nothing.ephemeral
    assert "Nothing to rank for **Quiet Show**" in nothing.content
    refused = await world.rankings(show="Quiet Show", source="critic")
    assert refused.ephemeral
    assert "no critic ranking of Quiet Show" in refused.content

    await world.vote(MEMBER, "quiet show s1e2", 9)
    provisional = await world.rankings(show="Quiet Show")
    assert "Community ranking" in provisional.embeds[0]["title"]
    assert "provisional" in description(provisional)
    assert ranked_codes(provisional) == ["S1E2"]


async def test_unknown_season_and_server_scope_in_dms_are_refused(world: World):
    no_season = await world.rankings(show="Black Mirror", season=9)
    assert no_season.ephemeral
    assert "has no season 9" in no_season.content
    dm = await world.h.slash("rankings", in_dm=True, show="Black Mirror", scope="server")
    assert dm.ephemeral
    assert dm.content is not None
    assert "scope: global" in dm.content


async def test_global_scope_pools_every_servers_votes(world: World):
    for n in range(6):
        await world.storage.cast_vote(OTHER_GUILD, voter(n).id, SEASON_7[2], 9, now=AFTER_SEASON_7)
    await world.vote(MEMBER, "s7e1", 6)

    server = await world.rankings(show="Black Mirror", season=7, source="community")
    assert ranked_codes(server) == ["S7E1"]
    pooled = await world.rankings(show="Black Mirror", season=7, scope="global")
    assert "Community ranking" in pooled.embeds[0]["title"]
    assert "7 votes across all servers" in description(pooled)
    assert ranked_codes(pooled) == ["S7E3", "S7E1"]
    in_dm = await world.h.slash("rankings", in_dm=True, show="Black Mirror", season=7)
    assert ranked_codes(in_dm) == ["S7E3", "S7E1"]


async def test_chart_is_a_png_of_the_expected_size(world: World):
    reply = await world.rankings(show="Black Mirror", chart=True)
    (upload,) = reply.files
    assert upload.filename == "ranking.png"
    critic = await world.storage.get_critic_ranking("black-mirror")
    assert critic is not None
    image = open_png(upload.data)
    assert image.size == chart_size(len(critic.best_first))
    # The picture is attached once; turning pages keeps it.
    second = await world.h.click(button(reply, "Next")["custom_id"], message=shown(reply))
    assert second.message is not None
    assert len(second.message["attachments"]) == 1


# -- a season ranked end to end: votes, the weighted order, the chart -------------------------

QUALITY = {1: 7, 2: 6, 3: 8, 4: 5, 5: 7, 6: 9}
FEW_BUT_PERFECT = 2


def expected_order(votes: dict[tuple[int, int], int], m: int) -> list[tuple[int, Fraction, int]]:
    """(episode number, weighted score, votes) best first, computed from the raw votes."""
    per_episode: dict[int, list[int]] = {}
    for (_, number), score in votes.items():
        per_episode.setdefault(number, []).append(score)
    every = [score for scores in per_episode.values() for score in scores]
    c = Fraction(sum(every), len(every))
    rows = []
    for number, scores in per_episode.items():
        v = len(scores)
        r = Fraction(sum(scores), v)
        rows.append((number, Fraction(v, v + m) * r + Fraction(m, v + m) * c, v))
    rows.sort(key=lambda row: (-row[1], -row[2], row[0]))
    return rows


def words_of(text: str) -> str:
    """Text reduced to its words: JSON and Markdown escapes and markup characters removed."""
    text = re.sub(r"\\(.)", r"\1", text)
    return " ".join(re.sub(r"[*_#>`|~\\-]", " ", text).split())


def visible_text(requests) -> str:
    """Everything the bot sent, reduced to words."""
    return words_of(" ".join(json.dumps(r.json, ensure_ascii=False) for r in requests if r.json))


async def test_done_means(world: World):
    rng = random.Random(7)
    votes: dict[tuple[int, int], int] = {}
    for member in range(30):
        for number, quality in QUALITY.items():
            if number == FEW_BUT_PERFECT and member >= 3:
                continue  # three 10/10s: the best mean, but too few votes to top the chart
            score = (
                10 if number == FEW_BUT_PERFECT else max(1, min(10, quality + rng.randint(-2, 2)))
            )
            votes[(member, number)] = score
            reply = await world.vote(voter(member), f"black mirror s7e{number}", score)
            assert "Saved" in reply.content

    expected = expected_order(votes, DEFAULT_MIN_VOTES)
    assert len({score for _, score, _ in expected}) == 6  # no ties: the order is the formula's
    by_mean = sorted(
        QUALITY,
        key=lambda n: (
            -Fraction(
                sum(s for (_, e), s in votes.items() if e == n), sum(1 for _, e in votes if e == n)
            )
        ),
    )
    assert by_mean[0] == FEW_BUT_PERFECT != expected[0][0]  # the weighting matters here
    listed = await world.rankings(show="Black Mirror", season=7)
    assert "Community ranking" in listed.embeds[0]["title"]
    assert "153 votes from this server" in description(listed)
    rows = ROW.findall(description(listed))
    assert [code for _, code, _, _ in rows] == [f"S7E{n}" for n, _, _ in expected]
    assert [score for _, _, score, _ in rows] == [f"{float(s):.2f}" for _, s, _ in expected]
    assert [int(v) for *_, v in rows] == [v for _, _, v in expected]

    pictured = await world.rankings(show="Black Mirror", season=7, chart=True)
    image = open_png(pictured.files[0].data)
    assert image.size == chart_size(6)
    span = chart.WIDTH - 2 * chart.PADDING - chart.LABEL_WIDTH - chart.VALUE_WIDTH
    lengths = bar_lengths(image, 6)
    assert lengths == sorted(lengths, reverse=True)
    for length, (_, weighted, _) in zip(lengths, expected, strict=True):
        assert abs(length - span * float(weighted) / 10) <= 1.5

    worst = await world.rankings(show="Black Mirror", season=7, order="worst-first")
    assert ranked_codes(worst) == [f"S7E{n}" for n, _, _ in reversed(expected)]

    # Fifteen members change their vote on the last-placed episode to 10: it moves up.
    last = expected[-1][0]
    for member in range(15):
        votes[(member, last)] = 10
        changed = await world.vote(voter(member), f"s7e{last}", 10)
        assert "changed from" in changed.content
    moved = expected_order(votes, DEFAULT_MIN_VOTES)
    assert [n for n, _, _ in moved].index(last) < 5
    after = await world.rankings(show="Black Mirror", season=7, chart=True)
    assert ranked_codes(after) == [f"S7E{n}" for n, _, _ in moved]
    assert bar_lengths(open_png(after.files[0].data), 6) == sorted(
        bar_lengths(open_png(after.files[0].data), 6), reverse=True
    )

    # Nothing any of this sent contains a word-run of a review or its ending.
    sent = visible_text(world.h.requests)
    for key in SEASON_7:
        review = await world.storage.get_review(key)
        assert review is not None
        assert review.ending  # otherwise this check would prove nothing
        for secret in (review.ending, review.body):
            words = words_of(secret).split()
            assert len(words) > 8
            # The detector sees through the escaping a leak would get on its way out.
            leaked = json.dumps({"content": escape_inline(secret)}, ensure_ascii=False)
            assert " ".join(words[:8]) in words_of(leaked)
            for start in range(len(words) - 7):
                window = " ".join(words[start : start + 8])
                assert window not in sent, f"{key}: review text reached Discord: {window!r}"


async def test_rankings_read_only_what_the_reply_needs(world: World, monkeypatch):
    reads: list[str] = []
    for name in ("get_critic_ranking", "vote_tallies"):
        real = getattr(world.storage, name)

        async def spy(*args, _real=real, _name=name):
            reads.append(_name)
            return await _real(*args)

        monkeypatch.setattr(world.storage, name, spy)

    async def ask(**options) -> tuple[list[str], str]:
        reads.clear()
        reply = await world.rankings(show="Black Mirror", season=7, **options)
        return list(reads), reply.embeds[0]["title"]

    await world.vote(voter(0), "s7e1", 9)
    # Too few votes: the default depends on whether a critic ranking exists.
    assert await ask() == (
        ["vote_tallies", "get_critic_ranking"],
        "Black Mirror · Season 7 · Critic ranking",
    )
    # Asked for, the community ranking needs no critic; the critic's needs no votes.
    assert await ask(source="community") == (
        ["vote_tallies"],
        "Black Mirror · Season 7 · Community ranking",
    )
    assert await ask(source="critic") == (
        ["get_critic_ranking"],
        "Black Mirror · Season 7 · Critic ranking",
    )
    for n in range(1, DEFAULT_MIN_VOTES):
        await world.vote(voter(n), "s7e2", 7)
    # Enough votes: the community ranking is the default, whatever the critic says.
    assert await ask() == (["vote_tallies"], "Black Mirror · Season 7 · Community ranking")
