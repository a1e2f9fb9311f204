-- Search index. One search_version row per resource version (seq is
-- resource_version.seq), with until_seq set to the seq of the next version
-- of the same resource when one is written, so that a search can be run
-- "as of" a seq: the versions current then are those with
-- seq <= asof AND (until_seq IS NULL OR until_seq > asof). Paging runs every
-- page of a search as of the seq of its first page (keyset on immutable
-- rows), so writes between pages neither skip nor repeat results.
-- Index values (search_token, search_ref, search_date) hang off the
-- version's seq; param is "Type.name", so each index is per type.
CREATE TABLE search_version (
    seq          INTEGER PRIMARY KEY,
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    patient_id   TEXT NOT NULL DEFAULT '',
    last_updated INTEGER NOT NULL,
    sort_date    INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    until_seq    INTEGER
) STRICT;

CREATE INDEX search_version_type ON search_version (type, seq);
CREATE INDEX search_version_resource ON search_version (type, id, seq);
CREATE INDEX search_version_updated ON search_version (type, last_updated, seq);
CREATE INDEX search_version_date ON search_version (type, sort_date, seq);
CREATE INDEX search_version_patient ON search_version (patient_id, seq);

CREATE TABLE search_token (
    seq    INTEGER NOT NULL,
    param  TEXT NOT NULL,
    system TEXT NOT NULL,
    code   TEXT NOT NULL
) STRICT;

CREATE INDEX search_token_code ON search_token (param, code, system, seq);
CREATE INDEX search_token_seq ON search_token (seq, param);

CREATE TABLE search_ref (
    seq   INTEGER NOT NULL,
    param TEXT NOT NULL,
    ref   TEXT NOT NULL
) STRICT;

CREATE INDEX search_ref_ref ON search_ref (param, ref, seq);
CREATE INDEX search_ref_seq ON search_ref (seq, param);

CREATE TABLE search_date (
    seq   INTEGER NOT NULL,
    param TEXT NOT NULL,
    lo    INTEGER NOT NULL,
    hi    INTEGER NOT NULL
) STRICT;

CREATE INDEX search_date_lo ON search_date (param, lo, seq);
CREATE INDEX search_date_seq ON search_date (seq, param);
