-- Episodes, versioned resources and the links between them.
-- Times are integer milliseconds since the Unix epoch (UTC).

-- episode is the last accepted KAP document of each episode (PHI).
-- document is NULL only inside the transaction that creates the row.
CREATE TABLE episode (
    id          TEXT PRIMARY KEY,
    document    BLOB,
    digest      TEXT NOT NULL DEFAULT '',
    accepted_at INTEGER NOT NULL DEFAULT 0
) STRICT;

-- resource is the current state of each resource, and the row writers lock.
-- version_id 0 is a placeholder that only exists inside the transaction
-- creating the resource.
CREATE TABLE resource (
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version_id   INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    patient_id   TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    PRIMARY KEY (type, id)
) STRICT;

CREATE INDEX resource_patient ON resource (patient_id, type) WHERE patient_id <> '';

-- resource_version is every version ever written. seq grows strictly with
-- every write across all resources (AUTOINCREMENT never reuses a value, and
-- the single writer commits in seq order).
CREATE TABLE resource_version (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    patient_id   TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    body         BLOB NOT NULL,
    UNIQUE (type, id, version_id)
) STRICT;

CREATE INDEX resource_version_last_updated ON resource_version (last_updated);

-- episode_resource links each episode to the resources mapped from it; a
-- shared resource (a Practitioner) links to several episodes.
CREATE TABLE episode_resource (
    episode_id TEXT NOT NULL REFERENCES episode (id),
    type       TEXT NOT NULL,
    id         TEXT NOT NULL,
    PRIMARY KEY (episode_id, type, id),
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
) STRICT;

CREATE INDEX episode_resource_resource ON episode_resource (type, id);
