-- The outbox of domain events (delivered as webhooks) and the audit log. Both are written in the
-- same transaction as the change they describe. Types as in 0001 (uuid TEXT, times INTEGER
-- unix microseconds UTC).

CREATE TABLE webhook_events (
    id                    TEXT    NOT NULL,
    event_type            TEXT    NOT NULL,
    payload               TEXT    NOT NULL,
    status                TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'delivered', 'failed')),
    attempt_count         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at       INTEGER NOT NULL,
    processing_started_at INTEGER,
    last_error            TEXT,
    delivered_at          INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    CONSTRAINT webhook_events_pkey PRIMARY KEY (id)
) STRICT;

CREATE INDEX webhook_events_due_idx ON webhook_events (next_attempt_at, created_at, id)
    WHERE status = 'pending';
CREATE INDEX webhook_events_processing_idx ON webhook_events (processing_started_at)
    WHERE status = 'processing';
CREATE INDEX webhook_events_status_updated_idx ON webhook_events (status, updated_at);

CREATE TABLE audit_events (
    id             TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    action         TEXT    NOT NULL,
    actor_user_id  TEXT,
    target_user_id TEXT,
    target_email   TEXT,
    metadata       TEXT    NOT NULL DEFAULT '{}',
    ip             TEXT,
    user_agent     TEXT,
    request_id     TEXT,
    CONSTRAINT audit_events_pkey PRIMARY KEY (id)
) STRICT;

CREATE INDEX audit_events_created_at_idx ON audit_events (created_at);
CREATE INDEX audit_events_target_user_idx ON audit_events (target_user_id, created_at);
