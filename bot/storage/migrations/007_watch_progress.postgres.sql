-- Watch progress and watch roles (PostgreSQL): as 007_watch_progress.sqlite.sql, with times as
-- BIGINT Unix seconds and text compared by code point; no WITHOUT ROWID (a PostgreSQL table is
-- a heap whatever its key).

-- One row per member and watched episode. Keyed (and stored) member first, then show, so a
-- member's whole progress and their progress in one show are each one range of one b-tree.
-- Episodes are referred to by their stable key (no FK): reloading content never touches it.
CREATE TABLE watched_episodes (
    user_id     BIGINT NOT NULL,
    show_slug   TEXT COLLATE "C" NOT NULL,         -- the key's prefix
    episode_key TEXT COLLATE "C" NOT NULL,         -- 'black-mirror/s07e06'
    watched_at  BIGINT NOT NULL,      -- when the member marked it
    PRIMARY KEY (user_id, show_slug, episode_key)
);

-- A server's role for members who have watched every released episode of a show (season -1)
-- or of one season of it (0 = the specials). A role marks one target per server.
CREATE TABLE watch_roles (
    guild_id    BIGINT NOT NULL,
    show_slug   TEXT COLLATE "C" NOT NULL,
    season      INTEGER NOT NULL,      -- -1: the whole show
    role_id     BIGINT NOT NULL,
    PRIMARY KEY (guild_id, show_slug, season)
);
CREATE UNIQUE INDEX watch_roles_by_role ON watch_roles (guild_id, role_id);
-- Granting roles after a member's change in a DM looks up every server's roles for the show.
CREATE INDEX watch_roles_by_show ON watch_roles (show_slug);

-- The last time granting or removing a watch role failed in a server, for /embargo settings.
-- No member is recorded: only which role, what went wrong and when.
CREATE TABLE watch_role_failures (
    guild_id    BIGINT PRIMARY KEY,
    role_id     BIGINT NOT NULL,
    problem     TEXT COLLATE "C" NOT NULL,         -- a RoleSyncProblem value
    failed_at   BIGINT NOT NULL
);
