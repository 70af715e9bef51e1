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
    /// The server Steward connects through (a bastion), if any.
    pub jump_server_id: Option<String>,
    /// How metrics are collected.
    pub monitoring: Monitoring,
    /// Seconds between metric samples.
    pub metrics_interval_secs: i64,
    /// Set while the endpoint (host, port, SSH user or jump server) was changed by someone who
    /// could not vouch for it: nothing connects to the server and its credential is not offered
    /// until someone with `credentials.write` confirms (`POST /servers/{id}/endpoint/confirm`).
    pub endpoint_change: Option<EndpointChange>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where Steward connects for a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub ssh_user: String,
    pub jump_server_id: Option<String>,
}

/// An endpoint change waiting for someone with `credentials.write` to confirm it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointChange {
    pub changed_at: DateTime<Utc>,
    /// Who changed it (username).
    pub changed_by: Option<String>,
    /// The last endpoint someone vouched for.
    pub previous: Option<Endpoint>,
}

/// Confirms a changed endpoint. Needs `credentials.write` on the server and a step-up (a
/// recent `POST /auth/step-up`, or the proof inline).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({}), json!({ "step_up": { "password": "correct horse battery staple" } })))]
pub struct ConfirmEndpointRequest {
    #[serde(default)]
    pub step_up: Option<crate::StepUpRequest>,
}

/// Creates or replaces a server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "name": "web-1", "host": "10.0.0.11", "port": 22, "ssh_user": "deploy", "tags": ["web", "prod"], "notes": "Front web server" })
))]
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
    /// Connect through this server (a bastion, itself reached directly), as `ssh -J` does.
    #[serde(default)]
    pub jump_server_id: Option<String>,
    /// How metrics are collected: `agentless` (default for a new server), `agent` or `off`.
    /// Absent on an update: unchanged.
    #[serde(default)]
    pub monitoring: Option<Monitoring>,
    /// Seconds between metric samples, 1–3600 (agentless polls at most every 5 s; agents
    /// take 1–60). Default 10; absent on an update: unchanged.
    #[serde(default)]
    pub metrics_interval_secs: Option<i64>,
    /// Proves the caller again inline (API tokens), for an endpoint change that keeps the
    /// credential (the caller holds `credentials.write` on the server).
    #[serde(default)]
    pub step_up: Option<crate::StepUpRequest>,
}

/// How a server's metrics are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Monitoring {
    /// The hub polls over SSH.
    Agentless,
    /// `steward-agent` pushes.
    Agent,
    /// Not collected.
    Off,
}

impl Monitoring {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Monitoring::Agentless => "agentless",
            Monitoring::Agent => "agent",
            Monitoring::Off => "off",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agentless" => Some(Monitoring::Agentless),
            "agent" => Some(Monitoring::Agent),
            "off" => Some(Monitoring::Off),
            _ => None,
        }
    }
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
#[schema(examples(
    json!({ "kind": "generate" }),
    json!({ "kind": "password", "password": "ssh-secret-8841" })
))]
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

/// The SSH host key Steward trusts for a server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostKeyInfo {
    pub algorithm: String,
    /// `SHA256:…`
    pub fingerprint: String,
    pub public_key: String,
    /// `first_use` (recorded at first contact), `pinned` (set in advance) or `accepted` (a new
    /// key accepted by a user after a change).
    pub source: String,
    pub trusted_at: DateTime<Utc>,
    /// A different key the server presented since; connections are refused until a user with
    /// `servers.write` compares and accepts it.
    pub mismatch: Option<HostKeyMismatch>,
}

/// A host key that differs from the trusted one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostKeyMismatch {
    pub fingerprint: String,
    pub public_key: String,
    pub seen_at: DateTime<Utc>,
}

/// Pins a server's host key before first contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG2tLkRSQ2nmEN6RWoYtUjrr9xwFjkf6pAcHuwVmRvEn root@web-1" })
))]
pub struct PinHostKeyRequest {
    /// `authorized_keys` form, e.g. the content of `/etc/ssh/ssh_host_ed25519_key.pub`.
    pub public_key: String,
}

/// Accepts the new host key a server presented, naming its fingerprint as seen by the user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "fingerprint": "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8" })
))]
pub struct AcceptHostKeyRequest {
    pub fingerprint: String,
}

/// The result of a connection test.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionTest {
    /// A TCP connection and SSH handshake happened.
    pub reachable: bool,
    /// The server accepted the stored credential.
    pub authenticated: bool,
    pub host_key: Option<HostKeyCheck>,
    /// Round trip of a command over the authenticated connection.
    pub latency_ms: Option<i64>,
    pub error: Option<ConnectionProblem>,
}

/// What happened to the host key in a connection test.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostKeyCheck {
    /// `first_use` (recorded now), `trusted` (matched) or `mismatch` (refused).
    pub status: String,
    pub algorithm: String,
    pub fingerprint: String,
    /// The trusted fingerprint, when the presented key differs from it.
    pub expected_fingerprint: Option<String>,
}

/// Why a connection test failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionProblem {
    /// `unreachable`, `timeout`, `host_key_mismatch`, `auth_failed`, `no_credential`,
    /// `bad_credential` or `ssh_error`.
    pub code: String,
    pub message: String,
}
