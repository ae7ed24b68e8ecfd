-- Sessions deleted (by Authara, by cascade from a deleted user, or by SQL typed by an operator)
-- are announced like revocations, on `authara_changes` with the payload '<schema>:s:<id>', so
-- that no instance's live-session cache keeps answering for a session that no longer exists.
-- Users already announce deletes (migration 0002). The feed's heartbeat needs nothing here: it
-- notifies on a channel of each listener's own with pg_notify.

CREATE FUNCTION authara_notify_session_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authara_changes', TG_TABLE_SCHEMA || ':s:' || OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_deleted_notify
    AFTER DELETE ON sessions
    FOR EACH ROW
    EXECUTE FUNCTION authara_notify_session_deleted();
