-- Servers Embargo was removed from: their settings and votes are kept until delete_at (a
-- re-invite deletes the row and so keeps everything), then deleted.
-- Portable SQL only. Times are INTEGER Unix seconds (UTC); Discord ids BIGINT.
CREATE TABLE departed_guilds (
    guild_id    BIGINT PRIMARY KEY,
    left_at     INTEGER NOT NULL,
    delete_at   INTEGER NOT NULL
);
-- The retention task reads the next deletion due.
CREATE INDEX departed_guilds_by_due ON departed_guilds (delete_at);
