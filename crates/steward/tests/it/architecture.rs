//! The dependency rules of ARCHITECTURE.md, checked against `cargo metadata`: the workspace
//! crates form one downward graph (core ← proto ← {db, ssh, vault, checks, tsdb, metrics} ←
//! services ← api ← steward; the agent uses metrics only), the domain never depends on the HTTP
//! stack, the HTTP layer never speaks SQL or SSH itself, and no crate declares a dependency its
//! code does not use (the check `cargo machete` makes: the dependency's name appears in the
//! code).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A workspace crate's place in the graph: a crate may depend only on crates of a lower layer.
fn layer(name: &str) -> Option<u8> {
    Some(match name {
        "steward-core" => 0,
        "steward-proto" => 1,
        "steward-db" | "steward-ssh" | "steward-vault" | "steward-checks" | "steward-tsdb"
        | "steward-metrics" => 2,
        "steward-services" => 3,
        "steward-api" => 4,
        "steward" => 5,
        // Test support: above everything, and only ever a dev-dependency.
        "steward-testkit" => 6,
        _ => return None,
    })
}

/// The HTTP stack, which nothing below `steward-api` may use.
const HTTP_STACK: &[&str] = &[
    "axum",
    "axum-core",
    "tower",
    "tower-http",
    "hyper",
    "hyper-util",
    "tungstenite",
    "tokio-tungstenite",
    "utoipa-axum",
];
/// What the HTTP layer must leave to the services: SQL and SSH.
const NOT_IN_API: &[&str] = &["sqlx", "russh", "russh-sftp"];

/// Dependencies that break a rule today and are on their way out (issue 14 moves the domain
/// into `steward-services`). The list may only shrink: an entry that no longer breaks the rule
/// fails the test too, so it is taken off when its move lands.
const MOVING_OUT: &[(&str, &str, &str)] = &[(
    "steward-api",
    "sqlx",
    "handlers still begin and commit the transactions that tie a change to its audit entry",
)];

/// One declared dependency of a workspace crate.
#[derive(Debug, Clone)]
struct Dep {
    /// The package's name (`rand`).
    package: String,
    /// The name the code uses (`rand10` for a renamed one, `-` as `_`).
    code_name: String,
    /// `normal`, `dev` or `build`.
    kind: String,
}

/// A workspace crate: its name, directory and declared dependencies.
#[derive(Debug)]
struct Crate {
    dir: PathBuf,
    deps: Vec<Dep>,
}

/// The workspace's crates, from `cargo metadata --no-deps` (declared dependencies only).
fn workspace() -> BTreeMap<String, Crate> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let mut crates = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest_path"));
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .map(|d| {
                let package = d["name"].as_str().expect("name").to_string();
                let code_name = d["rename"].as_str().unwrap_or(&package).replace('-', "_");
                let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                Dep {
                    package,
                    code_name,
                    kind,
                }
            })
            .collect();
        crates.insert(
            p["name"].as_str().expect("name").to_string(),
            Crate {
                dir: manifest.parent().expect("crate directory").to_path_buf(),
                deps,
            },
        );
    }
    crates
}

#[test]
fn workspace_crates_depend_only_downwards_and_the_agent_only_on_metrics() {
    let crates = workspace();
    let mut wrong = Vec::new();
    for (name, c) in &crates {
        if name == "steward-agent" {
            // The agent is a small binary of its own: the metric readers and nothing else.
            for d in c
                .deps
                .iter()
                .filter(|d| d.kind != "dev" && layer(&d.package).is_some())
            {
                if d.package != "steward-metrics" {
                    wrong.push(format!("steward-agent depends on {}", d.package));
                }
            }
            continue;
        }
        let Some(own) = layer(name) else {
            wrong.push(format!(
                "{name} has no place in the graph (add it to `layer` and ARCHITECTURE.md)"
            ));
            continue;
        };
        for d in &c.deps {
            if d.package == "steward-agent" {
                wrong.push(format!("{name} depends on the agent"));
                continue;
            }
            let Some(theirs) = layer(&d.package) else {
                continue;
            };
            let allowed = match d.kind.as_str() {
                // Tests may use the test kit and anything below themselves.
                "dev" => theirs < own || d.package == "steward-testkit",
                _ => theirs < own && d.package != "steward-testkit",
            };
            if !allowed {
                wrong.push(format!(
                    "{name} ({}) depends on {} ({})",
                    own, d.package, theirs
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependency rules broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_domain_never_uses_the_http_stack_and_the_api_never_sql_or_ssh() {
    let crates = workspace();
    let mut wrong = Vec::new();
    let mut still_moving = Vec::new();
    for (name, c) in &crates {
        let normal = c.deps.iter().filter(|d| d.kind == "normal");
        for d in normal {
            // (The agent is an HTTP and WebSocket client of the hub: the rule is for the hub's domain.)
            let below_api = layer(name).is_some_and(|l| l < 4);
            if below_api && HTTP_STACK.contains(&d.package.as_str()) {
                wrong.push(format!(
                    "{name} depends on {} (HTTP belongs in steward-api)",
                    d.package
                ));
            }
            if name == "steward-api" && NOT_IN_API.contains(&d.package.as_str()) {
                if MOVING_OUT
                    .iter()
                    .any(|(c, p, _)| c == name && *p == d.package)
                {
                    still_moving.push((name.clone(), d.package.clone()));
                } else {
                    wrong.push(format!(
                        "steward-api depends on {} (SQL and SSH belong in the services)",
                        d.package
                    ));
                }
            }
        }
    }
    for (c, p, why) in MOVING_OUT {
        if !still_moving.iter().any(|(sc, sp)| sc == c && sp == p) {
            wrong.push(format!(
                "{c} no longer depends on {p} ({why}): take it off MOVING_OUT"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "dependency rules broken:\n{}",
        wrong.join("\n")
    );
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Whether `word` appears in `text` as a whole identifier.
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[test]
fn every_declared_dependency_is_used() {
    let crates = workspace();
    let mut unused = Vec::new();
    for (name, c) in &crates {
        let read = |dirs: &[&str]| {
            let mut files = Vec::new();
            for d in dirs {
                let p = c.dir.join(d);
                if p.is_file() {
                    files.push(p);
                } else {
                    sources(&p, &mut files);
                }
            }
            files
                .iter()
                .map(|f| std::fs::read_to_string(f).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let lib = read(&["src"]);
        let build = read(&["build.rs"]);
        let tests = read(&["src", "tests", "examples", "benches"]);
        for d in &c.deps {
            let code = match d.kind.as_str() {
                "build" => &build,
                "dev" => &tests,
                _ => &lib,
            };
            if !mentions(code, &d.code_name) {
                unused.push(format!(
                    "{name}: {} ({}) is declared but not used",
                    d.package, d.kind
                ));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "unused dependencies (remove them from Cargo.toml):\n{}",
        unused.join("\n")
    );
}
