-- The diagnosis an analysis rests on: typed findings (kind, cause object, quoted evidence) and the
-- finding that justifies its action (kubernaut/models/finding.py). Shown in the incident view.
ALTER TABLE analyses ADD COLUMN IF NOT EXISTS findings JSONB NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE analyses ADD COLUMN IF NOT EXISTS justified_by TEXT;
