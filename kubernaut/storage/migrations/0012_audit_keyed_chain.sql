-- The audit chain becomes keyed (HMAC-SHA256, kubernaut/storage/audit.py): each event names the key that
-- signed it. Events written before keep key_id NULL: the legacy sha256 segment, verified as it was, and
-- linked to the keyed segment by the first keyed event (audit.chain_keyed).
ALTER TABLE audit_events ADD COLUMN key_id TEXT;

-- The row trigger of 0001 does not fire on TRUNCATE; this one does. The app role has no TRUNCATE grant
-- either (kubernaut/storage/roles.py): the trigger also stops an owner's slip, and verification against
-- the anchored head catches whatever bypasses both.
CREATE FUNCTION audit_events_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: TRUNCATE refused';
END $$;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_no_truncate();
