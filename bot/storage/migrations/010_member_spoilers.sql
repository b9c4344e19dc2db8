-- Members' spoilers: who may hide a message as a spoiler besides moderators and its author,
-- where hides are logged, the guard's mode and the channels it ignores, and the webhook
-- Embargo reposts through in each channel (threads use their parent's).
-- Portable SQL only. Discord ids BIGINT.
CREATE TABLE member_spoiler_settings (
    guild_id        BIGINT PRIMARY KEY,
    helper_role_id  BIGINT,
    log_channel_id  BIGINT,
    guard_mode      TEXT NOT NULL DEFAULT 'off'
);
CREATE TABLE guard_ignored_channels (
    guild_id    BIGINT NOT NULL,
    channel_id  BIGINT NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);
CREATE TABLE spoiler_webhooks (
    channel_id  BIGINT PRIMARY KEY,
    guild_id    BIGINT NOT NULL,
    webhook_id  BIGINT NOT NULL,
    token       TEXT NOT NULL
);
CREATE INDEX spoiler_webhooks_by_guild ON spoiler_webhooks (guild_id);
-- A review's spoiler_terms (a JSON list of phrases; NULL: none). Review files loaded before
-- this column existed are parsed again on the next sync, so terms already written are loaded
-- even though their bytes did not change.
ALTER TABLE reviews ADD COLUMN spoiler_terms TEXT;
UPDATE content_files SET sha256 = '' WHERE path LIKE 'reviews/%';
