-- Durable remediation workflows: explicit phases, planned steps, approvals, blocks.
ALTER TABLE workflows
    ADD COLUMN target_key      TEXT,
    ADD COLUMN plan            JSONB NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN current_step    INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN signature       TEXT,
    ADD COLUMN error           TEXT,
    ADD COLUMN finished_at     TIMESTAMPTZ;
CREATE INDEX workflows_active_target ON workflows (target_key)
    WHERE phase NOT IN ('completed', 'failed', 'rolled_back', 'blocked', 'cancelled', 'timed_out', 'denied',
                        'review');

ALTER TABLE workflow_steps
    ADD COLUMN attempts   INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN action_id  BIGINT REFERENCES actions (id),
    ADD COLUMN kind       TEXT NOT NULL DEFAULT 'control';

-- One approval per decision point; used at most once; every decision attributed.
CREATE TABLE approvals (
    id                  BIGSERIAL PRIMARY KEY,
    workflow_id         BIGINT NOT NULL REFERENCES workflows (id),
    incident_id         BIGINT NOT NULL REFERENCES incidents (id),
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'used', 'cancelled')),
    action              TEXT NOT NULL,
    target              JSONB NOT NULL,
    parameters          JSONB NOT NULL DEFAULT '{}'::jsonb,
    reason              TEXT NOT NULL,
    dry_run_diff        TEXT,
    requested_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at          TIMESTAMPTZ NOT NULL,
    decided_by          TEXT,
    decided_at          TIMESTAMPTZ,
    decision_reason     TEXT,
    override_parameters JSONB,
    used_at             TIMESTAMPTZ,
    UNIQUE (workflow_id)
);
CREATE INDEX approvals_pending ON approvals (expires_at) WHERE status = 'pending';

-- Why a target/action is blocked, and until when.
CREATE TABLE blocks (
    id          BIGSERIAL PRIMARY KEY,
    target_key  TEXT NOT NULL,
    action      TEXT,
    rule        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    until       TIMESTAMPTZ,
    workflow_id BIGINT REFERENCES workflows (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX blocks_target ON blocks (target_key, until);

-- Steps are found by name when a workflow resumes: a name runs at most once per workflow.
CREATE UNIQUE INDEX workflow_steps_name ON workflow_steps (workflow_id, name);
