"""Federation: ActivityPub signatures, keys, fetching, inbox, delivery and the store."""
