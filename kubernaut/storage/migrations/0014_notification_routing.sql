-- Notifications where people are (issue 13, sections 2-3): the approval a notification is about, one Slack thread
-- per incident and channel, the Slack message of each approval (updated in place when it is decided), Slack
-- interactions already handled (replay refusal), route groups sent (repeat_interval) and receiver health.
ALTER TABLE notifications
    ADD COLUMN approval_id BIGINT REFERENCES approvals (id);
CREATE INDEX notifications_approval ON notifications (approval_id) WHERE approval_id IS NOT NULL;

CREATE TABLE slack_threads (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    channel     TEXT NOT NULL,
    ts          TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, channel)
);

CREATE TABLE slack_approval_messages (
    approval_id BIGINT NOT NULL REFERENCES approvals (id),
    channel     TEXT NOT NULL,
    ts          TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (approval_id, channel)
);

-- The sha256 of each accepted interaction's signature: a second delivery of the same signed request is refused.
-- Rows older than Slack's 5-minute window are useless (the timestamp check refuses those requests) and pruned.
CREATE TABLE slack_interactions (
    digest      TEXT PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX slack_interactions_received ON slack_interactions (received_at);

CREATE TABLE notification_groups (
    receiver     TEXT NOT NULL,
    group_key    TEXT NOT NULL,
    last_sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (receiver, group_key)
);

CREATE TABLE notification_receivers (
    receiver             TEXT PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT,
    last_failure_at      TIMESTAMPTZ,
    last_success_at      TIMESTAMPTZ
);
