-- Invitations to join an organization (upstream's table name); types as in 0001, JSON as TEXT.
-- The token is never stored, only its SHA-256; the status is derived from the timestamps, so
-- nothing has to flip a column when an invitation expires.

CREATE TABLE organization_invitations (
    id                  TEXT    NOT NULL,
    organization_id     TEXT    NOT NULL,
    email               TEXT    NOT NULL,
    role                TEXT    NOT NULL,
    token_hash          TEXT    NOT NULL,
    metadata            TEXT    NOT NULL DEFAULT '{}',
    invited_by_user_id  TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    accepted_at         INTEGER,
    accepted_by_user_id TEXT,
    revoked_at          INTEGER,
    revoked_by_user_id  TEXT,
    CONSTRAINT organization_invitations_pkey PRIMARY KEY (id),
    CONSTRAINT organization_invitations_token_hash_key UNIQUE (token_hash),
    -- Owners are not invited: ownership is transferred.
    CONSTRAINT organization_invitations_role_check CHECK (role IN ('admin', 'member')),
    CONSTRAINT organization_invitations_metadata_check
        CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    CONSTRAINT organization_invitations_accepted_or_revoked_check
        CHECK (accepted_at IS NULL OR revoked_at IS NULL),
    CONSTRAINT organization_invitations_organization_id_fkey
        FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE,
    -- The users columns outlive their users: the invitation's history stays.
    CONSTRAINT organization_invitations_invited_by_user_id_fkey
        FOREIGN KEY (invited_by_user_id) REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT organization_invitations_accepted_by_user_id_fkey
        FOREIGN KEY (accepted_by_user_id) REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT organization_invitations_revoked_by_user_id_fkey
        FOREIGN KEY (revoked_by_user_id) REFERENCES users (id) ON DELETE SET NULL
) STRICT;

-- At most one active (neither accepted nor revoked, possibly expired) invitation per
-- organization and email. SQLite reports a violation by the index's name ("UNIQUE constraint
-- failed: index 'organization_invitations_active_key'"), which the store maps to "already
-- pending". lower() is ASCII-only here; emails are stored normalised.
CREATE UNIQUE INDEX organization_invitations_active_key
    ON organization_invitations (organization_id, lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- The active index is partial: listing every invitation of an organization, and the cascade
-- when it is deleted, need one of their own. Deleting a user scans for the three user columns
-- unindexed: that is rare, and cheaper than three indexes kept on every write.
CREATE INDEX organization_invitations_organization_id_idx
    ON organization_invitations (organization_id, created_at, id);
