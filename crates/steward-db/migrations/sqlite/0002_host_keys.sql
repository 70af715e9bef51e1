-- The SSH host key trusted for each server, and the last different key a server presented.
CREATE TABLE host_keys (
    server_id TEXT PRIMARY KEY NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    algorithm TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key TEXT NOT NULL,
    -- first_use | pinned | accepted
    source TEXT NOT NULL,
    trusted_at BIGINT NOT NULL,
    trusted_by TEXT,
    mismatch_public_key TEXT,
    mismatch_fingerprint TEXT,
    mismatch_at BIGINT
);
