//! Every request body the OpenAPI document describes can be sent: each request schema carries
//! examples (`#[schema(examples(…))]` on the request type), and each example is valid against
//! the schema (JSON Schema 2020-12, `$ref`s resolved in the document's components). A schema
//! no value satisfies fails here by name, as utoipa's form of an internally tagged enum with
//! variants that refuse unknown fields did (`CheckSpec`: `allOf` of the variant and an object
//! holding the tag, each part refusing the other's fields); so does a request schema without an
//! example. The last two tests show the check catching both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Value, json};

/// The name of a schema (`$ref` target), or `inline`.
fn name(schema: &Value) -> String {
    match schema["$ref"].as_str() {
        Some(r) => r.rsplit('/').next().unwrap_or(r).to_string(),
        None => match schema["oneOf"].as_array() {
            Some(branches) => branches.iter().map(name).collect::<Vec<_>>().join(" | "),
            None => "inline".to_string(),
        },
    }
}

/// The examples a request schema offers: its own, those of the component it refers to, and
/// those of its `oneOf`/`anyOf` branches (an optional body is `oneOf` null and a reference).
fn examples_of(schema: &Value, components: &Value) -> Vec<Value> {
    let mut found: Vec<Value> = schema["examples"].as_array().cloned().unwrap_or_default();
    if let Some(e) = schema.get("example") {
        found.push(e.clone());
    }
    if let Some(r) = schema["$ref"].as_str() {
        let target = r
            .strip_prefix("#/components/schemas/")
            .and_then(|n| components["schemas"].get(n));
        if let Some(target) = target {
            found.extend(examples_of(target, components));
        }
    }
    for key in ["oneOf", "anyOf"] {
        for branch in schema[key].as_array().into_iter().flatten() {
            found.extend(examples_of(branch, components));
        }
    }
    found
}

/// What is wrong with the document's request schemas, one line each; and how many examples
/// were found valid.
fn problems(doc: &Value) -> (Vec<String>, usize) {
    let components = &doc["components"];
    let mut problems = Vec::new();
    let mut valid = 0;
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let Some(content) = op
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
            else {
                continue;
            };
            for (media, body) in content {
                let schema = &body["schema"];
                let what = format!(
                    "{} {path} ({media}): schema {}",
                    method.to_uppercase(),
                    name(schema)
                );
                let examples = examples_of(schema, components);
                if examples.is_empty() {
                    problems.push(format!(
                        "{what} has no example (add #[schema(examples(…))] to the request type)"
                    ));
                    continue;
                }
                // The request schema, with the components beside it so `#/components/…`
                // references resolve within the same document.
                let mut root = Map::new();
                root.insert(
                    "$schema".into(),
                    json!("https://json-schema.org/draft/2020-12/schema"),
                );
                root.insert("components".into(), components.clone());
                root.insert("allOf".into(), json!([schema]));
                let validator = match jsonschema::draft202012::new(&Value::Object(root)) {
                    Ok(v) => v,
                    Err(e) => {
                        problems.push(format!("{what} is not a valid JSON Schema: {e}"));
                        continue;
                    }
                };
                for example in &examples {
                    let errors: Vec<String> = validator
                        .iter_errors(example)
                        .map(|e| format!("{e} (at `{}`)", e.instance_path()))
                        .collect();
                    if errors.is_empty() {
                        valid += 1;
                    } else {
                        problems.push(format!(
                            "{what} refuses its example {example}: {}",
                            errors.join("; ")
                        ));
                    }
                }
            }
        }
    }
    (problems, valid)
}

#[test]
fn every_request_schema_accepts_its_examples() {
    let doc = serde_json::to_value(steward_api::openapi::openapi()).unwrap();
    let (problems, valid) = problems(&doc);
    assert!(
        problems.is_empty(),
        "{} problem(s) with request schemas:\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
    // Every route with a body (about twenty-five) was looked at.
    assert!(valid >= 25, "only {valid} examples were checked");
}

/// A document with one request body of `schema` and the components `schemas`.
fn document(schema: Value, schemas: Value) -> Value {
    json!({
        "paths": { "/things": { "post": { "requestBody": { "content": {
            "application/json": { "schema": schema }
        } } } } },
        "components": { "schemas": schemas }
    })
}

#[test]
fn an_unsatisfiable_schema_is_caught() {
    // utoipa's form of `#[serde(tag = "type")] enum Spec { Tcp(TcpCheck) }` where `TcpCheck`
    // refuses unknown fields: no value is valid against it.
    let tcp = json!({
        "type": "object",
        "required": ["host", "port"],
        "properties": { "host": { "type": "string" }, "port": { "type": "integer" } },
        "additionalProperties": false
    });
    let spec = json!({ "oneOf": [{ "allOf": [
        { "$ref": "#/components/schemas/TcpCheck" },
        { "type": "object", "required": ["type"], "properties": { "type": { "type": "string", "enum": ["tcp"] } } }
    ] }] });
    let input = json!({
        "type": "object",
        "required": ["spec"],
        "properties": { "spec": { "$ref": "#/components/schemas/Spec" } },
        "examples": [{ "spec": { "type": "tcp", "host": "db", "port": 5432 } }]
    });
    let doc = document(
        json!({ "$ref": "#/components/schemas/Input" }),
        json!({ "Input": input, "Spec": spec, "TcpCheck": tcp }),
    );
    let (problems, valid) = problems(&doc);
    assert_eq!((problems.len(), valid), (1, 0), "{problems:?}");
    assert!(
        problems[0]
            .starts_with("POST /things (application/json): schema Input refuses its example"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_request_schema_without_examples_is_caught() {
    let doc = document(
        json!({ "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/Input" }] }),
        json!({ "Input": { "type": "object", "properties": { "a": { "type": "string" } } } }),
    );
    let (problems, _) = problems(&doc);
    assert_eq!(
        problems,
        [
            "POST /things (application/json): schema inline | Input has no example (add #[schema(examples(…))] to the request type)"
        ]
    );
}
