-- The tenant registry; lives only in admin.db.
CREATE TABLE tenants (
    slug         TEXT PRIMARY KEY,
    display_name TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL  -- microseconds since the Unix epoch, UTC
);
