-- Episodes, versioned resources and the links between them.
-- Times are bigint milliseconds since the Unix epoch (UTC), as on SQLite,
-- so that both databases round-trip meta.lastUpdated exactly.

-- episode is the last accepted KAP document of each episode (PHI).
-- document is NULL only inside the transaction that creates the row.
CREATE TABLE episode (
    id          text PRIMARY KEY,
    document    bytea,
    digest      text NOT NULL DEFAULT '',
    accepted_at bigint NOT NULL DEFAULT 0
);

-- resource is the current state of each resource, and the row writers lock
-- (SELECT ... FOR UPDATE). version_id 0 is a placeholder that only exists
-- inside the transaction creating the resource.
CREATE TABLE resource (
    type         text NOT NULL,
    id           text NOT NULL,
    version_id   bigint NOT NULL,
    seq          bigint NOT NULL,
    last_updated bigint NOT NULL,
    deleted      boolean NOT NULL DEFAULT false,
    patient_id   text NOT NULL DEFAULT '',
    content_hash text NOT NULL,
    PRIMARY KEY (type, id)
);

CREATE INDEX resource_patient ON resource (patient_id, type) WHERE patient_id <> '';

-- resource_version is every version ever written. seq is assigned under a
-- transaction-scoped advisory lock held until commit, so it becomes visible
-- in increasing order (see postgresDialect in postgres.go).
CREATE TABLE resource_version (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type         text NOT NULL,
    id           text NOT NULL,
    version_id   bigint NOT NULL,
    last_updated bigint NOT NULL,
    deleted      boolean NOT NULL DEFAULT false,
    patient_id   text NOT NULL DEFAULT '',
    content_hash text NOT NULL,
    body         bytea NOT NULL,
    UNIQUE (type, id, version_id)
);

CREATE INDEX resource_version_last_updated ON resource_version (last_updated);

-- episode_resource links each episode to the resources mapped from it; a
-- shared resource (a Practitioner) links to several episodes.
CREATE TABLE episode_resource (
    episode_id text NOT NULL REFERENCES episode (id),
    type       text NOT NULL,
    id         text NOT NULL,
    PRIMARY KEY (episode_id, type, id),
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);

CREATE INDEX episode_resource_resource ON episode_resource (type, id);
