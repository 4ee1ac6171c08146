-- Installed plugins (admin only): one row per installed version, and the artifacts by digest.
CREATE TABLE plugins (
    name            text NOT NULL,
    version         text NOT NULL,
    manifest        jsonb NOT NULL,
    artifact_sha256 text NOT NULL,
    grants          jsonb NOT NULL DEFAULT '[]',
    registry        text NOT NULL DEFAULT '',
    signed_by       text NOT NULL DEFAULT '',
    installed_by    text NOT NULL DEFAULT '',
    installed_at    timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'active',
    PRIMARY KEY (name, version)
);
CREATE TABLE plugin_artifacts (
    sha256 text PRIMARY KEY,
    data   bytea NOT NULL
);
