-- Core schema: content loaded from data/, per-server spoiler settings, bot metadata.
-- Portable SQL only (no SQLite-only types or syntax) so a PostgreSQL backend can reuse it.
-- Times are stored as INTEGER Unix seconds (UTC).

CREATE TABLE content_files (
    path        TEXT PRIMARY KEY,      -- relative to the content directory, '/' separated
    sha256      TEXT NOT NULL,
    loaded_at   INTEGER NOT NULL
);

CREATE TABLE shows (
    slug        TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    network     TEXT NOT NULL,
    timezone    TEXT NOT NULL
);

CREATE TABLE episodes (
    episode_key TEXT PRIMARY KEY,      -- 'black-mirror/s07e06'; votes refer to this, not a row id
    show_slug   TEXT NOT NULL REFERENCES shows (slug) ON DELETE CASCADE,
    season      INTEGER NOT NULL,
    number      INTEGER NOT NULL,
    title       TEXT NOT NULL,
    release_at  INTEGER NOT NULL,
    aliases     TEXT NOT NULL DEFAULT '',  -- newline-separated
    UNIQUE (show_slug, season, number)
);

CREATE TABLE reviews (
    episode_key TEXT PRIMARY KEY,      -- no FK: a review file may be loaded before its show file
    show_slug   TEXT NOT NULL,
    rating      REAL NOT NULL,
    verdict     TEXT NOT NULL,
    author      TEXT NOT NULL,
    published   TEXT NOT NULL,         -- ISO date
    body        TEXT NOT NULL,
    ending      TEXT                   -- spoiler content; NULL when the review has none
);
CREATE INDEX reviews_by_show ON reviews (show_slug);

CREATE TABLE critic_rankings (
    show_slug   TEXT NOT NULL,
    position    INTEGER NOT NULL,      -- 1 = best
    episode_code TEXT NOT NULL,
    author      TEXT NOT NULL,
    PRIMARY KEY (show_slug, position)
);

-- One row per server that changed anything; defaults live in bot/guild_settings.py.
CREATE TABLE guild_settings (
    guild_id          BIGINT PRIMARY KEY,
    spoiler_window_s  BIGINT,          -- NULL = forever; 0 = off
    spoiler_mode      TEXT NOT NULL,
    min_votes         INTEGER NOT NULL,  -- m of the weighted community score
    min_member_days   INTEGER NOT NULL,  -- membership age required before voting
    updated_at        INTEGER NOT NULL
);

CREATE TABLE show_windows (
    guild_id          BIGINT NOT NULL,
    show_slug         TEXT NOT NULL,
    spoiler_window_s  BIGINT,          -- NULL = forever; 0 = off
    PRIMARY KEY (guild_id, show_slug)
);

CREATE TABLE spoiler_channels (
    guild_id    BIGINT NOT NULL,
    channel_id  BIGINT NOT NULL,       -- a channel the moderators marked spoilers-ok
    PRIMARY KEY (guild_id, channel_id)
);

CREATE TABLE bot_meta (
    meta_key    TEXT PRIMARY KEY,
    meta_value  TEXT NOT NULL
);
