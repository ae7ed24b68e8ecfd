-- Organizations (upstream's model): the pinned product shape, organizations, memberships, and
-- the organization each session acts in. Upstream's table names. Every user gets an initial
-- organization: new users with their account, existing ones from the backfill that the server
-- runs at start-up once the mode is known (the kind of an initial organization depends on it).

-- One row, pinned at the first start: a server configured with another mode refuses to start.
CREATE TABLE organization_mode (
    id         SMALLINT    NOT NULL DEFAULT 1,
    mode       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT organization_mode_pkey PRIMARY KEY (id),
    CONSTRAINT organization_mode_singleton_check CHECK (id = 1),
    CONSTRAINT organization_mode_mode_check CHECK (mode IN ('personal', 'single', 'multi'))
);

CREATE TABLE organizations (
    id                 UUID        NOT NULL,
    name               TEXT        NOT NULL,
    kind               TEXT        NOT NULL,
    created_by_user_id UUID,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT organizations_pkey PRIMARY KEY (id),
    CONSTRAINT organizations_name_check CHECK (btrim(name) <> ''),
    CONSTRAINT organizations_kind_check CHECK (kind IN ('personal', 'team')),
    CONSTRAINT organizations_created_by_user_id_fkey
        FOREIGN KEY (created_by_user_id) REFERENCES users (id) ON DELETE SET NULL
);

-- At most one personal organization per creator.
CREATE UNIQUE INDEX organizations_personal_creator_key
    ON organizations (created_by_user_id) WHERE kind = 'personal';

CREATE TABLE organization_memberships (
    organization_id UUID        NOT NULL,
    user_id         UUID        NOT NULL,
    role            TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT organization_memberships_pkey PRIMARY KEY (organization_id, user_id),
    CONSTRAINT organization_memberships_role_check CHECK (role IN ('owner', 'admin', 'member')),
    CONSTRAINT organization_memberships_organization_id_fkey
        FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT organization_memberships_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX organization_memberships_user_id_idx ON organization_memberships (user_id);

-- NULL only for sessions made before this migration until the start-up backfill sets it (or
-- when the organization is deleted): such a session is not live and does not refresh.
ALTER TABLE sessions ADD COLUMN active_organization_id UUID
    CONSTRAINT sessions_active_organization_id_fkey
        REFERENCES organizations (id) ON DELETE SET NULL;

CREATE INDEX sessions_active_organization_id_idx ON sessions (active_organization_id);

-- The live-session cache keeps each session's organization and role: tell every instance
-- when a membership changes or goes (as a user change), when an organization is renamed (as a
-- change of each of its members) and when a session switches organizations.
CREATE FUNCTION authara_notify_membership_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authara_changes', TG_TABLE_SCHEMA || ':u:' || OLD.user_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER organization_memberships_changed_notify
    AFTER UPDATE OR DELETE ON organization_memberships
    FOR EACH ROW
    EXECUTE FUNCTION authara_notify_membership_changed();

CREATE FUNCTION authara_notify_organization_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authara_changes', TG_TABLE_SCHEMA || ':u:' || m.user_id::text)
    FROM organization_memberships m
    WHERE m.organization_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER organizations_renamed_notify
    AFTER UPDATE OF name ON organizations
    FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION authara_notify_organization_changed();

CREATE TRIGGER sessions_organization_notify
    AFTER UPDATE OF active_organization_id ON sessions
    FOR EACH ROW
    WHEN (OLD.active_organization_id IS DISTINCT FROM NEW.active_organization_id)
    EXECUTE FUNCTION authara_notify_session_revoked();
