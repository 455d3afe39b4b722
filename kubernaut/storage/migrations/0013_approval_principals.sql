-- Approvals that mean something (issue 12): who asked for the remediation, how many distinct principals must
-- approve it, and every principal's decision with how it authenticated and where it came from.
ALTER TABLE approvals
    -- The requester cannot approve its own remediation: the system ('kubernaut') for every proposal so far.
    ADD COLUMN requested_by       TEXT NOT NULL DEFAULT 'kubernaut',
    -- orchestration.approvals.two_person_for: 2 for the risk levels listed there.
    ADD COLUMN approvals_required INTEGER NOT NULL DEFAULT 1 CHECK (approvals_required BETWEEN 1 AND 2),
    ADD COLUMN decided_method     TEXT,
    ADD COLUMN decided_roles      TEXT[],
    ADD COLUMN decided_address    TEXT,
    ADD COLUMN decided_user_agent TEXT;

-- One row per principal's decision on an approval: an approver counts once, and may still reject after approving.
CREATE TABLE approval_decisions (
    id                 BIGSERIAL PRIMARY KEY,
    approval_id        BIGINT NOT NULL REFERENCES approvals (id),
    approve            BOOLEAN NOT NULL,
    actor              TEXT NOT NULL,
    method             TEXT NOT NULL,
    roles              TEXT[] NOT NULL DEFAULT '{}',
    address            TEXT,
    user_agent         TEXT,
    reason             TEXT,
    override           JSONB,
    -- The server-side dry-run of the overridden plan this decision was checked with.
    dry_run_action_id  BIGINT,  -- no foreign key: retention may drop old dry-run records
    decided_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (approval_id, actor, approve)
);
