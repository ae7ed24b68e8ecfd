-- PostgreSQL's migration of this name announces deleted sessions to the live-session caches of
-- other instances. SQLite has no notifications and only one server per database file (the
-- exclusive lock), so there is nothing to do. Kept so that both backends have the same
-- migrations.
SELECT 1;
