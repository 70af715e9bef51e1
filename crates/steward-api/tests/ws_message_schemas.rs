//! The WebSocket messages (the live view, a run's stream, the terminal) are not operations, but
//! the OpenAPI document carries them as components and the UI's types are generated from them.
//! Here one value of every variant of each message type is serialized as Steward sends it (and
//! the client messages read back) and validated against its component in the document (JSON
//! Schema 2020-12, `$ref`s resolved in the document's components). The document is closed for
//! the check: an object may hold only the properties its schema names, so a field serde emits
//! and the schema leaves out fails as well as a missing or mistyped one.
//!
//! A new variant fails until it has a sample here: `tag` matches every variant (adding one does
//! not compile until it is named there) and the tags of the samples must be the tags of the
//! schema's `oneOf` branches, each a `type` property with one value (what makes the generated
//! TypeScript a discriminated union). The last tests show the check catching drift.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use steward_proto::{
    Execution, ExecutionDetail, ExecutionEvent, ExecutionHost, ExecutionSummary, HostStatus,
    LiveClientMessage, LivePoint, LiveServerMessage, ServerMetrics, Shell, TerminalClientMessage,
    TerminalServerMessage,
};

/// The tag serde writes for each variant; exhaustive, so a new variant is named here.
trait Tagged: Serialize {
    fn tag(&self) -> &'static str;
}

impl Tagged for LiveClientMessage {
    fn tag(&self) -> &'static str {
        match self {
            LiveClientMessage::Subscribe { .. } => "subscribe",
        }
    }
}

impl Tagged for LiveServerMessage {
    fn tag(&self) -> &'static str {
        match self {
            LiveServerMessage::Snapshot { .. } => "snapshot",
            LiveServerMessage::Update { .. } => "update",
            LiveServerMessage::Error { .. } => "error",
        }
    }
}

impl Tagged for ExecutionEvent {
    fn tag(&self) -> &'static str {
        match self {
            ExecutionEvent::Snapshot { .. } => "snapshot",
            ExecutionEvent::Output { .. } => "output",
            ExecutionEvent::Host { .. } => "host",
            ExecutionEvent::Finished { .. } => "finished",
        }
    }
}

impl Tagged for TerminalClientMessage {
    fn tag(&self) -> &'static str {
        match self {
            TerminalClientMessage::Resize { .. } => "resize",
        }
    }
}

impl Tagged for TerminalServerMessage {
    fn tag(&self) -> &'static str {
        match self {
            TerminalServerMessage::Ready { .. } => "ready",
            TerminalServerMessage::Error { .. } => "error",
            TerminalServerMessage::Closed { .. } => "closed",
            TerminalServerMessage::RecordingStopped { .. } => "recording_stopped",
        }
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + secs, 0).unwrap()
}

/// A server with every optional value set (`full`), or as few as serde writes.
fn server(full: bool) -> ServerMetrics {
    let some = |v: f64| full.then_some(v);
    ServerMetrics {
        id: "0190f3c4-8b6d-7a2e-9c1f-3d5e7a9b1c2d".into(),
        name: "web-1".into(),
        tags: vec!["web".into()],
        monitoring: if full { "agent" } else { "off" }.into(),
        interval_secs: 10,
        status: if full {
            HostStatus::Degraded
        } else {
            HostStatus::Unknown
        },
        last_sample_at: full.then(|| at(0)),
        cpu_pct: some(12.5),
        load1: some(0.42),
        mem_used_pct: some(61.0),
        disk_used_pct: some(96.1),
        disk_mount: full.then(|| "/".into()),
        net_rx_bps: some(1024.0),
        net_tx_bps: some(2048.0),
        failed_units: some(1.0),
        checks_down: i64::from(full),
        sparkline: full.then(|| vec![10.0, 12.5]),
        points: full.then(|| {
            vec![LivePoint {
                name: "disk.used_pct".into(),
                label: "/".into(),
                value: 96.1,
            }]
        }),
    }
}

