-- The integration point's tables. Times are milliseconds since the Unix epoch and flags are 0/1,
-- so that the same queries read both dialects. Written in SQLite's spelling; PostgreSQL's
-- differs only in its auto-increment keys, which the migration rewrites (see schema.rs).
CREATE TABLE conversation (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    sender TEXT,
    sender_identifier TEXT,
    receiver TEXT,
    receiver_identifier TEXT,
    process_identifier TEXT,
    document_identifier TEXT,
    message_reference TEXT,
    message_title TEXT,
    service_identifier TEXT,
    channel TEXT,
    external_system_reference TEXT,
    expiry BIGINT,
    last_update BIGINT NOT NULL,
    finished BIGINT NOT NULL DEFAULT 0,
    pollable BIGINT NOT NULL DEFAULT 0,
    UNIQUE (message_id, direction)
);
CREATE INDEX conversation_pollable ON conversation (pollable, channel);
CREATE INDEX conversation_expiry ON conversation (finished, expiry);
CREATE INDEX conversation_conversation_id ON conversation (conversation_id);

CREATE TABLE message_status (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conv_id BIGINT NOT NULL REFERENCES conversation (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    description TEXT,
    raw_receipt TEXT,
    last_update BIGINT NOT NULL,
    UNIQUE (conv_id, status)
);
CREATE INDEX message_status_last_update ON message_status (last_update);

CREATE TABLE status_queue (
    status_id BIGINT PRIMARY KEY REFERENCES message_status (id) ON DELETE CASCADE
);

CREATE TABLE out_message (
    message_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    process_identifier TEXT NOT NULL,
    document_type TEXT NOT NULL,
    sender_identifier TEXT NOT NULL,
    receiver_identifier TEXT,
    service_identifier TEXT NOT NULL,
    channel TEXT NOT NULL,
    sbd TEXT NOT NULL,
    service_record TEXT NOT NULL,
    expiry BIGINT,
    queued BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL,
    last_updated BIGINT NOT NULL
);

CREATE TABLE message_file (
    message_id TEXT NOT NULL REFERENCES out_message (message_id) ON DELETE CASCADE,
    ordinal BIGINT NOT NULL,
    filename TEXT NOT NULL,
    title TEXT,
    mime_type TEXT NOT NULL,
    primary_document BIGINT NOT NULL,
    size BIGINT NOT NULL,
    blob_id TEXT NOT NULL,
    PRIMARY KEY (message_id, filename)
);

CREATE TABLE outbox (
    message_id TEXT PRIMARY KEY REFERENCES out_message (message_id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    claimed_by TEXT,
    last_error TEXT,
    created BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at);

CREATE TABLE dead_letter (
    message_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    reason TEXT NOT NULL,
    sbd TEXT NOT NULL,
    dead_at BIGINT NOT NULL
);

CREATE TABLE in_message (
    message_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    process_identifier TEXT,
    document_type TEXT,
    sender_identifier TEXT,
    receiver_identifier TEXT,
    service_identifier TEXT NOT NULL,
    channel TEXT NOT NULL,
    sbd TEXT NOT NULL,
    package_blob TEXT,
    lock_until BIGINT,
    last_updated BIGINT NOT NULL
);
CREATE INDEX in_message_peek ON in_message (last_updated);

CREATE TABLE subscription (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    push_endpoint TEXT NOT NULL,
    resource TEXT NOT NULL,
    event TEXT NOT NULL,
    filter TEXT,
    UNIQUE (name, push_endpoint)
);

CREATE TABLE webhook_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id BIGINT NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created BIGINT NOT NULL
);
CREATE INDEX webhook_event_order ON webhook_event (subscription_id, id);
