-- A fleet of clusters (issue 16): every incident and action names the cluster it is about. NULL is the
-- home cluster (rows from before the fleet): the processor fills in the configured home cluster's name at
-- start (storage/fleet.py adopt_home), which the migration cannot know.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS cluster TEXT;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS cluster TEXT;
CREATE INDEX IF NOT EXISTS incidents_cluster_recent ON incidents (cluster, last_seen DESC);
CREATE INDEX IF NOT EXISTS incidents_cluster_unset ON incidents (id) WHERE cluster IS NULL;
CREATE INDEX IF NOT EXISTS actions_cluster_unset ON actions (id) WHERE cluster IS NULL;