fn summary() -> ExecutionSummary {
    ExecutionSummary {
        total: 2,
        ok: 1,
        failed: 1,
        ..ExecutionSummary::default()
    }
}

fn host(done: bool) -> ExecutionHost {
    ExecutionHost {
        server_id: "0190f3c4-8b6d-7a2e-9c1f-3d5e7a9b1c2d".into(),
        server_name: "web-1".into(),
        status: if done { "failed" } else { "pending" }.into(),
        exit_code: done.then_some(2),
        exit_signal: None,
        error_code: done.then(|| "unreachable".into()),
        error: done.then(|| "connection refused".into()),
        started_at: done.then(|| at(1)),
        finished_at: done.then(|| at(2)),
        duration_ms: done.then_some(1000),
        stdout: "hello\n".into(),
        stderr: String::new(),
        stdout_bytes: 6,
        stderr_bytes: 0,
        truncated: false,
    }
}

fn detail() -> ExecutionDetail {
    ExecutionDetail {
        execution: Execution {
            id: "0190f3c4-8b6d-7a2e-9c1f-000000000001".into(),
            script_id: Some("0190f3c4-8b6d-7a2e-9c1f-000000000002".into()),
            script_name: Some("Disk usage".into()),
            script_version: Some(3),
            command: "du -xh \"$DIR\"".into(),
            shell: Shell::Bash,
            parameters: BTreeMap::from([
                ("DIR".into(), "/var".into()),
                ("TOKEN".into(), "***".into()),
            ]),
            created_by: "alice".into(),
            created_at: at(0),
            finished_at: None,
            status: "running".into(),
            timeout_secs: 300,
            concurrency: 10,
            stop_on_failure: false,
            cancelled_by: None,
            summary: summary(),
        },
        hosts: vec![host(false), host(true)],
        secret_parameters: vec!["TOKEN".into()],
    }
}

fn live_client() -> Vec<LiveClientMessage> {
    vec![
        LiveClientMessage::Subscribe {
            fleet: true,
            servers: vec![],
        },
        LiveClientMessage::Subscribe {
            fleet: false,
            servers: vec!["0190f3c4-8b6d-7a2e-9c1f-3d5e7a9b1c2d".into()],
        },
    ]
}

fn live_server() -> Vec<LiveServerMessage> {
    vec![
        LiveServerMessage::Snapshot {
            part: 0,
            parts: 2,
            at: at(0),
            servers: vec![server(true), server(false)],
        },
        LiveServerMessage::Update {
            at: at(1),
            servers: vec![server(true)],
            removed: vec!["0190f3c4-8b6d-7a2e-9c1f-000000000009".into()],
        },
        // `removed` left out when empty.
        LiveServerMessage::Update {
            at: at(2),
            servers: vec![],
            removed: vec![],
        },
        LiveServerMessage::Error {
            code: "bad_message".into(),
            message: "expected a subscribe message".into(),
        },
    ]
}

fn run_stream() -> Vec<ExecutionEvent> {
    vec![
        ExecutionEvent::Snapshot {
            seq: 0,
            execution: detail(),
        },
        ExecutionEvent::Output {
            seq: 1,
            server_id: "0190f3c4-8b6d-7a2e-9c1f-3d5e7a9b1c2d".into(),
            stream: "stderr".into(),
            data: "du: cannot read directory\n".into(),
        },
        ExecutionEvent::Host {
            seq: 2,
            host: host(true),
        },
        ExecutionEvent::Finished {
            seq: 3,
            status: "finished".into(),
            summary: summary(),
        },
    ]
}

fn terminal_client() -> Vec<TerminalClientMessage> {
    vec![TerminalClientMessage::Resize {
        cols: 120,
        rows: 40,
    }]
}

fn terminal_server() -> Vec<TerminalServerMessage> {
    vec![
        TerminalServerMessage::Ready {
            session_id: "0190f3c4-8b6d-7a2e-9c1f-000000000003".into(),
        },
        TerminalServerMessage::Error {
            code: "host_key_mismatch".into(),
            message: "the server's host key changed".into(),
        },
        TerminalServerMessage::Closed {
            reason: "exited".into(),
        },
        TerminalServerMessage::RecordingStopped {
            limit_bytes: 64 * 1024 * 1024,
        },
    ]
}

