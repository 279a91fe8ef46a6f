-- Deliveries on other channels than ActivityPub (a Matrix room), in the same queue with the
-- same leases and retries; and the posts announced there, with the id the other side gave
-- each announcement, so that an edit or a removal of the post can target it.
-- 'activitypub' is ACTIVITYPUB in store/base.py.

ALTER TABLE deliveries ADD COLUMN channel TEXT NOT NULL DEFAULT 'activitypub';

CREATE TABLE announcements (
    id TEXT PRIMARY KEY,
    destination TEXT NOT NULL,
    object_id TEXT NOT NULL,
    remote_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    removed_at TEXT
);
CREATE INDEX announcements_object ON announcements (destination, object_id, created_at);
