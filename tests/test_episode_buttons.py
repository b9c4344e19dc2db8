"""The persistent episode buttons' custom ids. Posts already in servers carry them, and a click
on one reaches Embargo only while the id still matches a registered template: these strings must
never change, whatever the code behind them becomes."""

from __future__ import annotations

import pytest

from bot.ui import EpisodeButton
from cogs.discussion._buttons import ReviewButton, release_view
from cogs.progress import WatchedButton
from cogs.reviews import EndingButton, ending_view

KEY = "severed-ties/s01e01"
# As released: the ids on posts in servers.
PINNED = {
    ReviewButton: "embargo:review:{key}",
    EndingButton: "embargo:ending:{key}",
    WatchedButton: "embargo:watched:{key}",
}
# Keys as content files make them: long slugs, digits, two-digit seasons and episodes.
KEYS = (KEY, "black-mirror/s07e06", "the-100/s10e123", "x/s0e0")


@pytest.mark.parametrize("button_class", PINNED)
@pytest.mark.parametrize("key", KEYS)
def test_custom_ids_are_pinned(button_class: type[EpisodeButton], key: str) -> None:
    button = button_class(key)
    custom_id = PINNED[button_class].format(key=key)
    assert button.custom_id == custom_id
    match = button.template.fullmatch(custom_id)
    assert match is not None
    assert match["key"] == key


@pytest.mark.parametrize("button_class", PINNED)
def test_each_template_answers_only_its_own_button(button_class: type[EpisodeButton]) -> None:
    template = button_class(KEY).template
    for other, pattern in PINNED.items():
        matched = template.fullmatch(pattern.format(key=KEY)) is not None
        assert matched == (other is button_class), (button_class, pattern)
    for foreign in ("embargo:review:Severed Ties/s01e01", "embargo:review:severed-ties", "pager"):
        assert template.fullmatch(foreign) is None


def test_the_posts_buttons_as_sent() -> None:
    # The whole component payload, as posts sent before this code carry it.
    review = {"label": "Review", "style": 1, "emoji": {"id": None, "name": "\N{MEMO}"}}
    ending = {"label": "Ending explained", "style": 2, "emoji": {"id": None, "name": "\N{LOCK}"}}
    watched = {
        "label": "I've watched it",
        "style": 3,
        "emoji": {"id": None, "name": "\N{WHITE HEAVY CHECK MARK}"},
    }

    def button(action: str, look: dict[str, object]) -> dict[str, object]:
        return {"type": 2, "disabled": False, "custom_id": f"embargo:{action}:{KEY}", **look}

    assert release_view(KEY).to_components() == [
        {
            "type": 1,
            "components": [
                button("review", review),
                button("ending", ending),
                button("watched", watched),
            ],
        }
    ]
    assert ending_view(KEY).to_components() == [
        {"type": 1, "components": [button("ending", ending)]}
    ]
