-- The firing count of an incident is kept up to date from the alerts a batch touches (their fingerprints),
-- not recounted over all of the incident's alerts: a storm of 10,000 alerts on one workload made every
-- batch rescan them all. This index serves both the incident's alerts and one fingerprint's history.
CREATE INDEX IF NOT EXISTS alerts_incident_fingerprint ON alerts (incident_id, am_fingerprint);
DROP INDEX IF EXISTS alerts_incident;
