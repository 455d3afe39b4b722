-- Issue 16 (scale on Ray): each cluster's Warning-event watch (kubernaut.processing.events) is owned by one
-- processor replica at a time. The owner holds a lease it renews; an expired lease is anyone's to take, so a
-- crashed replica's clusters are taken over once its lease has run out (kubernaut/storage/watch_leases.py).
CREATE TABLE IF NOT EXISTS event_watch_leases (
    cluster     TEXT PRIMARY KEY,
    holder      TEXT,
    expires_at  TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    acquired_at TIMESTAMPTZ
);
-- The replicas sharing the watches, one heartbeat row each: how many there are decides each one's share.
CREATE TABLE IF NOT EXISTS event_watch_replicas (
    holder     TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
