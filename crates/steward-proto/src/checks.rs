//! Health checks: probes the hub runs on their own interval (HTTP(S), TCP connect, DNS), their
//! results and uptime.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// What a check probes. Stored as JSON with the check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckSpec {
    Http(HttpCheck),
    Tcp(TcpCheck),
    Dns(DnsCheck),
}

/// The schema is `oneOf` the variants' own objects, each with the `type` tag among its
/// properties. (utoipa's form for an internally tagged enum is `allOf` of the variant and an
/// object holding `type`; with variants that refuse unknown fields, each part of that `allOf`
/// refuses the other's fields, so no value at all would be valid.)
impl PartialSchema for CheckSpec {
    fn schema() -> RefOr<Schema> {
        fn tagged(tag: &str, variant: RefOr<Schema>) -> RefOr<Schema> {
            let RefOr::T(Schema::Object(mut object)) = variant else {
                return variant;
            };
            let fields = std::mem::take(&mut object.properties);
            let tag_schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([tag]));
            object.properties.insert("type".into(), tag_schema.into());
            object.properties.extend(fields);
            object.required.insert(0, "type".into());
            RefOr::T(Schema::Object(object))
        }
        OneOfBuilder::new()
            .item(tagged("http", HttpCheck::schema()))
            .item(tagged("tcp", TcpCheck::schema()))
            .item(tagged("dns", DnsCheck::schema()))
            .description(Some(
                "What a check probes, by its `type`. Stored as JSON with the check.",
            ))
            .into()
    }
}

impl ToSchema for CheckSpec {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        // What the variants refer to (`HttpMethod`, `DnsRecordType`).
        <HttpCheck as ToSchema>::schemas(schemas);
        <TcpCheck as ToSchema>::schemas(schemas);
        <DnsCheck as ToSchema>::schemas(schemas);
    }
}

impl CheckSpec {
    /// `http`, `tcp` or `dns`.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Http(_) => "http",
            CheckSpec::Tcp(_) => "tcp",
            CheckSpec::Dns(_) => "dns",
        }
    }
}

/// The HTTP method of an HTTP check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
}

fn yes() -> bool {
    true
}

fn default_expected_status() -> String {
    "200-399".into()
}

fn default_cert_warn_days() -> u32 {
    14
}

/// An HTTP(S) request and what its answer must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// `http://` or `https://` URL.
    pub url: String,
    #[serde(default)]
    pub method: HttpMethod,
    /// Status codes that count as up: codes and ranges separated by commas (`200-299,301`).
    /// Default `200-399`.
    #[serde(default = "default_expected_status")]
    pub expected_status: String,
    /// Text the body must contain (or, with `keyword_absent`, must not contain). Only the
    /// first MiB of the body is searched. Not with `HEAD`.
    #[serde(default)]
    pub keyword: Option<String>,
    #[serde(default)]
    pub keyword_absent: bool,
    /// Follow redirects (at most 10). Default true.
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Verify the server's TLS certificate. When off, the certificate's expiry is still
    /// reported. Default true.
    #[serde(default = "yes")]
    pub verify_tls: bool,
    /// Slower than this counts as degraded.
    #[serde(default)]
    pub max_response_ms: Option<u32>,
    /// A certificate expiring within this many days counts as degraded (an expired one as
    /// down). Default 14; 0 turns the warning off.
    #[serde(default = "default_cert_warn_days")]
    pub cert_warn_days: u32,
}

/// A TCP connection to a port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    pub host: String,
    pub port: u16,
}

/// A DNS record type a DNS check asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecordType {
    #[default]
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
}

impl DnsRecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsRecordType::A => "A",
            DnsRecordType::Aaaa => "AAAA",
            DnsRecordType::Cname => "CNAME",
            DnsRecordType::Mx => "MX",
            DnsRecordType::Txt => "TXT",
        }
    }
}

