//! Validated value types. Every string that reaches the database from outside passes through
//! one of these `parse` constructors first, so a stored value is always a valid one.
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

/// Why a value was refused, and which field it was in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct ValidationError {
    /// The request field (`name`, `tags[2]`, …).
    pub field: String,
    /// What is wrong, as a sentence fragment following the field name.
    pub message: String,
}

impl ValidationError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error attributed to another field name.
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

fn check_len(field: &str, s: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let n = s.chars().count();
    if n < min {
        return Err(ValidationError::new(
            field,
            if min == 1 {
                "must not be empty".to_string()
            } else {
                format!("must be at least {min} characters long")
            },
        ));
    }
    if n > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters long"),
        ));
    }
    Ok(())
}

fn reject_controls(field: &str, s: &str, allow_newlines: bool) -> Result<(), ValidationError> {
    let bad = s
        .chars()
        .any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t' || c == '\r')));
    if bad {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

macro_rules! string_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The validated value, owned.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_type!(
    /// A login name: 1–64 of `a-z 0-9 . _ - @`, starting with a letter or digit, stored lower-case.
    Username
);
string_type!(
    /// An e-mail address (checked for shape, not deliverability).
    Email
);
string_type!(
    /// A display name for a server, role or token: 1–100 printable characters, trimmed.
    Name
);
string_type!(
    /// A host name or IP address to connect to.
    Host
);
string_type!(
    /// A POSIX user name on a managed server.
    SshUser
);
string_type!(
    /// A server tag (group): 1–50 of `a-z 0-9 . _ - : /`, stored lower-case.
    Tag
);
string_type!(
    /// Free text (notes, descriptions): up to 10,000 characters, newlines and tabs allowed.
    Notes
);

impl Username {
    /// Validates and normalizes a user name.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let field = "username";
        let s = input.trim().to_lowercase();
        check_len(field, &s, 1, 64)?;
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if !first_ok || !rest_ok {
            return Err(ValidationError::new(
                field,
                "may contain only letters a-z, digits and . _ - @, and must start with a letter or digit",
            ));
        }
        Ok(Self(s))
    }
}

impl Email {
    /// Validates an e-mail address's shape.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let field = "email";
        let s = input.trim();
        check_len(field, s, 3, 254)?;
        reject_controls(field, s, false)?;
        let valid = match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !s.chars().any(char::is_whitespace)
            }
            None => false,
        };
        if !valid {
            return Err(ValidationError::new(field, "is not an e-mail address"));
        }
        Ok(Self(s.to_string()))
    }
}

impl Name {
    /// Validates a display name.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let field = "name";
        let s = input.trim();
        check_len(field, s, 1, 100)?;
        reject_controls(field, s, false)?;
        Ok(Self(s.to_string()))
    }
}

impl Host {
    /// Validates a host name (RFC 1123 labels) or an IPv4/IPv6 address.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let field = "host";
        let s = input.trim();
        check_len(field, s, 1, 253)?;
        let unbracketed = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Self(ip.to_string()));
        }
        let s = s.to_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !s.trim_end_matches('.').split('.').all(label_ok) {
            return Err(ValidationError::new(
                field,
                "is not a valid host name or IP address",
            ));
        }
        Ok(Self(s))
    }
}

/// Validates a TCP port.
pub fn parse_port(field: &str, port: i64) -> Result<u16, ValidationError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ValidationError::new(field, "must be between 1 and 65535"))
}

impl SshUser {
    /// Validates a remote user name (the portable POSIX set, as `useradd` accepts).
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let field = "ssh_user";
        let s = input.trim();
        check_len(field, s, 1, 32)?;
        let first_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let rest_ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !first_ok || !rest_ok {
            return Err(ValidationError::new(
                field,
                "may contain only letters, digits and . _ - and must not start with - or .",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl Tag {
    /// Validates and normalizes a tag.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let field = "tags";
        let s = input.trim().to_lowercase();
        check_len(field, &s, 1, 50)?;
        let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'));
        if !first_ok || !rest_ok {
            return Err(ValidationError::new(
                field,
                "may contain only letters a-z, digits and . _ - : / and must start with a letter or digit",
            ));
        }
        Ok(Self(s))
    }

    /// Validates a list of tags: at most 32, duplicates folded, sorted.
    pub fn parse_set(field: &str, inputs: &[String]) -> Result<BTreeSet<String>, ValidationError> {
        if inputs.len() > 32 {
            return Err(ValidationError::new(field, "may hold at most 32 tags"));
        }
        inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Tag::parse(t)
                    .map(Tag::into_inner)
                    .map_err(|e| e.in_field(format!("{field}[{i}]")))
            })
            .collect()
    }
}

impl Notes {
    /// Validates free text.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let field = "notes";
        check_len(field, input, 0, 10_000)?;
        reject_controls(field, input, true)?;
        Ok(Self(input.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(
            Username::parse(" Alice ").map(Username::into_inner),
            Ok("alice".into())
        );
        assert!(Username::parse("").is_err());
        assert!(Username::parse("-bob").is_err());
        assert!(Username::parse("bob'; DROP TABLE users;--").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(
            Host::parse("Web-1.Example.com").map(Host::into_inner),
            Ok("web-1.example.com".into())
        );
        assert_eq!(
            Host::parse("127.0.0.2").map(Host::into_inner),
            Ok("127.0.0.2".into())
        );
        assert_eq!(Host::parse("[::1]").map(Host::into_inner), Ok("::1".into()));
        assert!(Host::parse("bad host").is_err());
        assert!(Host::parse("a\u{0}b").is_err());
        assert!(Host::parse("-x.com").is_err());
    }

    #[test]
    fn names_and_notes() {
        assert!(Name::parse("  ").is_err());
        assert!(Name::parse(&"x".repeat(10_000)).is_err());
        assert!(Name::parse("db\u{7}1").is_err());
        assert!(Name::parse("db'; --").is_ok());
        assert!(Notes::parse("line one\nline two\ttab").is_ok());
        assert!(Notes::parse("bell\u{7}").is_err());
    }

    #[test]
    fn tags_and_ports() {
        let set = Tag::parse_set("tags", &["Prod".into(), "prod".into(), "team:db".into()])
            .unwrap_or_default();
        assert_eq!(set.len(), 2);
        assert!(Tag::parse_set("tags", &["no spaces".into()]).is_err());
        assert!(parse_port("port", 0).is_err());
        assert!(parse_port("port", 65536).is_err());
        assert_eq!(parse_port("port", 22), Ok(22));
    }

    #[test]
    fn emails() {
        assert!(Email::parse("ops@example.com").is_ok());
        assert!(Email::parse("ops@localhost").is_err());
        assert!(Email::parse("not an email").is_err());
    }
}
