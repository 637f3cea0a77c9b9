-- Status messages (MOTTATT, LEVERT) the receiving side owes the sender on channels that carry
-- them back (DPO, DPE): queued in the transaction that stores or delivers the incoming message,
-- sent and retried like the outbox, never shown to the archive system as messages.
CREATE TABLE status_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    sbd TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    claimed_by TEXT,
    last_error TEXT,
    created BIGINT NOT NULL,
    UNIQUE (message_id, status)
);
CREATE INDEX status_outbox_due ON status_outbox (next_attempt_at);
