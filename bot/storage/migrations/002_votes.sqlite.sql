-- Community votes and their running totals.
-- Portable SQL only (no SQLite-only types or syntax) so a PostgreSQL backend can reuse it.
-- Times are stored as INTEGER Unix seconds (UTC); Discord ids as BIGINT.

-- One row per member, server and episode: voting again replaces the score.
-- Episodes are referred to by their stable key (no FK), so reloading content never touches
-- anyone's vote.
CREATE TABLE votes (
    guild_id    BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    episode_key TEXT NOT NULL,         -- 'black-mirror/s07e06'
    show_slug   TEXT NOT NULL,         -- the key's prefix, kept for per-show reads
    score       INTEGER NOT NULL CHECK (score BETWEEN 1 AND 10),
    voted_at    INTEGER NOT NULL,      -- when the current score was given
    PRIMARY KEY (guild_id, user_id, episode_key)
);
CREATE INDEX votes_by_member_show ON votes (guild_id, user_id, show_slug);

-- Running totals per server and episode, changed in the same transaction as every vote, so
-- rankings read a handful of rows and never scan votes. A row exists only while the
-- episode has at least one vote in that server.
CREATE TABLE vote_totals (
    guild_id    BIGINT NOT NULL,
    episode_key TEXT NOT NULL,
    show_slug   TEXT NOT NULL,
    vote_count  INTEGER NOT NULL,
    score_sum   INTEGER NOT NULL,
    PRIMARY KEY (guild_id, episode_key)
);
CREATE INDEX vote_totals_by_show ON vote_totals (guild_id, show_slug);

-- The same totals pooled over every server (the rankings' global scope).
CREATE TABLE vote_totals_global (
    episode_key TEXT PRIMARY KEY,
    show_slug   TEXT NOT NULL,
    vote_count  INTEGER NOT NULL,
    score_sum   INTEGER NOT NULL
);
CREATE INDEX vote_totals_global_by_show ON vote_totals_global (show_slug);
