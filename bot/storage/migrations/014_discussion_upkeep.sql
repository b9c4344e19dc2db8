-- Forum posts the scheduler started to make. A forum post takes no message nonce, so a try
-- that may have made one before the bot stopped looks for it before making another; the row
-- goes when the post is recorded in discussion_posts.
-- Portable SQL only. Times are INTEGER Unix seconds (UTC); Discord ids BIGINT.
CREATE TABLE forum_posts_started (
    episode_key   TEXT NOT NULL,
    guild_id      BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    channel_id    BIGINT NOT NULL,       -- the forum
    started_at    INTEGER NOT NULL,
    PRIMARY KEY (episode_key, guild_id, kind)
);

-- Per server: episodes released before released_before are done with, their rows in
-- discussion_posts pruned; the scheduler never posts for them again.
CREATE TABLE discussion_pruned (
    guild_id         BIGINT PRIMARY KEY,
    released_before  INTEGER NOT NULL
);
