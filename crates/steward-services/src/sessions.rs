//! Login sessions: listing one's own or a user's, ending one, all others or all, each change audited in its transaction.
