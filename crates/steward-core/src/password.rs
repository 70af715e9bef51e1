//! Password policy: long enough and not among the passwords attackers try first.
use crate::validate::ValidationError;

/// The shortest password accepted.
pub const MIN_LEN: usize = 10;
/// The longest password accepted (Argon2 cost grows with length; nobody types more).
pub const MAX_LEN: usize = 1024;

/// Checks a new password against the policy. `context` holds words the password must not be
/// built from (the username, the e-mail address).
pub fn check_policy(field: &str, password: &str, context: &[&str]) -> Result<(), ValidationError> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at least {MIN_LEN} characters long"),
        ));
    }
    if chars > MAX_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_LEN} characters long"),
        ));
    }
    if password.chars().any(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    // zxcvbn knows the common-password lists (and their l33t and keyboard-walk variants); a
    // score below 2 means the password would fall to an online guessing attack.
    let inputs: Vec<&str> = context.iter().copied().filter(|s| !s.is_empty()).collect();
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if (estimate.score() as u8) < 2 {
        return Err(ValidationError::new(
            field,
            "is too common or too easy to guess; use a longer passphrase",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_short_and_common_passwords() {
        assert!(check_policy("password", "short", &[]).is_err());
        assert!(check_policy("password", "password123", &[]).is_err());
        assert!(check_policy("password", "qwertyuiop", &[]).is_err());
        assert!(check_policy("password", "1234567890", &[]).is_err());
        assert!(check_policy("password", "aliceAlice1", &["alice"]).is_err());
    }

    #[test]
    fn accepts_a_reasonable_passphrase() {
        assert!(check_policy("password", "violet-harbour-engine-42", &["alice"]).is_ok());
    }
}
