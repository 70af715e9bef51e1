-- The script library, with every version kept.
CREATE TABLE scripts (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- sh | bash
    shell TEXT NOT NULL,
    body TEXT NOT NULL,
    -- JSON array of parameter definitions
    parameters TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_by TEXT,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE script_versions (
    script_id TEXT NOT NULL REFERENCES scripts(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    shell TEXT NOT NULL,
    body TEXT NOT NULL,
    parameters TEXT NOT NULL,
    changed_by TEXT,
    changed_by_name TEXT,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (script_id, version)
);

-- Runs of a script or an ad-hoc command on a set of servers.
CREATE TABLE executions (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    script_id TEXT REFERENCES scripts(id) ON DELETE SET NULL,
    script_name TEXT,
    script_version BIGINT,
    -- the full text that ran (the script body, or the ad-hoc command)
    command TEXT NOT NULL,
    shell TEXT NOT NULL,
    -- JSON object of parameter values
    parameters TEXT NOT NULL,
    created_by TEXT,
    created_by_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    -- running | finished | cancelled | interrupted
    status TEXT NOT NULL,
    timeout_secs BIGINT NOT NULL,
    concurrency BIGINT NOT NULL,
    stop_on_failure BIGINT NOT NULL,
    cancelled_by_name TEXT,
    hosts_total BIGINT NOT NULL,
    hosts_ok BIGINT NOT NULL DEFAULT 0,
    hosts_failed BIGINT NOT NULL DEFAULT 0,
    hosts_timed_out BIGINT NOT NULL DEFAULT 0,
    hosts_error BIGINT NOT NULL DEFAULT 0,
    hosts_cancelled BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX executions_org_created ON executions(org_id, created_at);

CREATE TABLE execution_hosts (
    execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    server_id TEXT NOT NULL,
    server_name TEXT NOT NULL,
    -- pending | running | ok | failed | timed_out | error | cancelled | skipped
    status TEXT NOT NULL,
    exit_code BIGINT,
    exit_signal TEXT,
    error_code TEXT,
    error TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    stdout BLOB NOT NULL,
    stderr BLOB NOT NULL,
    stdout_bytes BIGINT NOT NULL DEFAULT 0,
    stderr_bytes BIGINT NOT NULL DEFAULT 0,
    truncated BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, server_id)
);
CREATE INDEX execution_hosts_server ON execution_hosts(server_id);
