"""Reading what storage holds, for tests: the product has no per-vote getter (nothing needs one)."""

from __future__ import annotations

from bot.storage import Storage

VOTE_SCORE = "SELECT score FROM votes WHERE guild_id = ? AND user_id = ? AND episode_key = ?"


async def stored_score(
    storage: Storage, guild_id: int, user_id: int, episode_key: str
) -> int | None:
    rows = await storage.db.read(VOTE_SCORE, (guild_id, user_id, episode_key))
    return int(rows[0][0]) if rows else None
