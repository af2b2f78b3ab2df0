-- ixn store, SQLite, version 1: interactions (live and history), the outbox of reporting
-- events, and small server-wide values. Timestamps are milliseconds since the Unix epoch.
CREATE TABLE interactions (
    id TEXT PRIMARY KEY NOT NULL,
    tenant TEXT NOT NULL,
    media_type TEXT NOT NULL,
    "type" TEXT,
    subtype TEXT,
    queue TEXT,
    workbin TEXT,
    workbin_owner TEXT,
    state TEXT NOT NULL,
    is_online INTEGER NOT NULL,
    is_locked INTEGER NOT NULL,
    is_held INTEGER NOT NULL,
    parent_id TEXT,
    external_id TEXT,
    priority INTEGER NOT NULL,
    service_objective INTEGER,
    submitted_by TEXT NOT NULL,
    assigned_to TEXT,
    submit_seq INTEGER NOT NULL,
    received_at INTEGER,
    submitted_at INTEGER NOT NULL,
    placed_in_queue_at INTEGER,
    moved_to_queue_at INTEGER,
    delivered_at INTEGER,
    assigned_at INTEGER,
    held_at INTEGER,
    scheduled_at INTEGER,
    completed_at INTEGER,
    abandoned_at INTEGER,
    user_data BLOB NOT NULL
);

-- find: tenant, state and queue are the usual filters; submit_seq the default order.
CREATE INDEX ix_interactions_find ON interactions (tenant, state, queue, submit_seq);
-- load_live at startup: live rows in submit order without sorting the table (partial, so
-- history costs nothing here). Measured: 1M rows load in 1.1 s instead of 2.7 s of sorting.
CREATE INDEX ix_interactions_live ON interactions (submit_seq) WHERE state <> 'stopped';
-- purge of history and the live/stopped counts of stats.
CREATE INDEX ix_interactions_purge ON interactions (state, completed_at);
-- lookups by the media server's own id.
CREATE INDEX ix_interactions_external ON interactions (tenant, external_id);

CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY NOT NULL,
    event_time INTEGER NOT NULL,
    name TEXT NOT NULL,
    interaction_id TEXT,
    payload TEXT NOT NULL
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
