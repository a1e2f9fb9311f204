-- Pulling from partner EHRs (internal/sync pull): which partners are
-- polled for what, where each poll got to, and which stored resources came
-- from a partner. Times are integer milliseconds since the Unix epoch (UTC).

-- sync_pull is a partner whose FHIR API the gateway polls, through the
-- partner's push destination (same base URL and credentials). types is a
-- JSON array of resource types; interval_ms is the time between polls.
CREATE TABLE sync_pull (
    partner_id  TEXT PRIMARY KEY,
    types       TEXT NOT NULL DEFAULT '[]',
    interval_ms INTEGER NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL
) STRICT;

-- sync_pull_cursor is how far the poll of one partner, patient (ours) and
-- type got: cursor is the partner's meta.lastUpdated of the last resource
-- stored, as the partner wrote it, advanced in the transaction that stores
-- the page. pulled and unmatched count resources stored and resources whose
-- subject was not the patient (reported, never stored).
CREATE TABLE sync_pull_cursor (
    partner_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    type       TEXT NOT NULL,
    cursor     TEXT NOT NULL DEFAULT '',
    pulled     INTEGER NOT NULL DEFAULT 0,
    unmatched  INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (partner_id, patient_id, type)
) STRICT;

-- external_resource marks a stored resource (type, id: ours) as pulled
-- from a partner, with the partner's id for it and our patient.
CREATE TABLE external_resource (
    type       TEXT NOT NULL,
    id         TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    remote_id  TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    PRIMARY KEY (type, id)
) STRICT;

CREATE INDEX external_resource_patient ON external_resource (patient_id, type);
