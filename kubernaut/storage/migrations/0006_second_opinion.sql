-- What an optional HolmesGPT server said about the incident an analysis decided (holmes.in_analysis).
-- Untrusted text for humans: shown in the incident view, never read by any decision.
ALTER TABLE analyses ADD COLUMN IF NOT EXISTS second_opinion JSONB;
