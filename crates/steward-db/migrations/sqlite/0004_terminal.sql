-- Web terminal sessions and their recordings (asciicast v2, zstd-compressed, in chunks
-- written every few seconds). User and server are copied by name so the record outlives them.
CREATE TABLE terminal_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    server_id TEXT NOT NULL,
    server_name TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    duration_ms BIGINT,
    -- output bytes recorded
    bytes BIGINT NOT NULL DEFAULT 0,
    -- closed | exited | idle_timeout | terminated | shutdown | error | interrupted
    end_reason TEXT,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL
);
CREATE INDEX terminal_sessions_org_started ON terminal_sessions(org_id, started_at);
CREATE INDEX terminal_sessions_user ON terminal_sessions(user_id);

CREATE TABLE terminal_recording_chunks (
    session_id TEXT NOT NULL REFERENCES terminal_sessions(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    -- one complete zstd frame
    data BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
);
