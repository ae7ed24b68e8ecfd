-- Session revocations and user changes are announced on the channel `authara_changes`, so that
-- every instance's live-session cache forgets them at once, whichever process made the change
-- (a server, `authara admin`, or SQL typed by an operator). The notification is part of the
-- writing transaction: it is delivered when, and only if, that transaction commits.
-- Payloads: '<schema>:s:<session id>' and '<schema>:u:<user id>'.

CREATE FUNCTION authara_notify_session_revoked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authara_changes', TG_TABLE_SCHEMA || ':s:' || NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_revoked_notify
    AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at)
    EXECUTE FUNCTION authara_notify_session_revoked();

CREATE FUNCTION authara_notify_user_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authara_changes', TG_TABLE_SCHEMA || ':u:' || OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_changed_notify
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW
    EXECUTE FUNCTION authara_notify_user_changed();
