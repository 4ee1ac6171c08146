-- A tenant's secrets, encrypted (AES-GCM under the master key; see neoactions.server.secrets).
-- The value is never stored in the clear: ciphertext carries the key id, a nonce and the tag.
CREATE TABLE secrets (
    name        text PRIMARY KEY,
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     integer NOT NULL,
    created_by  text NOT NULL DEFAULT ''
);
