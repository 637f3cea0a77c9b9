-- Small files of outgoing messages kept in their own row, sealed by the blob store, instead of
-- as a blob: written with the message, read with it, gone with it. blob_id is '' for them.
ALTER TABLE message_file ADD COLUMN data BLOB;
