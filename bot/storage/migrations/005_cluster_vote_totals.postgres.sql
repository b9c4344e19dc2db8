-- Vote totals keyed in the order rankings read them (PostgreSQL): (guild_id, show_slug,
-- episode_key), as 005_cluster_vote_totals.sqlite.sql does with WITHOUT ROWID tables. Here the
-- primary key index alone changes; the (guild_id, show_slug) index it replaces goes.

ALTER TABLE vote_totals DROP CONSTRAINT vote_totals_pkey;
ALTER TABLE vote_totals ADD PRIMARY KEY (guild_id, show_slug, episode_key);
DROP INDEX vote_totals_by_show;

ALTER TABLE vote_totals_global DROP CONSTRAINT vote_totals_global_pkey;
ALTER TABLE vote_totals_global ADD PRIMARY KEY (show_slug, episode_key);
DROP INDEX vote_totals_global_by_show;
