-- The federation store: followers, caches, inbox records and the delivery queue.
-- Portable SQL (SQLite and PostgreSQL): text ids, no rowid/AUTOINCREMENT, booleans as 0/1,
-- and every timestamp as UTC ISO-8601 text 'YYYY-MM-DDTHH:MM:SS.ffffffZ' so text order is time order.
-- Keep literals free of semicolons and question marks: statements are split on ';' and the
-- PostgreSQL backend rewrites '?' placeholders.

CREATE TABLE followers (
    actor_id TEXT PRIMARY KEY,
    inbox TEXT NOT NULL,
    shared_inbox TEXT,
    handle TEXT,
    follow_activity_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('accepted', 'pending')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX followers_state ON followers (state, actor_id);
CREATE INDEX followers_follow_activity ON followers (follow_activity_id);

CREATE TABLE remote_keys (
    key_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    fetched_at TEXT NOT NULL
);

CREATE TABLE remote_actors (
    actor_id TEXT PRIMARY KEY,
    inbox TEXT NOT NULL,
    shared_inbox TEXT,
    handle TEXT,
    fetched_at TEXT NOT NULL
);

CREATE TABLE seen_activities (
    id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE INDEX seen_activities_seen_at ON seen_activities (seen_at);

CREATE TABLE blocks (
    kind TEXT NOT NULL CHECK (kind IN ('actor', 'domain')),
    value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);

CREATE TABLE interactions (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('like', 'announce', 'reply')),
    actor_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    content_html TEXT,
    url TEXT,
    in_reply_to TEXT,
    state TEXT NOT NULL CHECK (state IN ('approved', 'pending')),
    published TEXT,
    updated TEXT,
    raw_json TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX interactions_object ON interactions (object_id, kind, state);
CREATE INDEX interactions_actor ON interactions (actor_id);
-- One like and one boost per actor and post, whatever ids the remote server gives them
-- (FEDERATION.md §7).
CREATE UNIQUE INDEX interactions_one_reaction ON interactions (actor_id, object_id, kind)
    WHERE kind IN ('like', 'announce');

CREATE TABLE flags (
    id TEXT PRIMARY KEY,
    actor_id TEXT NOT NULL,
    content TEXT,
    object_ids TEXT NOT NULL,
    received_at TEXT NOT NULL,
    raw_json TEXT
);
CREATE INDEX flags_received_at ON flags (received_at);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    activity_id TEXT NOT NULL,
    inbox_url TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    last_status INTEGER,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (activity_id, inbox_url)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);

CREATE TABLE hosts (
    host TEXT PRIMARY KEY,
    unavailable INTEGER NOT NULL DEFAULT 0 CHECK (unavailable IN (0, 1)),
    last_success_at TEXT,
    last_failure_at TEXT
);

-- Distinct UTC days with a failed delivery, as Mastodon's DeliveryFailureTracker counts them.
CREATE TABLE host_failure_days (
    host TEXT NOT NULL REFERENCES hosts (host) ON DELETE CASCADE,
    day TEXT NOT NULL,
    PRIMARY KEY (host, day)
);

CREATE TABLE published_objects (
    object_id TEXT PRIMARY KEY,
    uid TEXT NOT NULL,
    version TEXT NOT NULL,
    updated TEXT,
    state TEXT NOT NULL CHECK (state IN ('live', 'deleted')),
    first_published_at TEXT NOT NULL,
    last_delivered_at TEXT
);
