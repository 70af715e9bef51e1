//! Roles: creating, changing and deleting custom roles, never granting more than the caller holds, each change audited in its transaction.
