//! The server inventory: creating, changing and deleting servers, with what an endpoint change does to their trust, each change audited in its transaction.
