-- A global LLM token budget shared by every analysis replica (issue 19, item 4): tokens spent per UTC
-- minute and per UTC day. A call reserves its worst case here before it starts and settles to what it
-- really used afterwards (kubernaut/storage/llm_budget.py), so concurrent replicas cannot overshoot.
-- Rows older than the windows they count are pruned by the writers; the table stays a few dozen rows.
CREATE TABLE IF NOT EXISTS llm_token_windows (
    scope        TEXT NOT NULL CHECK (scope IN ('minute', 'day')),
    window_start TIMESTAMP NOT NULL,  -- UTC, truncated to the scope
    tokens       BIGINT NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    PRIMARY KEY (scope, window_start)
);
