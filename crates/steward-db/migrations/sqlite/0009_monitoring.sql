-- Monitoring: how each server's metrics are collected, and the agents that push them.

-- 'agentless' (the hub polls over SSH), 'agent' (steward-agent pushes) or 'off'.
ALTER TABLE servers ADD COLUMN monitoring TEXT NOT NULL DEFAULT 'agentless';
-- Seconds between samples (1 to 3600; agents accept 1 to 60).
ALTER TABLE servers ADD COLUMN metrics_interval_secs BIGINT NOT NULL DEFAULT 10;

-- One enrolled agent per server. The enrollment token is stored as its SHA-256 only.
CREATE TABLE agents (
    server_id TEXT PRIMARY KEY NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    -- Highest sample batch stored: the agent resends from the next one after a reconnect.
    last_seq BIGINT NOT NULL DEFAULT 0,
    connected BIGINT NOT NULL DEFAULT 0,
    connected_at BIGINT,
    last_seen_at BIGINT,
    agent_version TEXT,
    hostname TEXT,
    os TEXT,
    arch TEXT,
    kernel TEXT
);
