-- External sign-in identities (upstream's table name): a provider's subject belongs to one user,
-- and a user has at most one identity per provider. The password stays on `users`; a user without
-- one signs in through these rows only. Types as in 0001.
CREATE TABLE auth_providers (
    id               TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    provider         TEXT    NOT NULL,
    provider_user_id TEXT    NOT NULL,
    email            TEXT,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER,
    CONSTRAINT auth_providers_pkey PRIMARY KEY (id),
    CONSTRAINT auth_providers_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT auth_providers_provider_user_id_key UNIQUE (provider, provider_user_id),
    CONSTRAINT auth_providers_user_id_provider_key UNIQUE (user_id, provider),
    CONSTRAINT auth_providers_provider_check
        CHECK (length(provider) BETWEEN 1 AND 50 AND provider NOT GLOB '*[^a-z0-9_-]*'
               AND substr(provider, 1, 1) GLOB '[a-z]' AND provider <> 'password'),
    CONSTRAINT auth_providers_provider_user_id_check
        CHECK (length(provider_user_id) BETWEEN 1 AND 255)
) STRICT;
