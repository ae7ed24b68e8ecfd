-- Emailed-code challenges (signup verification, password reset, email change), the pending
-- action each one finishes, the current code of each, and the email outbox that carries the
-- codes and notices. Upstream's table names; types as in 0001 (uuid TEXT, times INTEGER unix
-- microseconds UTC, booleans INTEGER). A challenge, its pending row and its first email job are
-- written in one transaction; the worker writes the code when it sends it.

-- `opaque` (ours): a challenge that stands in for a real one where a real one would tell
-- whether an email is registered. It is counted like a real one but has no pending row, never
-- gets a code or an email, and can never be completed.
CREATE TABLE challenges (
    id            TEXT    NOT NULL,
    purpose       TEXT    NOT NULL
        CHECK (purpose IN ('signup', 'password_reset', 'email_change')),
    email         TEXT    NOT NULL,
    opaque        INTEGER NOT NULL CHECK (opaque IN (0, 1)),
    attempt_count INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    resend_count  INTEGER NOT NULL DEFAULT 0,
    max_resends   INTEGER NOT NULL,
    last_sent_at  INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    consumed_at   INTEGER,
    CONSTRAINT challenges_pkey PRIMARY KEY (id),
    -- The conditional updates count only up to the maximum; this catches a bug that would not.
    CONSTRAINT challenges_counts_check
        CHECK (attempt_count BETWEEN 0 AND max_attempts AND resend_count BETWEEN 0 AND max_resends)
) STRICT;

-- The purge deletes what expired or was consumed before a cut-off.
CREATE INDEX challenges_expires_at_idx ON challenges (expires_at);
CREATE INDEX challenges_consumed_at_idx ON challenges (consumed_at) WHERE consumed_at IS NOT NULL;

-- One code per challenge, replaced at every send (so a resend invalidates the previous code).
-- `code_hash` is the hex MAC of the code, never the code.
CREATE TABLE verification_codes (
    challenge_id TEXT    NOT NULL,
    code_hash    TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    CONSTRAINT verification_codes_pkey PRIMARY KEY (challenge_id),
    CONSTRAINT verification_codes_challenge_id_fkey
        FOREIGN KEY (challenge_id) REFERENCES challenges (id) ON DELETE CASCADE
) STRICT;

-- The pending actions, one table per purpose, each row going with its challenge. They hold
-- password hashes, so completing a challenge deletes its row. `user_id` has no foreign key:
-- a user deleted meanwhile makes the completion `NotFound` rather than changing the challenge.
CREATE TABLE pending_signup_actions (
    challenge_id  TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    CONSTRAINT pending_signup_actions_pkey PRIMARY KEY (challenge_id),
    CONSTRAINT pending_signup_actions_challenge_id_fkey
        FOREIGN KEY (challenge_id) REFERENCES challenges (id) ON DELETE CASCADE
) STRICT;

CREATE TABLE pending_password_resets (
    challenge_id  TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    CONSTRAINT pending_password_resets_pkey PRIMARY KEY (challenge_id),
    CONSTRAINT pending_password_resets_challenge_id_fkey
        FOREIGN KEY (challenge_id) REFERENCES challenges (id) ON DELETE CASCADE
) STRICT;

-- `session_id`: the session that asked, kept when the others are revoked; no foreign key, as
-- it may be gone by then (and then none is kept).
CREATE TABLE pending_email_changes (
    challenge_id TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    session_id   TEXT,
    old_email    TEXT NOT NULL,
    new_email    TEXT NOT NULL,
    CONSTRAINT pending_email_changes_pkey PRIMARY KEY (challenge_id),
    CONSTRAINT pending_email_changes_challenge_id_fkey
        FOREIGN KEY (challenge_id) REFERENCES challenges (id) ON DELETE CASCADE
) STRICT;

-- The email outbox, with the webhook outbox's life cycle (0004). `challenge_id` names the
-- challenge whose code the job carries (NULL for a notice); no foreign key, since a job may
-- outlive its purged challenge (the worker then finds no live challenge and sends nothing).
-- `template_data` is a JSON object kept as text, like the webhook payload.
CREATE TABLE email_jobs (
    id                    TEXT    NOT NULL,
    challenge_id          TEXT,
    to_email              TEXT    NOT NULL,
    template              TEXT    NOT NULL,
    template_data         TEXT    NOT NULL DEFAULT '{}',
    status                TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'sent', 'failed')),
    attempt_count         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at       INTEGER NOT NULL,
    processing_started_at INTEGER,
    last_error            TEXT,
    sent_at               INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    CONSTRAINT email_jobs_pkey PRIMARY KEY (id)
) STRICT;

CREATE INDEX email_jobs_due_idx ON email_jobs (next_attempt_at, created_at, id)
    WHERE status = 'pending';
CREATE INDEX email_jobs_processing_idx ON email_jobs (processing_started_at)
    WHERE status = 'processing';
CREATE INDEX email_jobs_status_updated_idx ON email_jobs (status, updated_at);
