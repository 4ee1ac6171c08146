-- The audit log: one row per configuration change (who, when, what, under which request).
-- Appended only. `change` is redacted before it is written (never a secret value).
CREATE TABLE audit_entries (
    id             uuid PRIMARY KEY,
    at             timestamptz NOT NULL,
    principal      text NOT NULL DEFAULT '',
    principal_name text NOT NULL DEFAULT '',
    request_id     text NOT NULL DEFAULT '',
    -- "C" collation: byte order, so a kind prefix is an exact, indexable range
    kind           text COLLATE "C" NOT NULL,
    target         text NOT NULL DEFAULT '',
    change         jsonb NOT NULL
);
CREATE INDEX audit_entries_at ON audit_entries (at, id);
CREATE INDEX audit_entries_kind_at ON audit_entries (kind, at, id);
