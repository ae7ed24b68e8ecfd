-- Organizations (upstream's model): the pinned product shape, organizations, memberships, and
-- the organization each session acts in. Upstream's table names; types as in 0001. Every user
-- gets an initial organization: new users with their account, existing ones from the backfill
-- that the server runs at start-up once the mode is known (the kind depends on it). SQLite has
-- no notifications (see 0002): nothing else writes to a SQLite server's database.

CREATE TABLE organization_mode (
    id         INTEGER NOT NULL DEFAULT 1,
    mode       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT organization_mode_pkey PRIMARY KEY (id),
    CONSTRAINT organization_mode_singleton_check CHECK (id = 1),
    CONSTRAINT organization_mode_mode_check CHECK (mode IN ('personal', 'single', 'multi'))
) STRICT;

CREATE TABLE organizations (
    id                 TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    created_by_user_id TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    CONSTRAINT organizations_pkey PRIMARY KEY (id),
    CONSTRAINT organizations_name_check CHECK (trim(name) <> ''),
    CONSTRAINT organizations_kind_check CHECK (kind IN ('personal', 'team')),
    CONSTRAINT organizations_created_by_user_id_fkey
        FOREIGN KEY (created_by_user_id) REFERENCES users (id) ON DELETE SET NULL
) STRICT;

CREATE UNIQUE INDEX organizations_personal_creator_key
    ON organizations (created_by_user_id) WHERE kind = 'personal';

CREATE TABLE organization_memberships (
    organization_id TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT organization_memberships_pkey PRIMARY KEY (organization_id, user_id),
    CONSTRAINT organization_memberships_role_check CHECK (role IN ('owner', 'admin', 'member')),
    CONSTRAINT organization_memberships_organization_id_fkey
        FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT organization_memberships_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) STRICT;

CREATE INDEX organization_memberships_user_id_idx ON organization_memberships (user_id);

-- NULL only for sessions made before this migration until the start-up backfill sets it (or
-- when the organization is deleted): such a session is not live and does not refresh.
ALTER TABLE sessions ADD COLUMN active_organization_id TEXT
    REFERENCES organizations (id) ON DELETE SET NULL;

CREATE INDEX sessions_active_organization_id_idx ON sessions (active_organization_id);
