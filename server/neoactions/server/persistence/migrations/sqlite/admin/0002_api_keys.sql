-- API keys (SPEC §9): every tenant's keys live in the admin schema, so a call is
-- authenticated before its tenant is known. Only the token's SHA-256 is kept.
CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    tenant        text NOT NULL,
    name          text NOT NULL,
    role          text NOT NULL,
    token_hash    text NOT NULL,
    created_at    integer NOT NULL,
    created_by    text NOT NULL DEFAULT '',
    last_used_at  integer,
    expires_at    integer,
    revoked_at    integer,
    publish_rate  real NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);
