-- A code-flow sign-in may be the proof of a pending provider link (the confirm page's "prove with
-- another sign-in method"): the SHA-256 of that link's id, else NULL.
ALTER TABLE sign_in_flows ADD COLUMN proves_link_hash TEXT;
