-- The ActivityStreams type of each published object (Note or Article), so that a Delete
-- names the type the object really had in its Tombstone's formerType. Rows from before this
-- migration were published as the default type, Note.
ALTER TABLE published_objects ADD COLUMN object_type TEXT NOT NULL DEFAULT 'Note'
