-- Core schema (PostgreSQL): content loaded from data/, per-server spoiler settings, bot metadata.
-- As 001_core.sqlite.sql, with times as BIGINT Unix seconds (UTC), ratings as DOUBLE PRECISION
-- (REAL is single precision here), and text compared by code point (COLLATE "C"), as SQLite
-- does, so every ORDER BY gives the same order on both backends.

CREATE TABLE content_files (
    path        TEXT COLLATE "C" PRIMARY KEY,      -- relative to the content directory, '/' separated
    sha256      TEXT COLLATE "C" NOT NULL,
    loaded_at   BIGINT NOT NULL
);

CREATE TABLE shows (
    slug        TEXT COLLATE "C" PRIMARY KEY,
    title       TEXT COLLATE "C" NOT NULL,
    network     TEXT COLLATE "C" NOT NULL,
    timezone    TEXT COLLATE "C" NOT NULL
);

CREATE TABLE episodes (
    episode_key TEXT COLLATE "C" PRIMARY KEY,      -- 'black-mirror/s07e06'; votes refer to this, not a row id
    show_slug   TEXT COLLATE "C" NOT NULL REFERENCES shows (slug) ON DELETE CASCADE,
    season      INTEGER NOT NULL,
    number      INTEGER NOT NULL,
    title       TEXT COLLATE "C" NOT NULL,
    release_at  BIGINT NOT NULL,
    aliases     TEXT COLLATE "C" NOT NULL DEFAULT '',  -- newline-separated
    UNIQUE (show_slug, season, number)
);

CREATE TABLE reviews (
    episode_key TEXT COLLATE "C" PRIMARY KEY,      -- no FK: a review file may be loaded before its show file
    show_slug   TEXT COLLATE "C" NOT NULL,
    rating      DOUBLE PRECISION NOT NULL,
    verdict     TEXT COLLATE "C" NOT NULL,
    author      TEXT COLLATE "C" NOT NULL,
    published   TEXT COLLATE "C" NOT NULL,         -- ISO date
    body        TEXT COLLATE "C" NOT NULL,
    ending      TEXT COLLATE "C"                   -- spoiler content; NULL when the review has none
);
CREATE INDEX reviews_by_show ON reviews (show_slug);

CREATE TABLE critic_rankings (
    show_slug   TEXT COLLATE "C" NOT NULL,
    position    INTEGER NOT NULL,      -- 1 = best
    episode_code TEXT COLLATE "C" NOT NULL,
    author      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (show_slug, position)
);

-- One row per server that changed anything; defaults live in bot/guild_settings.py.
CREATE TABLE guild_settings (
    guild_id          BIGINT PRIMARY KEY,
    spoiler_window_s  BIGINT,          -- NULL = forever; 0 = off
    spoiler_mode      TEXT COLLATE "C" NOT NULL,
    min_votes         INTEGER NOT NULL,  -- m of the weighted community score
    min_member_days   INTEGER NOT NULL,  -- membership age required before voting
    updated_at        BIGINT NOT NULL
);

CREATE TABLE show_windows (
    guild_id          BIGINT NOT NULL,
    show_slug         TEXT COLLATE "C" NOT NULL,
    spoiler_window_s  BIGINT,          -- NULL = forever; 0 = off
    PRIMARY KEY (guild_id, show_slug)
);

CREATE TABLE spoiler_channels (
    guild_id    BIGINT NOT NULL,
    channel_id  BIGINT NOT NULL,       -- a channel the moderators marked spoilers-ok
    PRIMARY KEY (guild_id, channel_id)
);

CREATE TABLE bot_meta (
    meta_key    TEXT COLLATE "C" PRIMARY KEY,
    meta_value  TEXT COLLATE "C" NOT NULL
);
