-- The exchange log (every exchange with a partner, the clinic platform or
-- the pharmacy) and the FHIR AuditEvents of every access to patient data.
-- Times are integer milliseconds since the Unix epoch (UTC).

-- exchange is one exchange: kind is intake, pull, pharmacy, push or admin;
-- direction is in or out; refs is a space-separated list of "Type/id"
-- references; operation is a route template or a message step; status is a
-- short code (ok, rejected, error, or a pharmacy step); payload is the
-- exchanged body encrypted with Transit (NULL when none was kept). No
-- column but payload may hold patient data.
CREATE TABLE exchange (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    direction   TEXT NOT NULL,
    trace_id    TEXT NOT NULL DEFAULT '',
    episode_id  TEXT NOT NULL DEFAULT '',
    partner_id  TEXT NOT NULL DEFAULT '',
    refs        TEXT NOT NULL DEFAULT '',
    operation   TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    code        TEXT NOT NULL DEFAULT '',
    attempt     INTEGER NOT NULL DEFAULT 1,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    error_class TEXT NOT NULL DEFAULT '',
    payload     TEXT
) STRICT;

CREATE INDEX exchange_trace ON exchange (trace_id, id);
CREATE INDEX exchange_episode ON exchange (episode_id, id);
CREATE INDEX exchange_partner ON exchange (partner_id, id);
CREATE INDEX exchange_at ON exchange (at);

-- audit_event holds one FHIR AuditEvent per access to patient data through
-- the FHIR API. body is the AuditEvent JSON; the other columns serve
-- searches and retention.
CREATE TABLE audit_event (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    recorded   INTEGER NOT NULL,
    client_id  TEXT NOT NULL,
    patient_id TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    body       BLOB NOT NULL
) STRICT;

CREATE INDEX audit_event_recorded ON audit_event (recorded);
CREATE INDEX audit_event_patient ON audit_event (patient_id, seq);
CREATE INDEX audit_event_client ON audit_event (client_id, seq);
