-- Guards against scope escapes (issue 13).

-- A server whose address, port, SSH user or jump server was changed by someone who could not
-- vouch for the new endpoint (no credentials.write there, or no recent step-up). Its
-- credential stays sealed but is not offered to anyone, and nothing connects to the server,
-- until someone with credentials.write confirms the endpoint. `endpoint_previous` is the last
-- confirmed endpoint (JSON: host, port, ssh_user, jump_server_id), shown beside the new one.
ALTER TABLE servers ADD COLUMN endpoint_changed_at BIGINT;
ALTER TABLE servers ADD COLUMN endpoint_changed_by TEXT;
ALTER TABLE servers ADD COLUMN endpoint_previous TEXT;

-- Which servers a script may run on and who may edit it: NULL for the whole organization
-- (edited with scripts.write on every server), otherwise a JSON array of tags (edited with
-- scripts.write covering them; runs only on servers carrying one of them).
ALTER TABLE scripts ADD COLUMN owner_tags TEXT;

-- The script versions each user has written or run: running any other version needs a step-up.
CREATE TABLE script_reviews (
    user_id TEXT NOT NULL,
    script_id TEXT NOT NULL REFERENCES scripts(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    reviewed_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, script_id, version)
);

-- Secret parameter values of a run, sealed in `secrets` while the run is going (JSON object of
-- parameter name to secret id); deleted when the run ends.
ALTER TABLE executions ADD COLUMN secret_parameters TEXT;

-- A terminal recording stopped at the size cap (the shell went on).
ALTER TABLE terminal_sessions ADD COLUMN recording_capped_at BIGINT;