/// A DNS lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// The name to resolve (`example.com`).
    pub name: String,
    #[serde(default)]
    pub record_type: DnsRecordType,
    /// The name server to ask (`192.0.2.53` or `192.0.2.53:5353`); the hub's resolvers when
    /// absent.
    #[serde(default)]
    pub resolver: Option<String>,
    /// A value one of the answers must equal (an address, a host name, `10 mail.example.com`
    /// for MX, the text for TXT).
    #[serde(default)]
    pub expected: Option<String>,
}

/// The outcome of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Up,
    /// Answering, but with a warning: slow, or a certificate about to expire.
    Degraded,
    Down,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Up => "up",
            CheckStatus::Degraded => "degraded",
            CheckStatus::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "up" => Some(CheckStatus::Up),
            "degraded" => Some(CheckStatus::Degraded),
            "down" => Some(CheckStatus::Down),
            _ => None,
        }
    }
}

/// A check to create, or the new definition of one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "name": "Shop", "spec": { "type": "http", "url": "https://shop.example.com/health", "keyword": "ok" } }),
    json!({ "name": "PostgreSQL on db-1", "server_id": "0190f3c4-8b6d-7a2e-9c1f-3d5e7a9b1c2d", "spec": { "type": "tcp", "host": "10.0.0.5", "port": 5432 }, "interval_secs": 30, "timeout_secs": 5 }),
    json!({ "name": "MX record", "spec": { "type": "dns", "name": "example.com", "record_type": "MX", "expected": "10 mail.example.com" }, "enabled": false })
))]
pub struct CheckInput {
    pub name: String,
    /// The server the check belongs to (its tags decide who sees it); none for a standalone
    /// check, which needs permissions on every server.
    #[serde(default)]
    pub server_id: Option<String>,
    pub spec: CheckSpec,
    /// Seconds between runs, 10 to 86400. Default 60.
    #[serde(default)]
    pub interval_secs: Option<u32>,
    /// Seconds a run may take, 1 to 60 and less than the interval. Default 10.
    #[serde(default)]
    pub timeout_secs: Option<u32>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Share of runs that were up (or degraded), in percent; absent without runs in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Uptime {
    pub h24: Option<f64>,
    pub d7: Option<f64>,
    pub d30: Option<f64>,
}

/// The last run of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckLast {
    pub at: DateTime<Utc>,
    pub status: CheckStatus,
    pub latency_ms: Option<i64>,
    pub message: String,
    pub http_status: Option<i64>,
    /// Days until the TLS certificate expires (negative: expired).
    pub cert_days_left: Option<i64>,
}

/// A health check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Check {
    pub id: String,
    pub name: String,
    pub server_id: Option<String>,
    pub server_name: Option<String>,
    pub spec: CheckSpec,
    pub interval_secs: i64,
    pub timeout_secs: i64,
    pub enabled: bool,
    /// The scan proposal it was made from.
    pub proposal_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Absent until the first run.
    pub last: Option<CheckLast>,
    pub uptime: Uptime,
}

/// Filters for the check list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    /// Only checks of this server.
    pub server_id: Option<String>,
    /// Only checks whose last run had this status (`up`, `degraded`, `down`, or `pending` for
    /// none yet).
    pub status: Option<String>,
    /// Case-insensitive part of the name.
    pub q: Option<String>,
}

/// One stored run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckResultPoint {
    pub at: DateTime<Utc>,
    pub status: CheckStatus,
    pub latency_ms: Option<i64>,
    /// Why it was not up (empty when up).
    pub message: String,
    pub http_status: Option<i64>,
    pub cert_days_left: Option<i64>,
}

/// The window of results to return.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckResultQuery {
    /// How far back, 1 to 720 hours. Default 24.
    pub hours: Option<i64>,
}

/// Runs of a check, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckResults {
    pub items: Vec<CheckResultPoint>,
    /// Whether older runs in the window were left out (at most 5000 are returned).
    pub truncated: bool,
}
