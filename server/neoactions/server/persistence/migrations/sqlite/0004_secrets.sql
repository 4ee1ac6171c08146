-- A tenant's secrets, encrypted (AES-GCM under the master key; see neoactions.server.secrets).
-- The value is never stored in the clear: ciphertext carries the key id, a nonce and the tag.
CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    ciphertext  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    created_by  TEXT NOT NULL DEFAULT ''
);