/// One message type: its component's name, and its samples serialized with their tags.
struct Family {
    name: &'static str,
    samples: Vec<(&'static str, Value)>,
}

/// The samples of `T`; for a message the client sends, each is read back too (the server
/// accepts what the schema describes).
fn family<T: Tagged + DeserializeOwned>(
    name: &'static str,
    samples: Vec<T>,
    client: bool,
) -> Family {
    let samples = samples
        .iter()
        .map(|m| {
            let value = serde_json::to_value(m).unwrap();
            if client {
                let back: T = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{name}: {value} does not read back: {e}"));
                assert_eq!(serde_json::to_value(back).unwrap(), value, "{name}");
            }
            (m.tag(), value)
        })
        .collect();
    Family { name, samples }
}

fn families() -> Vec<Family> {
    vec![
        family("LiveClientMessage", live_client(), true),
        family("LiveServerMessage", live_server(), false),
        family("ExecutionEvent", run_stream(), false),
        family("TerminalClientMessage", terminal_client(), true),
        family("TerminalServerMessage", terminal_server(), false),
    ]
}

/// Components named as members of an `allOf` (a `#[serde(flatten)]` field's type): closing
/// them would refuse the fields the other members add, so the `allOf` itself is closed.
fn all_of_members(node: &Value, found: &mut BTreeSet<String>) {
    match node {
        Value::Object(map) => {
            for member in map
                .get("allOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(r) = member["$ref"].as_str() {
                    found.insert(r.rsplit('/').next().unwrap_or(r).to_string());
                }
            }
            map.values().for_each(|v| all_of_members(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| all_of_members(v, found)),
        _ => {}
    }
}

/// Adds `unevaluatedProperties: false` to every object schema that lists properties (and to
/// every `allOf`), except those that are members of an `allOf` (`open`).
fn close(node: &mut Value, open: bool) {
    let Value::Object(map) = node else {
        return;
    };
    let lists = map.contains_key("properties") || map.contains_key("allOf");
    if lists
        && !open
        && !map.contains_key("additionalProperties")
        && !map.contains_key("unevaluatedProperties")
    {
        map.insert("unevaluatedProperties".into(), json!(false));
    }
    for (key, value) in map.iter_mut() {
        match (key.as_str(), value) {
            ("properties", Value::Object(props)) => {
                props.values_mut().for_each(|p| close(p, false))
            }
            ("allOf", Value::Array(items)) => items.iter_mut().for_each(|i| close(i, true)),
            ("oneOf" | "anyOf" | "prefixItems", Value::Array(items)) => {
                items.iter_mut().for_each(|i| close(i, false));
            }
            ("items" | "additionalProperties" | "not", v) => close(v, false),
            _ => {}
        }
    }
}

/// The document's components, closed.
fn closed_components(doc: &Value) -> Value {
    let mut components = doc["components"].clone();
    let mut members = BTreeSet::new();
    all_of_members(&components, &mut members);
    for (name, schema) in components["schemas"].as_object_mut().into_iter().flatten() {
        close(schema, members.contains(name));
    }
    components
}

/// The tag of each `oneOf` branch of a message schema, or what is wrong with the branch.
fn schema_tags(name: &str, schema: &Value) -> Result<BTreeSet<String>, String> {
    let branches = schema["oneOf"]
        .as_array()
        .ok_or_else(|| format!("{name} is not a oneOf: {schema}"))?;
    let mut tags = BTreeSet::new();
    for branch in branches {
        let values = branch
            .pointer("/properties/type/enum")
            .and_then(Value::as_array);
        let required = branch["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("type")));
        match values.map(Vec::as_slice) {
            Some([Value::String(tag)]) if required => {
                tags.insert(tag.clone());
            }
            _ => {
                return Err(format!(
                    "{name}: a branch without a required one-value `type` (not a discriminated union): {branch}"
                ));
            }
        }
    }
    Ok(tags)
}

/// What is wrong between the document and the samples, one line each; and how many samples
/// were found valid.
fn problems(doc: &Value, families: &[Family]) -> (Vec<String>, usize) {
    let components = closed_components(doc);
    let mut problems = Vec::new();
    let mut valid = 0;
    for family in families {
        let name = family.name;
        let Some(schema) = doc["components"]["schemas"].get(name) else {
            problems.push(format!("{name} is not in the document's components"));
            continue;
        };
        match schema_tags(name, schema) {
            Ok(tags) => {
                let sampled: BTreeSet<String> =
                    family.samples.iter().map(|(t, _)| t.to_string()).collect();
                if tags != sampled {
                    problems.push(format!(
                        "{name}: the schema's variants {tags:?} are not the sampled ones {sampled:?}"
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
        let mut root = Map::new();
        root.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        root.insert("components".into(), components.clone());
        root.insert(
            "allOf".into(),
            json!([{ "$ref": format!("#/components/schemas/{name}") }]),
        );
        let validator = match jsonschema::draft202012::new(&Value::Object(root)) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{name} is not a valid JSON Schema: {e}"));
                continue;
            }
        };
        for (tag, sample) in &family.samples {
            if sample["type"] != json!(tag) {
                problems.push(format!("{name}: {sample} is not tagged `type: {tag}`"));
            }
            let errors: Vec<String> = validator
                .iter_errors(sample)
                .map(|e| format!("{e} (at `{}`)", e.instance_path()))
                .collect();
            if errors.is_empty() {
                valid += 1;
            } else {
                problems.push(format!("{name} refuses {sample}: {}", errors.join("; ")));
            }
        }
    }
    (problems, valid)
}

fn document() -> Value {
    serde_json::to_value(steward_api::openapi::openapi()).unwrap()
}

#[test]
fn every_websocket_message_matches_its_schema() {
    let families = families();
    let (problems, valid) = problems(&document(), &families);
    assert!(
        problems.is_empty(),
        "{} problem(s) with WebSocket message schemas:\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
    let samples: usize = families.iter().map(|f| f.samples.len()).sum();
    assert_eq!(valid, samples);
}

#[test]
fn a_field_the_schema_leaves_out_is_caught() {
    let mut families = families();
    // A field in a nested object (a host of the snapshot's run) and one in the flattened part
    // of `ExecutionDetail`.
    let run = &mut families[2].samples[0].1;
    run["execution"]["hosts"][0]["pid"] = json!(4242);
    run["execution"]["owner"] = json!("bob");
    let (problems, _) = problems(&document(), &families);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("ExecutionEvent refuses"),
        "{}",
        problems[0]
    );
    assert!(
        problems[0].contains("pid") && problems[0].contains("owner"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_variant_without_a_schema_is_caught() {
    // The document as it would be had `update` no schema, and a wrong field type elsewhere.
    let mut doc = document();
    let branches = doc
        .pointer_mut("/components/schemas/LiveServerMessage/oneOf")
        .and_then(Value::as_array_mut)
        .unwrap();
    branches.retain(|b| b.pointer("/properties/type/enum/0") != Some(&json!("update")));
    *doc.pointer_mut("/components/schemas/TerminalClientMessage/oneOf/0/properties/cols")
        .unwrap() = json!({ "type": "string" });
    let (problems, _) = problems(&doc, &families());
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(
        problems[0].starts_with("LiveServerMessage: the schema's variants {\"error\", \"snapshot\"} are not the sampled ones"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].starts_with("LiveServerMessage refuses {"),
        "{}",
        problems[1]
    );
    assert!(
        problems[2].starts_with("LiveServerMessage refuses {"),
        "{}",
        problems[2]
    );
    assert!(
        problems[3].starts_with("TerminalClientMessage refuses {"),
        "{}",
        problems[3]
    );
}
