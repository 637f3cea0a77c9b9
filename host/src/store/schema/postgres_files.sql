-- Files of several instances live in the database, in chunks, not as large objects: ordinary
-- rows replicate, back up and vacuum like everything else.
CREATE TABLE blob_chunk (
    blob_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (blob_id, seq)
);
CREATE TABLE blob_object (
    blob_id TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created BIGINT NOT NULL
);
