-- Servers Embargo was removed from (PostgreSQL): as 008_departed_guilds.sqlite.sql, with times
-- as BIGINT Unix seconds.
CREATE TABLE departed_guilds (
    guild_id    BIGINT PRIMARY KEY,
    left_at     BIGINT NOT NULL,
    delete_at   BIGINT NOT NULL
);
-- The retention task reads the next deletion due.
CREATE INDEX departed_guilds_by_due ON departed_guilds (delete_at);
