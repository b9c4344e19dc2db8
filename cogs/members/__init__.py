"""Members' spoilers: "Hide as spoiler" for any message, and the optional guard that flags or
hides an active episode's spoiler terms. The decisions and texts are in ``bot.hiding``,
``bot.hiding_messages`` and ``bot.spoilers.terms``; this package is the Discord layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.members._guard import Guard
from cogs.members._menu import Members
from cogs.members._repost import Reposter

if TYPE_CHECKING:
    from bot.client import EmbargoBot


async def setup(bot: EmbargoBot) -> None:
    reposter = Reposter(bot)
    await bot.add_cog(Members(bot, reposter))
    await bot.add_cog(Guard(bot, reposter))
