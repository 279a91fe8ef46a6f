-- Conversations shown on the blog (docs/federation.md, "Replies and moderation").
-- `hidden`: the author hid it (it keeps its state, so approving shows it again).
-- `public`: addressed to the public collection; followers-only and direct replies are kept
-- for the author but never shown. `depth`: 0 for a reply to a post, n+1 for a reply to a
-- reply at depth n. `summary`: the content warning, as plain text.
ALTER TABLE interactions ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1));
ALTER TABLE interactions ADD COLUMN public INTEGER NOT NULL DEFAULT 1 CHECK (public IN (0, 1));
ALTER TABLE interactions ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE interactions ADD COLUMN summary TEXT;
CREATE INDEX interactions_shown ON interactions (state, hidden, public);
CREATE INDEX interactions_in_reply_to ON interactions (in_reply_to);

-- What the blog shows of an account that liked, boosted or replied: its name, handle, profile
-- link and avatar (fetched once, checked, kept here as base64 so the blog serves it itself).
CREATE TABLE actor_profiles (
    actor_id TEXT PRIMARY KEY,
    name TEXT,
    handle TEXT,
    url TEXT,
    avatar_url TEXT,
    avatar_type TEXT,
    avatar_data TEXT,
    avatar_digest TEXT,
    fetched_at TEXT NOT NULL
);
CREATE INDEX actor_profiles_avatar ON actor_profiles (avatar_digest);
