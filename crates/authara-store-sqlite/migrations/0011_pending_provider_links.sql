-- An external sign-in whose verified email is an existing account's, waiting for the user to prove
-- that account (upstream's table name, reduced to this one purpose). Keyed by the SHA-256 of the
-- link id in the confirm page's URL, bound to the browser by the SHA-256 of its cookie, deleted
-- when used; rows past expires_at are deleted as new ones are made. Types as in 0001.
CREATE TABLE pending_provider_links (
    link_hash        TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    provider         TEXT    NOT NULL,
    provider_user_id TEXT    NOT NULL,
    provider_email   TEXT    NOT NULL,
    browser_hash     TEXT    NOT NULL,
    return_to        TEXT,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    CONSTRAINT pending_provider_links_pkey PRIMARY KEY (link_hash),
    CONSTRAINT pending_provider_links_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT pending_provider_links_link_hash_check
        CHECK (length(link_hash) = 64 AND link_hash NOT GLOB '*[^0-9a-f]*'),
    CONSTRAINT pending_provider_links_browser_hash_check
        CHECK (length(browser_hash) = 64 AND browser_hash NOT GLOB '*[^0-9a-f]*')
) STRICT;
CREATE INDEX pending_provider_links_expires_at_idx ON pending_provider_links (expires_at);
