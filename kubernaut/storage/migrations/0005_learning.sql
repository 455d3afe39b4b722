-- The learning loop: effectiveness assessments, mined action statistics and patterns, incident embeddings.

-- One assessment per executed (live) action. Durable and claimed through the `assess` job; a row is
-- final once status is 'done' or 'expired' (mining relies on that: final rows never change).
CREATE TABLE assessments (
    id            BIGSERIAL PRIMARY KEY,
    action_id     BIGINT NOT NULL UNIQUE REFERENCES actions (id),
    incident_id   BIGINT REFERENCES incidents (id),
    workflow_id   BIGINT,
    action        TEXT NOT NULL,
    target        JSONB NOT NULL,
    target_key    TEXT NOT NULL,
    target_kind   TEXT NOT NULL,
    -- f"{first alert name}:{target kind}", as workflows.signature (the autonomy gate's key).
    signature     TEXT NOT NULL,
    alertname     TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'expired')),
    verdict       TEXT CHECK (verdict IN ('effective', 'ineffective', 'inconclusive')),
    score         DOUBLE PRECISION,
    health        DOUBLE PRECISION,
    alert         DOUBLE PRECISION,
    metrics       DOUBLE PRECISION,
    drift         BOOLEAN,
    components    JSONB NOT NULL DEFAULT '{}'::jsonb,
    reasons       JSONB NOT NULL DEFAULT '[]'::jsonb,
    -- Target state right after the action (spec hash, pod restarts): what "since the action" compares to.
    baseline      JSONB,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    action_at     TIMESTAMPTZ NOT NULL,
    due_at        TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    assessed_at   TIMESTAMPTZ,
    -- When the incident recovered as far as this assessment could tell (alert resolved / healthy).
    recovered_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX assessments_target ON assessments (target_key, action_at DESC);
CREATE INDEX assessments_incident ON assessments (incident_id);

-- Final assessments not yet folded into action_stats. Written in the transaction that finalizes the
-- assessment, deleted by the miner in the transaction that adds its counts: each outcome is counted
-- exactly once, and the wide assessments rows are never rewritten. Evidence reads add this tail.
CREATE TABLE mining_inbox (
    assessment_id BIGINT PRIMARY KEY REFERENCES assessments (id)
);

-- Per (signature, action): additive counters, so mining can fold batches in and resume anywhere.
CREATE TABLE action_stats (
    signature        TEXT NOT NULL,
    action           TEXT NOT NULL,
    alertname        TEXT NOT NULL,
    target_kind      TEXT NOT NULL,
    executions       BIGINT NOT NULL DEFAULT 0,   -- assessed live executions
    effective        BIGINT NOT NULL DEFAULT 0,
    ineffective      BIGINT NOT NULL DEFAULT 0,
    inconclusive     BIGINT NOT NULL DEFAULT 0,   -- includes expired
    score_sum        DOUBLE PRECISION NOT NULL DEFAULT 0,
    scored           BIGINT NOT NULL DEFAULT 0,
    recovery_s_sum   DOUBLE PRECISION NOT NULL DEFAULT 0,
    recoveries       BIGINT NOT NULL DEFAULT 0,
    first_at         TIMESTAMPTZ,
    last_at          TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (signature, action)
);

-- Mined patterns, recomputed per round over a window: recurring incidents, oscillation, ineffective
-- chains, harmful side effects. `key` identifies the instance (e.g. target_key|signature).
CREATE TABLE patterns (
    kind        TEXT NOT NULL CHECK (kind IN ('recurring', 'oscillation', 'ineffective_chain', 'harmful')),
    key         TEXT NOT NULL,
    count       BIGINT NOT NULL,
    detail      JSONB NOT NULL DEFAULT '{}'::jsonb,
    first_at    TIMESTAMPTZ,
    last_at     TIMESTAMPTZ,
    round       BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);

-- Progress and results of the periodic mining rounds (one row per task).
CREATE TABLE mining_state (
    task        TEXT PRIMARY KEY,
    round       BIGINT NOT NULL DEFAULT 0,
    cursor      BIGINT NOT NULL DEFAULT 0,
    detail      JSONB NOT NULL DEFAULT '{}'::jsonb,
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);

-- One embedding per incident (structured description), with what was done and how it worked.
CREATE TABLE incident_embeddings (
    incident_id   BIGINT PRIMARY KEY REFERENCES incidents (id),
    provider      TEXT NOT NULL,
    description   TEXT NOT NULL,
    embedding     vector(384) NOT NULL,
    signature     TEXT NOT NULL,
    target_key    TEXT NOT NULL,
    target_kind   TEXT NOT NULL,
    action        TEXT,
    verdict       TEXT,
    score         DOUBLE PRECISION,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- On the half-precision copy: half the size (stays in shared buffers longer), faster distances, same
-- neighbours in practice. m / ef_construction tuned with bench/similarity.py (100k vectors).
CREATE INDEX incident_embeddings_hnsw ON incident_embeddings
    USING hnsw ((embedding::halfvec(384)) halfvec_cosine_ops) WITH (m = 16, ef_construction = 128);

-- Mining reads: new alerts after an action in a namespace; incidents of one workload over time.
CREATE INDEX IF NOT EXISTS alerts_namespace_received ON alerts (namespace, received_at);
CREATE INDEX IF NOT EXISTS incidents_fingerprint_seen ON incidents (fingerprint, first_seen);
-- The effectiveness sweep: recent live executions that may still lack an assessment job.
CREATE INDEX IF NOT EXISTS actions_live_finished ON actions (finished_at) WHERE NOT dry_run AND status = 'succeeded';

-- Nearest incidents in one round trip: the search breadth is set for this call only (set_config local to
-- the statement's transaction), then the HNSW scan on the half-precision copy orders the candidates;
-- the similarity returned is computed on the full-precision vector.
CREATE FUNCTION incident_neighbours(query vector(384), provider_name TEXT, exclude_id BIGINT, k INTEGER,
                                    ef_search INTEGER)
RETURNS TABLE (incident_id BIGINT, similarity DOUBLE PRECISION, description TEXT, signature TEXT, target_key TEXT,
               action TEXT, verdict TEXT, score DOUBLE PRECISION, incident_status TEXT, first_seen TIMESTAMPTZ,
               resolved_at TIMESTAMPTZ)
-- Custom plans: a generic plan cannot see that LIMIT k is small and would scan and sort instead.
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('hnsw.ef_search', ef_search::text, true);
    -- pgvector >= 0.8: keep scanning when the filters drop candidates, so k results still come back.
    IF current_setting('hnsw.iterative_scan', true) IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
    END IF;
    RETURN QUERY
        SELECT e.incident_id, 1 - (e.embedding <=> query), e.description, e.signature, e.target_key, e.action,
               e.verdict, e.score, i.status, i.first_seen, i.resolved_at
        FROM incident_embeddings e JOIN incidents i ON i.id = e.incident_id
        WHERE e.provider = provider_name AND e.incident_id <> exclude_id
        ORDER BY e.embedding::halfvec(384) <=> query::halfvec(384)
        LIMIT k;
END $$;
