-- One job kind drives a workflow (kubernaut/models/jobs.py, kubernaut/orchestration/workflow_job.py).
--
-- Before: the analysis enqueued 'orchestrate' (ref: the analysis), whose handler created the workflow and
-- enqueued 'workflow' (ref: the workflow). Now one 'workflow' job per analysis (ref: the analysis) creates
-- the workflow and advances it. Stored jobs are rewritten so that they still run after the upgrade:
--
-- 1. 'workflow' jobs are keyed by their workflow's analysis. They pass through a name no job has, so the
--    rewrite never meets (kind, ref_id) of a row it has not rewritten yet (the pair is unique).
UPDATE jobs j SET kind = 'workflow@0011', ref_id = w.analysis_id
  FROM workflows w WHERE j.kind = 'workflow' AND w.id = j.ref_id;
--    A 'workflow' job whose workflow no longer exists had nothing to drive.
DELETE FROM jobs WHERE kind = 'workflow';
-- 2. An analysis whose workflow has its job already: that job holds the workflow's state (attempts, dead
--    letter); the hand-off that created it is finished.
DELETE FROM jobs o USING jobs w
 WHERE o.kind = 'orchestrate' AND w.kind = 'workflow@0011' AND w.ref_id = o.ref_id;
-- 3. Every other hand-off (not yet run, running, or dead before it created the workflow) is the new job.
UPDATE jobs SET kind = 'workflow' WHERE kind IN ('orchestrate', 'workflow@0011');
