-- Invitations to join an organization (upstream's table name). The token is never stored, only
-- its SHA-256; the status is derived from the timestamps, so nothing has to flip a column when
-- an invitation expires.

CREATE TABLE organization_invitations (
    id                  UUID        NOT NULL,
    organization_id     UUID        NOT NULL,
    email               TEXT        NOT NULL,
    role                TEXT        NOT NULL,
    token_hash          TEXT        NOT NULL,
    metadata            JSONB       NOT NULL DEFAULT '{}',
    invited_by_user_id  UUID,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    expires_at          TIMESTAMPTZ NOT NULL,
    accepted_at         TIMESTAMPTZ,
    accepted_by_user_id UUID,
    revoked_at          TIMESTAMPTZ,
    revoked_by_user_id  UUID,
    CONSTRAINT organization_invitations_pkey PRIMARY KEY (id),
    CONSTRAINT organization_invitations_token_hash_key UNIQUE (token_hash),
    -- Owners are not invited: ownership is transferred.
    CONSTRAINT organization_invitations_role_check CHECK (role IN ('admin', 'member')),
    CONSTRAINT organization_invitations_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object'),
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
);

-- At most one active (neither accepted nor revoked, possibly expired) invitation per
-- organization and email: of concurrent creations, only one can pass. Emails are stored
-- normalised; lower() keeps the rule should one slip through with another case.
CREATE UNIQUE INDEX organization_invitations_active_key
    ON organization_invitations (organization_id, lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- The active index is partial: listing every invitation of an organization, and the cascade
-- when it is deleted, need one of their own. Deleting a user scans for the three user columns
-- unindexed: that is rare, and cheaper than three indexes kept on every write.
CREATE INDEX organization_invitations_organization_id_idx
    ON organization_invitations (organization_id, created_at, id);
