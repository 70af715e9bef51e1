//! `Secret`: a setting that must not show in logs or `Debug` output (the metrics token, a
//! database URL that may hold a password).
use serde::{Deserialize, Serialize};

/// A string setting whose `Debug` is redacted. It has no `Display`; code that needs the value
/// reads it as a `str` (it dereferences to one). It serializes as the plain string, for
/// [`super::overlay`] only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::ops::Deref for Secret {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}
