//! A server's SSH credential (set, replace, remove; sealed by the vault) and its host-key trust (pin, accept, forget), each change audited in its transaction.
