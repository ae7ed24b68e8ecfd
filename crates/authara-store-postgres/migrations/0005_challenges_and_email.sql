-- Emailed-code challenges (signup verification, password reset, email change), the pending
-- action each one finishes, the current code of each, and the email outbox that carries the
-- codes and notices. Upstream's table names. A challenge, its pending row and its first email
-- job are written in one transaction; the worker writes the code when it sends it.

-- `opaque` (ours): a challenge that stands in for a real one where a real one would tell
-- whether an email is registered. It is counted like a real one but has no pending row, never
-- gets a code or an email, and can never be completed.
CREATE TABLE challenges (
    id            UUID        NOT NULL,
    purpose       TEXT        NOT NULL,
    email         TEXT        NOT NULL,
    opaque        BOOLEAN     NOT NULL,
    attempt_count INTEGER     NOT NULL DEFAULT 0,
    max_attempts  INTEGER     NOT NULL,
    resend_count  INTEGER     NOT NULL DEFAULT 0,
    max_resends   INTEGER     NOT NULL,
    last_sent_at  TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    consumed_at   TIMESTAMPTZ,
    CONSTRAINT challenges_pkey PRIMARY KEY (id),
    CONSTRAINT challenges_purpose_check
        CHECK (purpose IN ('signup', 'password_reset', 'email_change')),
    -- The conditional updates count only up to the maximum; this catches a bug that would not.
    CONSTRAINT challenges_counts_check
        CHECK (attempt_count BETWEEN 0 AND max_attempts AND resend_count BETWEEN 0 AND max_resends)
);

-- The purge deletes what expired or was consumed before a cut-off.
CREATE INDEX challenges_expires_at_idx ON challenges (expires_at);
CREATE INDEX challenges_consumed_at_idx ON challenges (consumed_at) WHERE consumed_at IS NOT NULL;

-- One code per challenge, replaced at every send (so a resend invalidates the previous code).
-- `code_hash` is the hex MAC of the code, never the code.
CREATE TABLE verification_codes (
    challenge_id UUID        NOT NULL,
    code_hash    TEXT        NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    CONSTRAINT verification_codes_pkey PRIMARY KEY (challenge_id),
    CONSTRAINT verification_codes_challenge_id_fkey
        FOREIGN KEY (challenge_id) REFERENCES challenges (id) ON DELETE CASCADE
);

-- The pending actions, one table per purpose, each row going with its challenge. They hold
-- password hashes, so completing a challenge deletes its row. `user_id` has no foreign key:
-- a user deleted meanwhile makes the completion `NotFound` rather than changing the challenge.
CREATE TABLE pending_signup_actions (
    challenge_id  UUID NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    CONSTRAINT pending_signup_actions_pkey PRIMARY KEY (challenge_id),
    CONSTRAINT pending_signup_actions_challenge_id_fkey
        FOREIGN KEY (challenge_id) REFERENCES challenges (id) ON DELETE CASCADE
);

CREATE TABLE pending_password_resets (
    challenge_id  UUID NOT NULL,
    user_id       UUID NOT NULL,
    password_hash TEXT NOT NULL,
    CONSTRAINT pending_password_resets_pkey PRIMARY KEY (challenge_id),
    CONSTRAINT pending_password_resets_challenge_id_fkey
        FOREIGN KEY (challenge_id) REFERENCES challenges (id) ON DELETE CASCADE
);

-- `session_id`: the session that asked, kept when the others are revoked; no foreign key, as
-- it may be gone by then (and then none is kept).
CREATE TABLE pending_email_changes (
    challenge_id UUID NOT NULL,
    user_id      UUID NOT NULL,
    session_id   UUID,
    old_email    TEXT NOT NULL,
    new_email    TEXT NOT NULL,
    CONSTRAINT pending_email_changes_pkey PRIMARY KEY (challenge_id),
    CONSTRAINT pending_email_changes_challenge_id_fkey
        FOREIGN KEY (challenge_id) REFERENCES challenges (id) ON DELETE CASCADE
);

-- The email outbox, with the webhook outbox's life cycle (0004). `challenge_id` names the
-- challenge whose code the job carries (NULL for a notice); no foreign key, since a job may
-- outlive its purged challenge (the worker then finds no live challenge and sends nothing).
-- `template_data` is a JSON object kept as text, like the webhook payload.
CREATE TABLE email_jobs (
    id                    UUID        NOT NULL,
    challenge_id          UUID,
    to_email              TEXT        NOT NULL,
    template              TEXT        NOT NULL,
    template_data         TEXT        NOT NULL DEFAULT '{}',
    status                TEXT        NOT NULL DEFAULT 'pending',
    attempt_count         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at       TIMESTAMPTZ NOT NULL,
    processing_started_at TIMESTAMPTZ,
    last_error            TEXT,
    sent_at               TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    CONSTRAINT email_jobs_pkey PRIMARY KEY (id),
    CONSTRAINT email_jobs_status_check
        CHECK (status IN ('pending', 'processing', 'sent', 'failed'))
);

CREATE INDEX email_jobs_due_idx ON email_jobs (next_attempt_at, created_at, id)
    WHERE status = 'pending';
CREATE INDEX email_jobs_processing_idx ON email_jobs (processing_started_at)
    WHERE status = 'processing';
CREATE INDEX email_jobs_status_updated_idx ON email_jobs (status, updated_at);
