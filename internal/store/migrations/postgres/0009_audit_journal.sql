-- audit_journal records how far the AuditEvent journal (internal/audit)
-- has been moved into audit_event and exchange. PostgreSQL does not use
-- the journal (its AuditEvents are group-committed to the database), but
-- both dialects keep the same schema. One row.
CREATE TABLE audit_journal (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    file BIGINT NOT NULL,
    pos  BIGINT NOT NULL
);
