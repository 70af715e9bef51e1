-- Service discovery: each scan of a server, with its structured result (JSON), kept as history.
CREATE TABLE scans (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    -- user | schedule
    trigger_kind TEXT NOT NULL,
    actor_id TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    -- running | succeeded | failed
    status TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    result TEXT
);
CREATE INDEX scans_server_started ON scans (server_id, started_at);

-- Next steps proposed from scans (a health check, a backup job for a database found), for later
-- features to act on. One row per (server, dedupe key): a re-scan never duplicates a proposal,
-- and a dismissed one stays dismissed.
CREATE TABLE proposals (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    -- health_check | backup_job
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    spec TEXT NOT NULL,
    -- proposed | accepted | dismissed
    status TEXT NOT NULL,
    scan_id TEXT,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    UNIQUE (server_id, dedupe_key)
);
