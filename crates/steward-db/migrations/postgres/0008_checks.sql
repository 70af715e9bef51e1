-- Health checks the hub runs on their own interval, their results, and hourly roll-ups that
-- keep uptime over 30 days cheap to compute.
CREATE TABLE checks (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    -- The server the check belongs to (its tags decide who sees it); NULL for a standalone
    -- check. A check about a deleted server goes with it.
    server_id TEXT REFERENCES servers(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- http | tcp | dns
    kind TEXT NOT NULL,
    -- JSON object (the API's CheckSpec)
    spec TEXT NOT NULL,
    interval_secs BIGINT NOT NULL,
    timeout_secs BIGINT NOT NULL,
    enabled BIGINT NOT NULL,
    -- The scan proposal it was made from, if any.
    proposal_id TEXT REFERENCES proposals(id) ON DELETE SET NULL,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- When the scheduler runs it next; claimed by moving it forward.
    next_run_at BIGINT NOT NULL,
    -- The last run, for listing without reading the results.
    last_at BIGINT,
    -- up | degraded | down
    last_status TEXT,
    last_latency_ms BIGINT,
    last_message TEXT,
    last_http_status BIGINT,
    last_cert_days BIGINT
);
CREATE INDEX checks_org_name ON checks (org_id, name);
CREATE INDEX checks_server ON checks (server_id);
CREATE INDEX checks_due ON checks (enabled, next_run_at);

-- One row per run; kept for the result retention (default 30 days).
CREATE TABLE check_results (
    check_id TEXT NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    -- up | degraded | down
    status TEXT NOT NULL,
    latency_ms BIGINT,
    http_status BIGINT,
    cert_days BIGINT,
    -- Why it was not up; NULL when up.
    message TEXT,
    PRIMARY KEY (check_id, at)
);
CREATE INDEX check_results_at ON check_results (at);

-- Counts per check and hour (start of the hour, ms), kept for 400 days.
CREATE TABLE check_rollups (
    check_id TEXT NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    hour BIGINT NOT NULL,
    up BIGINT NOT NULL,
    degraded BIGINT NOT NULL,
    down BIGINT NOT NULL,
    latency_sum BIGINT NOT NULL,
    latency_count BIGINT NOT NULL,
    PRIMARY KEY (check_id, hour)
);
CREATE INDEX check_rollups_hour ON check_rollups (hour);
