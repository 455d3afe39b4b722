-- The web console's session key (issue 13): session cookies are encrypted and signed with it, and every
-- gateway replica must use the same one. Made once, by the first replica that needs it, unless
-- console.session_secret is configured (kubernaut/storage/console_keys.py).
CREATE TABLE IF NOT EXISTS console_keys (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    key        BYTEA NOT NULL CHECK (length(key) = 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
