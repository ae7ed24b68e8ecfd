-- The outbox of domain events (delivered as webhooks) and the audit log. Both are written in the
-- same transaction as the change they describe.

-- Upstream's table name. `payload` is the serialised envelope, kept as text so that every
-- delivery attempt sends (and signs) the same bytes.
CREATE TABLE webhook_events (
    id                    UUID        NOT NULL,
    event_type            TEXT        NOT NULL,
    payload               TEXT        NOT NULL,
    status                TEXT        NOT NULL DEFAULT 'pending',
    attempt_count         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at       TIMESTAMPTZ NOT NULL,
    processing_started_at TIMESTAMPTZ,
    last_error            TEXT,
    delivered_at          TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    CONSTRAINT webhook_events_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_events_status_check
        CHECK (status IN ('pending', 'processing', 'delivered', 'failed'))
);

CREATE INDEX webhook_events_due_idx ON webhook_events (next_attempt_at, created_at, id)
    WHERE status = 'pending';
CREATE INDEX webhook_events_processing_idx ON webhook_events (processing_started_at)
    WHERE status = 'processing';
CREATE INDEX webhook_events_status_updated_idx ON webhook_events (status, updated_at);

-- No foreign keys: an audit row outlives the users it names.
CREATE TABLE audit_events (
    id             UUID        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    action         TEXT        NOT NULL,
    actor_user_id  UUID,
    target_user_id UUID,
    target_email   TEXT,
    metadata       TEXT        NOT NULL DEFAULT '{}',
    ip             TEXT,
    user_agent     TEXT,
    request_id     TEXT,
    CONSTRAINT audit_events_pkey PRIMARY KEY (id)
);

CREATE INDEX audit_events_created_at_idx ON audit_events (created_at);
CREATE INDEX audit_events_target_user_idx ON audit_events (target_user_id, created_at);
