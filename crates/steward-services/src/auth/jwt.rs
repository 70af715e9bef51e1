//! Short-lived access tokens: HS256 JWTs signed with a key kept (sealed) in the database, so
//! every Steward instance on the same database accepts the others' tokens.
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const AUDIENCE: &str = "steward";

/// What an access token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Organization id.
    pub org: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// The signing key, ready for both directions.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

impl JwtKeys {
    /// From the raw secret.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Signs an access token for a session.
    pub fn issue(
        &self,
        user_id: &str,
        session_id: &str,
        org_id: &str,
        now_secs: i64,
        ttl_secs: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            org: org_id.to_string(),
            aud: AUDIENCE.to_string(),
            iat: now_secs,
            exp: now_secs + ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Verifies signature, audience and expiry.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}
