-- Who may see what: the client registry (partner EHRs, the clinic platform,
-- admins), the client-assertion ids already used, and which organizations
-- serve each patient under a data-sharing consent.
-- Times are integer milliseconds since the Unix epoch (UTC).

-- client is one registered SMART Backend Services client. jwks is an inline
-- JWK Set (public keys only) or empty when jwks_url names where to fetch it.
-- scopes and orgs are JSON arrays of strings. rate is requests per second on
-- the FHIR API. version grows on every change so caches can tell.
CREATE TABLE client (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    jwks       TEXT NOT NULL DEFAULT '',
    jwks_url   TEXT NOT NULL DEFAULT '',
    scopes     TEXT NOT NULL,
    orgs       TEXT NOT NULL,
    rate       BIGINT NOT NULL,
    disabled   BOOLEAN NOT NULL DEFAULT false,
    version    BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- client_assertion_jti holds every client assertion id accepted until the
-- assertion expires, so a replay is refused across restarts and instances.
CREATE TABLE client_assertion_jti (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE INDEX client_assertion_jti_expires ON client_assertion_jti (expires_at);

-- patient_access says which clinic organizations (the KAP careTeam's
-- organization and therapistOrganization ids) serve the patient of each
-- episode, and when the patient's data-sharing consent holds. The rows of
-- an episode are replaced with every accepted document of it.
CREATE TABLE patient_access (
    episode_id    TEXT NOT NULL,
    patient_id    TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    sharing_from  BIGINT,
    sharing_until BIGINT,
    PRIMARY KEY (episode_id, org_id)
);

CREATE INDEX patient_access_patient ON patient_access (patient_id, org_id);
