-- No query uses votes_by_member_show: /myvotes reads by the primary key (guild_id, user_id, ...),
-- which also gives its order. The index only cost every vote an extra B-tree write.
DROP INDEX votes_by_member_show;
