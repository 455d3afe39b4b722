-- What the LLM path cost and why its answers were rejected, per analysis (issue: AI analysis).
-- Nullable: rule-only analyses have no LLM usage; older rows stay valid.
ALTER TABLE analyses
    ADD COLUMN IF NOT EXISTS llm_provider       TEXT,
    ADD COLUMN IF NOT EXISTS llm_model          TEXT,
    ADD COLUMN IF NOT EXISTS llm_calls          INTEGER,
    ADD COLUMN IF NOT EXISTS prompt_tokens      INTEGER,
    ADD COLUMN IF NOT EXISTS completion_tokens  INTEGER,
    ADD COLUMN IF NOT EXISTS llm_latency_ms     DOUBLE PRECISION,
    ADD COLUMN IF NOT EXISTS cost_usd           DOUBLE PRECISION,
    ADD COLUMN IF NOT EXISTS llm                JSONB,
    -- Answers that tried to leave the catalog, the incident's scope or a guard: kept for review.
    ADD COLUMN IF NOT EXISTS flags              JSONB NOT NULL DEFAULT '[]'::jsonb,
    -- Observed conditions (from the Context API) the decision was made on.
    ADD COLUMN IF NOT EXISTS facts              JSONB NOT NULL DEFAULT '{}'::jsonb;

-- Token spend over time per model, for cost reports.
CREATE INDEX IF NOT EXISTS analyses_llm_model_created ON analyses (llm_model, created_at) WHERE llm_model IS NOT NULL;
