-- PostgreSQL's migration of this name adds NOTIFY triggers for the live-session cache. SQLite
-- has no notifications: a SQLite server instead holds an exclusive lock on its database file,
-- so no other server writes to it. Kept so that both backends have the same migrations.
SELECT 1;
