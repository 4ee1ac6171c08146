-- The audit log: one row per configuration change (who, when, what, under which request).
-- Appended only. `change` is JSON text, redacted before it is written (never a secret value).
CREATE TABLE audit_entries (
    id             TEXT PRIMARY KEY,
    at             INTEGER NOT NULL,
    principal      TEXT NOT NULL DEFAULT '',
    principal_name TEXT NOT NULL DEFAULT '',
    request_id     TEXT NOT NULL DEFAULT '',
    kind           TEXT NOT NULL,
    target         TEXT NOT NULL DEFAULT '',
    change         TEXT NOT NULL
);
CREATE INDEX audit_entries_at ON audit_entries (at, id);
CREATE INDEX audit_entries_kind_at ON audit_entries (kind, at, id);
