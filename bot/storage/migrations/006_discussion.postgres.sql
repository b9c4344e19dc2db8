-- Episode discussion (PostgreSQL): as 006_discussion.sqlite.sql, with times as BIGINT Unix
-- seconds and text compared by code point.

-- A server's default announce channel (one row per server that set one).
CREATE TABLE announce_channels (
    guild_id      BIGINT PRIMARY KEY,
    channel_id    BIGINT NOT NULL,
    ping_role_id  BIGINT,                -- the one role a release post may mention
    set_at        BIGINT NOT NULL       -- release posts are made for episodes released since
);

-- Per-show overrides of the default: another channel, or announcing off (channel_id NULL).
CREATE TABLE announce_shows (
    guild_id      BIGINT NOT NULL,
    show_slug     TEXT COLLATE "C" NOT NULL,
    channel_id    BIGINT,                -- NULL = no posts for this show
    ping_role_id  BIGINT,
    set_at        BIGINT NOT NULL,
    PRIMARY KEY (guild_id, show_slug)
);

-- At most one post per server, episode and kind, whatever restarts happen. Keyed episode
-- first: the scheduler reads every server's rows for the few episodes falling due.
CREATE TABLE discussion_posts (
    episode_key   TEXT COLLATE "C" NOT NULL,
    guild_id      BIGINT NOT NULL,
    kind          TEXT COLLATE "C" NOT NULL CHECK (kind IN ('release', 'window-closed')),
    state         TEXT COLLATE "C" NOT NULL CHECK (state IN ('posted', 'skipped', 'failed')),
    channel_id    BIGINT,
    message_id    BIGINT,
    thread_id     BIGINT,                -- release posts: the discussion thread, once opened
    attempts      INTEGER NOT NULL,
    last_error    TEXT COLLATE "C",                  -- why the last try failed (or the thread could not open)
    due_at        BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (episode_key, guild_id, kind)
);
-- /embargo settings shows a server's latest post; the scheduler retries failed ones.
CREATE INDEX discussion_posts_by_guild ON discussion_posts (guild_id, updated_at);
CREATE INDEX discussion_posts_by_state ON discussion_posts (state, attempts);

-- Threads Embargo opened for an episode's discussion: spoilers are welcome in them.
CREATE TABLE discussion_threads (
    thread_id     BIGINT PRIMARY KEY,
    guild_id      BIGINT NOT NULL,
    episode_key   TEXT COLLATE "C" NOT NULL,
    parent_id     BIGINT NOT NULL,       -- the channel the release post is in
    created_at    BIGINT NOT NULL
);
