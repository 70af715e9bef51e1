//! The dependency rules of ARCHITECTURE.md, checked against `cargo metadata`: the workspace
//! crates form one downward graph (core ← proto ← {db, ssh, vault, checks, tsdb, metrics} ←
//! services ← api ← steward; the agent uses metrics only), the domain never depends on the HTTP
//! stack, the HTTP layer never speaks SQL or SSH itself, and no crate declares a dependency its
//! code does not use (the check `cargo machete` makes: the dependency's name appears in the
//! code), and the modules of the services and the API import each other in no circle.
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

/// Dependencies allowed to break a rule for now (none: the last, steward-api's sqlx, went when
/// the handlers stopped committing transactions). An entry needs a reason, and one that no
/// longer breaks the rule fails the test, so it is taken off when its move lands.
const MOVING_OUT: &[(&str, &str, &str)] = &[];

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

/// The top-level modules of a crate's `src` and the sibling modules each one names
/// (`crate::x`), test code left out.
fn module_graph(src: &Path) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let top = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        let name = first.trim_end_matches(".rs").to_string();
        (name != "lib" && name != "main").then_some(name)
    };
    let mut graph: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        if let Some(m) = top(f) {
            graph.entry(m).or_default();
        }
    }
    for f in &files {
        let Some(m) = top(f) else { continue };
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != m && graph.contains_key(&name) {
                graph.get_mut(&m).expect("module").insert(name);
            }
        }
    }
    graph
}

/// The groups of modules that import each other in a circle (strongly connected components
/// of more than one module).
fn cycles(graph: &BTreeMap<String, std::collections::BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    fn finish(
        v: &str,
        g: &BTreeMap<String, std::collections::BTreeSet<String>>,
        seen: &mut std::collections::BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(v.to_string()) {
            return;
        }
        for w in &g[v] {
            finish(w, g, seen, order);
        }
        order.push(v.to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut order = Vec::new();
    for v in graph.keys() {
        finish(v, graph, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<String, std::collections::BTreeSet<String>> = graph
        .keys()
        .map(|k| (k.clone(), Default::default()))
        .collect();
    for (v, ws) in graph {
        for w in ws {
            reversed.get_mut(w).expect("module").insert(v.clone());
        }
    }
    let mut assigned = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for v in order.iter().rev() {
        let mut group = Vec::new();
        finish(v, &reversed, &mut assigned, &mut group);
        if group.len() > 1 {
            group.sort();
            out.push(group);
        }
    }
    out
}

/// Import cycles allowed for now (none: the last one, the agent hub's, went with its move to
/// the services). An entry may be added only with a reason and taken off when it is gone.
const CYCLES_MOVING_OUT: &[&[&str]] = &[];

#[test]
fn no_import_cycles_between_the_modules_of_the_services_and_the_api() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut wrong = Vec::new();
    for krate in ["steward-services", "steward-api"] {
        let found = cycles(&module_graph(&root.join("crates").join(krate).join("src")));
        for c in &found {
            if !CYCLES_MOVING_OUT
                .iter()
                .any(|k| k.iter().copied().eq(c.iter().map(String::as_str)))
            {
                wrong.push(format!(
                    "{krate}: {} import each other in a circle",
                    c.join(", ")
                ));
            }
        }
        if krate == "steward-api" {
            for k in CYCLES_MOVING_OUT {
                if !found
                    .iter()
                    .any(|c| k.iter().copied().eq(c.iter().map(String::as_str)))
                {
                    wrong.push(format!(
                        "steward-api: {} no longer form a cycle: take it off CYCLES_MOVING_OUT",
                        k.join(", ")
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let g: BTreeMap<String, std::collections::BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(
        cycles(&g),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
}
