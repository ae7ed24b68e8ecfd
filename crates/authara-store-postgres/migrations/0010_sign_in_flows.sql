-- Browser sign-ins through a code-flow provider (GitHub, OpenID Connect), between /start and
-- /callback: keyed by the SHA-256 of the OAuth `state`, bound to the browser by the SHA-256 of its
-- flow cookie, deleted when used; rows past expires_at are deleted as new flows start.
CREATE TABLE sign_in_flows (
    state_hash    TEXT        NOT NULL,
    provider      TEXT        NOT NULL,
    browser_hash  TEXT        NOT NULL,
    code_verifier TEXT        NOT NULL,
    nonce         TEXT        NOT NULL,
    return_to     TEXT,
    link_user_id  UUID,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT sign_in_flows_pkey PRIMARY KEY (state_hash),
    CONSTRAINT sign_in_flows_link_user_id_fkey
        FOREIGN KEY (link_user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT sign_in_flows_state_hash_check CHECK (state_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT sign_in_flows_browser_hash_check CHECK (browser_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX sign_in_flows_expires_at_idx ON sign_in_flows (expires_at);
