-- The tenant registry; lives only in the admin schema.
CREATE TABLE tenants (
    slug         text PRIMARY KEY,
    display_name text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL
);
