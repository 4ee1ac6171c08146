-- Installed plugins (admin only): one row per installed version, and the artifacts by digest.
CREATE TABLE plugins (
    name            TEXT NOT NULL,
    version         TEXT NOT NULL,
    manifest        TEXT NOT NULL,             -- JSON, as signed
    artifact_sha256 TEXT NOT NULL,
    grants          TEXT NOT NULL DEFAULT '[]', -- JSON list: net:HOST, secret:NAME
    registry        TEXT NOT NULL DEFAULT '',
    signed_by       TEXT NOT NULL DEFAULT '',
    installed_by    TEXT NOT NULL DEFAULT '',
    installed_at    INTEGER NOT NULL,          -- microseconds since the Unix epoch, UTC
    status          TEXT NOT NULL DEFAULT 'active',
    PRIMARY KEY (name, version)
);
CREATE TABLE plugin_artifacts (
    sha256 TEXT PRIMARY KEY,
    data   BLOB NOT NULL
);
