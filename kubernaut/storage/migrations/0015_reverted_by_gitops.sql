-- Issue 15: an assessment can conclude that a GitOps controller reverted the live action (self-heal), which
-- learning must not count as "ineffective".
ALTER TABLE assessments DROP CONSTRAINT IF EXISTS assessments_verdict_check;
ALTER TABLE assessments ADD CONSTRAINT assessments_verdict_check
    CHECK (verdict IN ('effective', 'ineffective', 'inconclusive', 'reverted_by_gitops'));
