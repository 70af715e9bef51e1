//! Personal API tokens: issuing (shown once, stored as a hash), listing and revoking, each change audited in its transaction.
