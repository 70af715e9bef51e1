-- Metrics: series, compressed chunks per series and tier, and the head log (see
-- docs/notes/tsdb.md). Series ids are integers rather than UUIDv7 text: every chunk row
-- carries one, and a 36-character key repeated in the row and its index would cost more
-- than a tenth of a byte per sample of the 2-byte budget.
CREATE TABLE metric_series (
    -- AUTOINCREMENT: an id is never reused, so a head-log row of a deleted series cannot
    -- replay into a new one
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- '' or a label such as cpu3, /, eth0, sda
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- raw samples up to and including this time are in stored chunks (NULL: none yet)
    raw_to BIGINT,
    -- 1-minute and 1-hour buckets before these times are stored (NULL: none yet)
    minute_to BIGINT,
    hour_to BIGINT,
    UNIQUE (server_id, name, label)
);

-- One row per chunk: tier 0 = raw samples, 1 = 1-minute and 2 = 1-hour buckets (min, max,
-- sum, count). data is the steward-tsdb codec's output (first byte: format version). A rowid
-- table plus the primary-key index, not WITHOUT ROWID: chunks of ~1 KiB would spill to
-- overflow pages in an index b-tree.
CREATE TABLE metric_chunks (
    series_id BIGINT NOT NULL REFERENCES metric_series(id) ON DELETE CASCADE,
    tier BIGINT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (series_id, tier, start_ms)
);

-- Write-ahead log of the in-memory head: one row per flush with every sample accepted
-- since the previous one; rows are deleted once the chunks covering them are stored.
CREATE TABLE metric_head_log (
    seq BIGINT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    data BLOB NOT NULL
);
