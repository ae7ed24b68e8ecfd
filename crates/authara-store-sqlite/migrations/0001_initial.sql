-- Authara's initial schema (SQLite).
-- uuids: TEXT, hyphenated lowercase; timestamps: INTEGER unix microseconds (UTC);
-- booleans: INTEGER 0/1; refresh token hashes: 32-byte BLOB (SHA-256).
-- Unique constraints are named after the PostgreSQL ones; SQLite reports them as
-- "UNIQUE constraint failed: users.email", which the store maps to the key.

CREATE TABLE users (
    id            TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    username      TEXT    NOT NULL,
    password_hash TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_username_key UNIQUE (username)
) STRICT;

CREATE TABLE sessions (
    id          TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    user_agent  TEXT    NOT NULL,
    client_ip   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) STRICT;

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE refresh_tokens (
    id          TEXT    NOT NULL,
    session_id  TEXT    NOT NULL,
    token_hash  BLOB    NOT NULL CHECK (length(token_hash) = 32),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    consumed_at INTEGER,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
) STRICT;

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
