//! The script library: creating, changing (a new version, reviewed by its writer) and deleting scripts within the caller's owner scope, each change audited in its transaction.
