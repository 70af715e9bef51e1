//! `Sensitive`: a string that must never be printed — passwords, keys, tokens, codes. Its
//! `Debug` is redacted, it has no `Display`, and it is wiped from memory when dropped.
use serde::{Deserialize, Serialize};

/// A secret string as it crosses the API. Read it with [`Sensitive::expose`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; keep its uses few and obvious.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (or only white space).
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sensitive(<redacted>)")
    }
}

impl From<String> for Sensitive {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl Drop for Sensitive {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_serde_is_transparent() {
        let s: Sensitive = serde_json::from_str("\"hunter2\"").unwrap_or_default();
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), "Sensitive(<redacted>)");
        #[derive(Debug, Deserialize)]
        struct Login {
            #[allow(dead_code)]
            password: Sensitive,
        }
        let l: Result<Login, _> = serde_json::from_str(r#"{"password":"hunter2"}"#);
        assert!(!format!("{l:?}").contains("hunter2"));
        assert_eq!(serde_json::to_string(&s).unwrap_or_default(), "\"hunter2\"");
    }
}
