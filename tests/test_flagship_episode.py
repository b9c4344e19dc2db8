"""The shipped Black Mirror S7E6 review agrees with the review it was written from.

The source (a published review with an "ending explained") states the plot facts below. Each
fact is a set of key terms that must all appear in one paragraph of the ending, so a rewrite
may word things freely but cannot drop an event, swap who did what to a different paragraph
of unrelated text, or bring back the claims the source contradicts.
"""

import asyncio
import re

import pytest

from bot.config import PROJECT_DIR
from bot.content.models import Review
from bot.content.sync import dry_run

FLAGSHIP = "black-mirror/s07e06"

# fact -> key terms (regular expressions, case-insensitive), all in one paragraph.
ENDING_FACTS: dict[str, tuple[str, ...]] = {
    "real Nanette finds the robbers are Daly's illegal clones": (
        r"\bNanette\b",
        r"\bclones\b",
        r"\brobb",
        r"\billegal\b",
    ),
    "the crew's plan: the source code, a universe of their own": (
        r"\bsource code\b",
        r"\buniverse\b",
    ),
    "the real Walton, in the game, kills Karl": (r"\breal Walton\b", r"\bKarl\b", r"\bkill"),
    "the real Nanette, stopping Walton, is hit by a car": (
        r"\bNanette\b",
        r"\bWalton\b",
        r"\bcar\b",
        r"\bbrain-dead\b|\bcoma\b",
    ),
    "a flashback to a young Daly, played by Jesse Plemons": (
        r"\bflashback\b",
        r"\byoung Robert Daly\b|\byoung Daly\b",
        r"\bJesse Plemons\b",
    ),
    "an enslaved copy of Daly in the game engine": (
        r"\benslaved\b",
        r"\bcopy of Daly\b",
        r"\bgame engine\b",
    ),
    "the real Walton invites every player the crew robbed": (
        r"\breal Walton\b",
        r"\binvit",
        r"\brobbed\b",
    ),
    "Daly's choice: a new universe or her real self's body; she picks her crew": (
        r"\bchoice\b",
        r"\buniverse\b",
        r"\bbrain-dead body\b",
        r"\bchooses her crew\b",
    ),
    "the third option: Daly wants to keep a copy of Nanette": (
        r"\bthird option\b",
        r"\bsave everyone\b",
        r"\bkeep a copy of Nanette\b",
    ),
    "Daly takes her mouth; she kills him with a Space Fleet prop; Infinity collapses": (
        r"\bmouth\b",
        r"I'm a nice guy",
        r"\bkills him\b",
        r"\bSpace Fleet\b",
        r"\bprop\b",
        r"\bcollapse",
    ),
    "a floppy disk sends everyone into the real Nanette, who wakes from her coma": (
        r"\bfloppy disk\b",
        r"\bmind of her real-world self\b",
        r"\bwakes up\b",
        r"\bcoma\b",
    ),
    "the kill switch deletes the game; Walton crushes a Daly comic": (
        r"\bkill switch\b",
        r"\bdeleted\b",
        r"\bcomics?\b",
        r"\bcrushes\b",
    ),
    "three months later the FBI arrest Walton for the cloning": (
        r"\bthree months\b",
        r"\bFBI\b",
        r"\barrest",
        r"\bcloning\b",
    ),
    "the crew stay in Nanette's head and make her watch a Real Housewives-style show": (
        r"\bhead\b",
        r"\bReal Housewives\b",
    ),
}

# Claims an earlier version made that the source contradicts.
CONTRADICTED = (
    r"\bchooses the body\b",  # she chooses her crew
    r"\btwelve years\b",  # the source dates no flashback
    r"\bbuy her silence\b",  # she is hit trying to stop Walton returning to the game
    r"\bBob\b",
)

# Terms that only the ending may contain: none of them belongs in the spoiler-free review.
SPOILER_TERMS = (
    r"\bHeart of Infinity\b",
    r"\bsource code\b",
    r"\bkill(s|ed)?\b",
    r"\bcar\b",
    r"\bcoma\b",
    r"\bbrain-dead\b",
    r"\bJesse Plemons\b",
    r"\benslaved\b",
    r"\bcopy of Daly\b",
    r"\bfloppy\b",
    r"\bkill switch\b",
    r"\bFBI\b",
    r"\barrest",
    r"\bReal Housewives\b",
    r"\bSpace Fleet\b",
    r"\bnice guy\b",
    r"\bthird option\b",
)


@pytest.fixture(scope="module")
def flagship() -> Review:
    report, loaded = asyncio.run(dry_run(PROJECT_DIR / "data"))
    assert not [problem for problem in report.problems if problem.severity == "error"]
    return loaded.reviews[FLAGSHIP]


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


@pytest.mark.parametrize("fact", list(ENDING_FACTS))
def test_the_ending_states_each_fact_of_the_source(flagship, fact):
    assert flagship.ending
    terms = ENDING_FACTS[fact]
    assert any(
        all(re.search(term, paragraph, re.IGNORECASE) for term in terms)
        for paragraph in paragraphs(flagship.ending)
    ), fact


@pytest.mark.parametrize("claim", CONTRADICTED)
def test_no_claim_the_source_contradicts(flagship, claim):
    assert not re.search(claim, f"{flagship.body}\n{flagship.ending}", re.IGNORECASE)


@pytest.mark.parametrize("term", SPOILER_TERMS)
def test_the_review_keeps_the_endings_spoilers_out(flagship, term):
    assert not re.search(term, f"{flagship.verdict}\n{flagship.body}", re.IGNORECASE)


def test_the_verdict_keeps_the_sources_judgement(flagship):
    # "looser and bigger in the way sequels tend to be. But still compelling"
    for term in (r"\bbigger\b", r"\blooser\b", r"\bcompelling\b"):
        assert re.search(term, flagship.verdict, re.IGNORECASE), term
    assert flagship.rating >= 3.5
