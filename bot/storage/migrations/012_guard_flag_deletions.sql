-- The guard's flag replies waiting to be deleted, so that a restart between a flag and its
-- deletion still deletes it: each row goes once Discord deleted the reply (or someone had).
-- Portable SQL only. Times are INTEGER Unix seconds (UTC); Discord ids BIGINT.
CREATE TABLE guard_flag_deletions (
    message_id  BIGINT PRIMARY KEY,
    channel_id  BIGINT NOT NULL,
    guild_id    BIGINT NOT NULL,
    delete_at   INTEGER NOT NULL
);
-- The guard reads the next deletion due.
CREATE INDEX guard_flag_deletions_by_due ON guard_flag_deletions (delete_at);
