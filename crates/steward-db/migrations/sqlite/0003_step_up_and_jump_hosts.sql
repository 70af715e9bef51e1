-- Step-up authentication: when the session last re-entered its password or a TOTP code.
ALTER TABLE sessions ADD COLUMN step_up_at BIGINT;

-- A server reached through another one (a bastion), as `ssh -J` does.
ALTER TABLE servers ADD COLUMN jump_server_id TEXT REFERENCES servers(id) ON DELETE SET NULL;
