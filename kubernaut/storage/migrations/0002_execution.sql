-- The executor's safety pipeline: action lifecycle, per-target locks, cooldown and budget queries.
-- Additive only: old rows stay valid (status finished, no lease, not mutating).

ALTER TABLE actions
    ADD COLUMN IF NOT EXISTS target_key   TEXT,
    ADD COLUMN IF NOT EXISTS namespace    TEXT,
    -- Where the pipeline stopped (validation, scope, cooldown, lock, budget, preconditions, dry_run, execute, done).
    ADD COLUMN IF NOT EXISTS stage        TEXT,
    -- True once the budget admitted a live mutation: what the blast-radius budget counts.
    ADD COLUMN IF NOT EXISTS mutating     BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS retryable    BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS inverse      JSONB,
    ADD COLUMN IF NOT EXISTS inverse_of   BIGINT REFERENCES actions (id),
    -- Recorded live state before the change (what the inverse restores) and after it.
    ADD COLUMN IF NOT EXISTS before       JSONB,
    ADD COLUMN IF NOT EXISTS after        JSONB,
    ADD COLUMN IF NOT EXISTS verification JSONB,
    ADD COLUMN IF NOT EXISTS started_at   TIMESTAMPTZ,
    -- A running action is leased to one executor replica; a retry of its key after the lease
    -- expired finds the replica dead and records the action as interrupted (never runs it again).
    ADD COLUMN IF NOT EXISTS lease_owner  TEXT,
    ADD COLUMN IF NOT EXISTS lease_until  TIMESTAMPTZ;

-- Cooldown: last live execution of (target, action).
CREATE INDEX IF NOT EXISTS actions_cooldown ON actions (target_key, action, finished_at DESC)
    WHERE NOT dry_run AND mutating;
-- Budget: live mutations in the window.
CREATE INDEX IF NOT EXISTS actions_budget ON actions (started_at) WHERE mutating;

-- One execution per target at a time. A row is a lease, not a session lock, so it survives a
-- pooler and expires by itself when the holding replica dies.
CREATE TABLE IF NOT EXISTS execution_locks (
    target_key   TEXT PRIMARY KEY,
    action_id    BIGINT REFERENCES actions (id),
    action       TEXT NOT NULL,
    owner        TEXT NOT NULL,
    acquired_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);
