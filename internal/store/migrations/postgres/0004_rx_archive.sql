-- E-prescribing records: every SCRIPT message sent to the pharmacy, the
-- pharmacy callback event ids already applied, the latest rule check of
-- each prescription, and the prescription timeline.
-- Times are integer milliseconds since the Unix epoch (UTC).

-- rx_message archives each SCRIPT message exactly as sent: body holds the
-- bytes signed (PHI), jws the detached signature of the last attempt.
-- order_id is the MedicationRequest id (the PrescriberOrderNumber).
-- status is queued, sent, accepted, failed or unknown.
CREATE TABLE rx_message (
    message_id      TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL,
    prescription_id TEXT NOT NULL,
    episode_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    issue           BIGINT NOT NULL,
    body            BYTEA NOT NULL,
    jws             TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    code            TEXT NOT NULL DEFAULT '',
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE INDEX rx_message_order ON rx_message (order_id, created_at);

-- rx_event holds every pharmacy callback event id applied, so a repeat is
-- recognised however it races with the first.
CREATE TABLE rx_event (
    event_id    TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL,
    type        TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

-- rx_check is the latest rule check of each prescription. findings is a
-- JSON array of rule findings (codes, fields, messages without values).
CREATE TABLE rx_check (
    order_id        TEXT PRIMARY KEY,
    prescription_id TEXT NOT NULL,
    episode_id      TEXT NOT NULL,
    blocked         BOOLEAN NOT NULL,
    findings        TEXT NOT NULL,
    rule_set        TEXT NOT NULL DEFAULT '',
    checked_at      BIGINT NOT NULL
);

CREATE INDEX rx_check_blocked ON rx_check (blocked, checked_at);

-- rx_step is the prescription timeline: written, checked, queued, signed,
-- sent, accepted, dispensed, shipped, delivered... with the trace id of the
-- work that recorded each step. Ids and codes only.
CREATE TABLE rx_step (
    seq             BIGSERIAL PRIMARY KEY,
    order_id        TEXT NOT NULL,
    prescription_id TEXT NOT NULL,
    message_id      TEXT NOT NULL DEFAULT '',
    message         TEXT NOT NULL DEFAULT '',
    step            TEXT NOT NULL,
    code            TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT '',
    trace_id        TEXT NOT NULL DEFAULT '',
    at              BIGINT NOT NULL
);

CREATE INDEX rx_step_order ON rx_step (order_id, seq);
CREATE INDEX rx_step_prescription ON rx_step (prescription_id, seq);
