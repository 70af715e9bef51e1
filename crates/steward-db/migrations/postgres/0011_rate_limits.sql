-- Rate limits shared by every instance: hits per key in a fixed window that starts with the
-- window's first hit (`check_run:user:<id>`, `check_run:check:<id>` …). Old rows are pruned.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL
);
