-- Several accounts on one site (fediverse.accounts, FEDERATION.md §13).
-- Followers are kept per account: one remote actor may follow the main account and a topic
-- account, so the key becomes (account, actor_id). The main account is ''.
CREATE TABLE followers_by_account (
    account TEXT NOT NULL DEFAULT '',
    actor_id TEXT NOT NULL,
    inbox TEXT NOT NULL,
    shared_inbox TEXT,
    handle TEXT,
    follow_activity_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('accepted', 'pending')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account, actor_id)
);
INSERT INTO followers_by_account
    (account, actor_id, inbox, shared_inbox, handle, follow_activity_id, state, created_at,
     updated_at)
    SELECT '', actor_id, inbox, shared_inbox, handle, follow_activity_id, state, created_at,
           updated_at
    FROM followers;
DROP TABLE followers;
ALTER TABLE followers_by_account RENAME TO followers;
CREATE INDEX followers_state ON followers (account, state, actor_id);
CREATE INDEX followers_follow_activity ON followers (follow_activity_id);
CREATE INDEX followers_actor ON followers (actor_id);

-- Followers who left an account after its Move: they re-followed the target (Mastodon
-- follows the target, then undoes the old follow, follow_migration_service.rb).
CREATE TABLE moved_followers (
    account TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    target TEXT NOT NULL,
    moved_at TEXT NOT NULL,
    PRIMARY KEY (account, actor_id)
);

-- Each delivery is signed by the account that sent it (the key id), and a rotation's
-- Update by the old key (its fingerprint); NULL: the main account's current key.
ALTER TABLE deliveries ADD COLUMN signed_by TEXT;
ALTER TABLE deliveries ADD COLUMN signing_key TEXT;
CREATE INDEX deliveries_signing_key ON deliveries (signing_key, state);
