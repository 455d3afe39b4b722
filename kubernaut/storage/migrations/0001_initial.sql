-- The facts of the loop: alerts in, incidents, analyses, workflows, actions, notifications, audit.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE alerts (
    id               BIGSERIAL PRIMARY KEY,
    received_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    request_id       TEXT NOT NULL,
    receiver         TEXT,
    group_key        TEXT,
    am_fingerprint   TEXT NOT NULL,
    alertname        TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity         TEXT,
    namespace        TEXT,
    labels           JSONB NOT NULL,
    annotations      JSONB NOT NULL DEFAULT '{}'::jsonb,
    starts_at        TIMESTAMPTZ NOT NULL,
    ends_at          TIMESTAMPTZ,
    generator_url    TEXT,
    -- AlertManager redelivers whole groups; (fingerprint, startsAt, status) identifies one event.
    dedup_key        TEXT NOT NULL UNIQUE,
    incident_id      BIGINT,
    processed_at     TIMESTAMPTZ,
    process_decision JSONB
);
CREATE INDEX alerts_unprocessed ON alerts (id) WHERE processed_at IS NULL;
CREATE INDEX alerts_incident ON alerts (incident_id);

CREATE TABLE incidents (
    id                 BIGSERIAL PRIMARY KEY,
    fingerprint        TEXT NOT NULL,
    target_kind        TEXT NOT NULL,
    target_name        TEXT NOT NULL,
    target_namespace   TEXT,
    target_source      TEXT NOT NULL,
    target_chain       JSONB NOT NULL DEFAULT '[]'::jsonb,
    status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'closed')),
    phase              TEXT NOT NULL DEFAULT 'new',
    signals            TEXT[] NOT NULL DEFAULT '{}',
    severity           TEXT NOT NULL DEFAULT 'unknown',
    environment        TEXT NOT NULL DEFAULT 'unknown',
    priority           TEXT NOT NULL DEFAULT 'P3',
    classification     JSONB NOT NULL DEFAULT '{}'::jsonb,
    occurrence_count   INTEGER NOT NULL DEFAULT 1,
    firing_alerts      INTEGER NOT NULL DEFAULT 0,
    first_seen         TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen          TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at        TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- At most one open incident per workload: concurrent processors join it instead of racing.
CREATE UNIQUE INDEX incidents_one_open_per_fingerprint ON incidents (fingerprint) WHERE status = 'open';
CREATE INDEX incidents_recent ON incidents (last_seen DESC);

CREATE TABLE analyses (
    id             BIGSERIAL PRIMARY KEY,
    incident_id    BIGINT NOT NULL REFERENCES incidents (id),
    engine         TEXT NOT NULL,
    action         TEXT NOT NULL,
    parameters     JSONB NOT NULL DEFAULT '{}'::jsonb,
    target         JSONB NOT NULL,
    confidence     DOUBLE PRECISION NOT NULL,
    root_cause     TEXT NOT NULL,
    alternatives   JSONB NOT NULL DEFAULT '[]'::jsonb,
    rule_id        TEXT,
    reasoning      JSONB NOT NULL DEFAULT '[]'::jsonb,
    fallback_reason TEXT,
    latency_ms     DOUBLE PRECISION,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX analyses_incident ON analyses (incident_id);

CREATE TABLE workflows (
    id           BIGSERIAL PRIMARY KEY,
    incident_id  BIGINT NOT NULL REFERENCES incidents (id),
    analysis_id  BIGINT NOT NULL UNIQUE REFERENCES analyses (id),
    phase        TEXT NOT NULL DEFAULT 'pending',
    dry_run      BOOLEAN NOT NULL,
    decision     JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX workflows_incident ON workflows (incident_id);

CREATE TABLE workflow_steps (
    id           BIGSERIAL PRIMARY KEY,
    workflow_id  BIGINT NOT NULL REFERENCES workflows (id),
    seq          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL,
    detail       JSONB NOT NULL DEFAULT '{}'::jsonb,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    UNIQUE (workflow_id, seq)
);

CREATE TABLE actions (
    id               BIGSERIAL PRIMARY KEY,
    workflow_id      BIGINT REFERENCES workflows (id),
    incident_id      BIGINT REFERENCES incidents (id),
    action           TEXT NOT NULL,
    target           JSONB NOT NULL,
    parameters       JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- A retried request carries the same key and gets the recorded result back, never a second run.
    idempotency_key  TEXT NOT NULL UNIQUE,
    dry_run          BOOLEAN NOT NULL,
    status           TEXT NOT NULL,
    plan             JSONB NOT NULL DEFAULT '[]'::jsonb,
    diff             TEXT,
    result           JSONB NOT NULL DEFAULT '{}'::jsonb,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ
);
CREATE INDEX actions_incident ON actions (incident_id);

CREATE TABLE notifications (
    id            BIGSERIAL PRIMARY KEY,
    incident_id   BIGINT REFERENCES incidents (id),
    event         TEXT NOT NULL,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    severity      TEXT NOT NULL DEFAULT 'info',
    status        TEXT NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    targets       INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at       TIMESTAMPTZ
);
CREATE INDEX notifications_incident ON notifications (incident_id);

-- Durable work: every hand-off between deployments is a row, claimed with SKIP LOCKED and a lease,
-- so a replica may die at any moment and another picks the work up.
CREATE TABLE jobs (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT NOT NULL,
    ref_id        BIGINT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    run_after     TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_owner   TEXT,
    lease_until   TIMESTAMPTZ,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (kind, ref_id)
);
CREATE INDEX jobs_claimable ON jobs (kind, run_after) WHERE state IN ('pending', 'running');

-- Append-only and hash-chained: each row commits to the previous one, so an edit breaks the chain.
CREATE TABLE audit_events (
    id           BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor        TEXT NOT NULL,
    event        TEXT NOT NULL,
    incident_id  BIGINT,
    detail       JSONB NOT NULL DEFAULT '{}'::jsonb,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_incident ON audit_events (incident_id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- Per-URL delivery state so a retry re-sends only where it failed (URLs are secrets: stored by index).
ALTER TABLE notifications ADD COLUMN deliveries JSONB NOT NULL DEFAULT '{}'::jsonb;
