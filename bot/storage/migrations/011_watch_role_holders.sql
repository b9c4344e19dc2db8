-- Who was given a watch role by Embargo. When a new episode comes out, the members who held
-- a role for its show are no longer complete and lose it; without the privileged Server
-- Members intent Embargo can't list a role's members, so it keeps its own list. A row is
-- written after Discord accepted the grant and deleted after the removal; it goes with the
-- member (/forget-me) and with the server.
CREATE TABLE watch_role_holders (
    guild_id    BIGINT NOT NULL,
    role_id     BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    PRIMARY KEY (guild_id, role_id, user_id)
);
-- /forget-me takes back a member's roles in every server before deleting these rows.
CREATE INDEX watch_role_holders_by_user ON watch_role_holders (user_id);
