-- Dead letters and fenced leases for the durable work queue (kubernaut/storage/jobs.py).
--
-- A job that used up its attempts is 'dead' (was 'failed'): it stays visible at
-- GET /api/v1/jobs?state=dead until someone replays it (POST /api/v1/jobs/{id}/retry).
-- lease_token names one claim: a holder writes only while its token is still on the row, so a
-- replica whose lease lapsed cannot advance work another replica has taken over.
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_state_check;
UPDATE jobs SET state = 'dead' WHERE state = 'failed';
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check CHECK (state IN ('pending', 'running', 'done', 'dead'));
ALTER TABLE jobs ADD COLUMN lease_token UUID;
ALTER TABLE jobs ADD COLUMN dead_at TIMESTAMPTZ;
UPDATE jobs SET dead_at = updated_at WHERE state = 'dead';
CREATE INDEX jobs_dead ON jobs (dead_at DESC, id DESC) WHERE state = 'dead';
