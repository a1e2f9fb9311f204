-- Pushing to partner EHRs (internal/sync): where each partner wants
-- changes, what it already holds, who is delivering to it, and what gave up.
-- Times are integer milliseconds since the Unix epoch (UTC).

-- sync_destination is a partner's outbound FHIR endpoint. auth is none,
-- smart (SMART Backend Services: a client assertion signed with the private
-- key PEM at secret_ref) or secret (OAuth client_credentials with the client
-- secret at secret_ref). types is a JSON array of resource types ([] = all).
-- allow is none, loopback or private: which non-public addresses the
-- dialer may reach (tests: loopback).
CREATE TABLE sync_destination (
    partner_id  TEXT PRIMARY KEY,
    base_url    TEXT NOT NULL,
    auth        TEXT NOT NULL,
    token_url   TEXT NOT NULL DEFAULT '',
    client_id   TEXT NOT NULL DEFAULT '',
    key_id      TEXT NOT NULL DEFAULT '',
    secret_ref  TEXT NOT NULL DEFAULT '',
    scope       TEXT NOT NULL DEFAULT '',
    types       TEXT NOT NULL DEFAULT '[]',
    concurrency BIGINT NOT NULL DEFAULT 4,
    rate        BIGINT NOT NULL DEFAULT 10,
    allow       TEXT NOT NULL DEFAULT 'none',
    disabled    BOOLEAN NOT NULL DEFAULT false,
    updated_at  BIGINT NOT NULL
);

-- sync_resource is what a partner holds of ours: the last version
-- delivered and the id the partner gave it. version_id never decreases.
CREATE TABLE sync_resource (
    partner_id   TEXT NOT NULL,
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version_id   BIGINT NOT NULL,
    remote_id    TEXT NOT NULL DEFAULT '',
    delivered_at BIGINT NOT NULL,
    PRIMARY KEY (partner_id, type, id)
);

-- sync_lease serializes deliveries per partner and patient across workers
-- and instances: a delivery holds the row until expires_at.
CREATE TABLE sync_lease (
    partner_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (partner_id, patient_id)
);

-- sync_dead is a delivery that gave up: a hopeless answer or too many
-- attempts. reason and code are classes and statuses, never bodies.
CREATE TABLE sync_dead (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id  TEXT NOT NULL,
    episode_id  TEXT NOT NULL,
    patient_id  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    code        TEXT NOT NULL DEFAULT '',
    attempts    BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    replayed_at BIGINT
);

CREATE INDEX sync_dead_open ON sync_dead (replayed_at, id);
