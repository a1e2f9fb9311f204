-- audit_journal records how far the AuditEvent journal (internal/audit,
-- SQLite only) has been moved into audit_event and exchange: every record
-- before byte pos of journal file number file is in the database. It is
-- updated in the same transaction as the rows it covers, so a crash during
-- ingest neither loses nor duplicates a record. One row.
CREATE TABLE audit_journal (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    file INTEGER NOT NULL,
    pos  INTEGER NOT NULL
) STRICT;
