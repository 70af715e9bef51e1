//! The server inventory and credentials.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Sensitive;

/// How Steward authenticates to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Key,
    Password,
}

impl AuthMethod {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Key => "key",
            AuthMethod::Password => "password",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "key" => Some(AuthMethod::Key),
            "password" => Some(AuthMethod::Password),
            _ => None,
        }
    }
}

/// A managed server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub ssh_user: String,
    pub auth_method: AuthMethod,
    pub tags: Vec<String>,
    pub notes: String,
    /// Kind of the attached credential, if any.
    pub credential_kind: Option<CredentialKind>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates or replaces a server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerInput {
    pub name: String,
    pub host: String,
    /// Default 22.
    #[serde(default)]
    pub port: Option<i64>,
    pub ssh_user: String,
    /// Default `key`.
    #[serde(default)]
    pub auth_method: Option<AuthMethod>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub notes: String,
}

/// A page of servers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerPage {
    pub items: Vec<Server>,
    /// How many match the filter in all.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Filters and paging for the server list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServerQuery {
    /// Case-insensitive text in name, host or notes.
    pub q: Option<String>,
    /// Only servers with this tag; comma-separate several (all must match).
    pub tag: Option<String>,
    /// `name` (default), `host`, `created_at` or `updated_at`.
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
    /// 1–500, default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A tag in use and how many visible servers carry it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TagCount {
    pub tag: String,
    pub count: i64,
}

/// What kind of secret a credential holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    PrivateKey,
    GeneratedKey,
    Password,
}

impl CredentialKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::PrivateKey => "private_key",
            CredentialKind::GeneratedKey => "generated_key",
            CredentialKind::Password => "password",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private_key" => Some(CredentialKind::PrivateKey),
            "generated_key" => Some(CredentialKind::GeneratedKey),
            "password" => Some(CredentialKind::Password),
            _ => None,
        }
    }
}

/// Sets a server's credential. Secrets are write-only: no response ever contains them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialInput {
    /// Upload a private key (OpenSSH, PEM or PuTTY), optionally encrypted.
    PrivateKey {
        #[schema(value_type = String, format = Password)]
        private_key: Sensitive,
        #[serde(default)]
        #[schema(value_type = Option<String>, format = Password)]
        passphrase: Option<Sensitive>,
    },
    /// A password for the SSH user.
    Password {
        #[schema(value_type = String, format = Password)]
        password: Sensitive,
    },
    /// Have Steward generate an ed25519 key pair; paste the public key into authorized_keys.
    /// (A struct variant, so stray fields such as a private key are refused, not ignored.)
    Generate {},
}

/// A credential's public facts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CredentialInfo {
    pub kind: CredentialKind,
    pub key_type: Option<String>,
    /// The public key in `authorized_keys` form (keys only).
    pub public_key: Option<String>,
    /// `SHA256:…` (keys only).
    pub fingerprint: Option<String>,
    pub has_passphrase: bool,
    pub updated_at: DateTime<Utc>,
}
