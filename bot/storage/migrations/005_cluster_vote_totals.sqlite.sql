-- Vote totals stored in the order rankings read them. /rankings and /vote read one show's
-- totals in one server (or pooled): with a rowid table and a (guild_id, show_slug) index that
-- was an index range plus one table lookup per episode, 170 us for a 100-episode show. Keyed
-- (and, WITHOUT ROWID, stored) by (guild_id, show_slug, episode_key) it is one range of one
-- b-tree, and each vote updates one b-tree instead of a table and two indexes. show_slug is
-- derived from episode_key, so the key is exactly as unique as (guild_id, episode_key) was.
-- WITHOUT ROWID is SQLite's spelling of a clustered primary key; PostgreSQL needs none.

CREATE TABLE vote_totals_clustered (
    guild_id    BIGINT NOT NULL,
    show_slug   TEXT NOT NULL,
    episode_key TEXT NOT NULL,
    vote_count  INTEGER NOT NULL,
    score_sum   INTEGER NOT NULL,
    PRIMARY KEY (guild_id, show_slug, episode_key)
) WITHOUT ROWID;

INSERT INTO vote_totals_clustered (guild_id, show_slug, episode_key, vote_count, score_sum)
SELECT guild_id, show_slug, episode_key, vote_count, score_sum FROM vote_totals;

DROP TABLE vote_totals;

ALTER TABLE vote_totals_clustered RENAME TO vote_totals;

CREATE TABLE vote_totals_global_clustered (
    show_slug   TEXT NOT NULL,
    episode_key TEXT NOT NULL,
    vote_count  INTEGER NOT NULL,
    score_sum   INTEGER NOT NULL,
    PRIMARY KEY (show_slug, episode_key)
) WITHOUT ROWID;

INSERT INTO vote_totals_global_clustered (show_slug, episode_key, vote_count, score_sum)
SELECT show_slug, episode_key, vote_count, score_sum FROM vote_totals_global;

DROP TABLE vote_totals_global;

ALTER TABLE vote_totals_global_clustered RENAME TO vote_totals_global;
