//! The README's configuration table checked against the clap definitions: every global and
//! `serve` argument appears in exactly one row, with its flag, environment variable and TOML
//! key (`[section] key`), and every row names a real argument.
use clap::CommandFactory;

use super::Cli;
use super::file::Layout;

/// Environment variables Steward reads itself, not through clap (documented in rows without a
/// flag).
const ENV_ONLY: [&str; 1] = ["STEWARD_MASTER_KEY"];

/// One row of the table: the first code span of its flag, environment and TOML key cells
/// (`None` for `–`).
#[derive(Debug)]
struct Row {
    line: usize,
    flag: Option<String>,
    env: Option<String>,
    key: Option<String>,
}

/// What one argument should look like in the table.
#[derive(Debug)]
struct Expected {
    flag: String,
    env: Option<String>,
    key: Option<String>,
}

fn readme_rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let text = std::fs::read_to_string(path).expect("README.md");
    let start = text
        .lines()
        .position(|l| l.starts_with("| Flag | Environment variable | TOML key |"))
        .expect("the configuration table's header");
    text.lines()
        .enumerate()
        .skip(start + 2)
        .take_while(|(_, l)| l.starts_with('|'))
        .map(|(i, l)| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 5, "README.md:{}: five cells expected", i + 1);
            // The first `code span` of a cell; its first word (`--listen ADDR:PORT`).
            let code = |cell: &str, whole: bool| {
                let span = cell.split('`').nth(1)?;
                Some(if whole { span } else { span.split(' ').next()? }.to_string())
            };
            Row {
                line: i + 1,
                flag: code(cells[0], false),
                env: code(cells[1], false),
                key: code(cells[2], true),
            }
        })
        .collect()
}

/// Every global and `serve` argument, as the table should show it.
fn expected() -> Vec<Expected> {
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let layout = Layout::of_the_structs();
    let arg = |a: &clap::Arg, key: Option<String>| Expected {
        flag: format!("--{}", a.get_long().expect("a long flag")),
        env: a.get_env().map(|e| e.to_string_lossy().into_owned()),
        key,
    };
    let globals = cli.get_arguments().filter(|a| a.is_global_set()).map(|a| {
        let id = a.get_id().as_str();
        arg(a, layout.globals.iter().any(|g| g == id).then(|| id.into()))
    });
    let serve_args = serve.get_arguments().map(|a| {
        let id = a.get_id().as_str();
        let section = layout
            .sections
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k == id))
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| panic!("--{id} is in no section"));
        arg(a, Some(format!("[{section}] {id}")))
    });
    globals.chain(serve_args).collect()
}

#[test]
fn the_readme_configuration_table_matches_the_options() {
    let rows = readme_rows();
    let expected = expected();
    assert!(expected.len() > 30, "the arguments were read: {expected:?}");
    let mut problems = Vec::new();
    for e in &expected {
        let found: Vec<&Row> = rows
            .iter()
            .filter(|r| r.flag.as_ref() == Some(&e.flag))
            .collect();
        match found.as_slice() {
            [row] => {
                if row.env != e.env {
                    problems.push(format!(
                        "README.md:{}: {} has environment variable {:?}, expected {:?}",
                        row.line, e.flag, row.env, e.env
                    ));
                }
                if row.key != e.key {
                    problems.push(format!(
                        "README.md:{}: {} has TOML key {:?}, expected {:?}",
                        row.line, e.flag, row.key, e.key
                    ));
                }
            }
            [] => problems.push(format!("{} ({:?}) has no row", e.flag, e.key)),
            more => problems.push(format!(
                "{} has {} rows (lines {:?})",
                e.flag,
                more.len(),
                more.iter().map(|r| r.line).collect::<Vec<_>>()
            )),
        }
    }
    for row in &rows {
        let known = match &row.flag {
            Some(flag) => expected.iter().any(|e| &e.flag == flag),
            None => row
                .env
                .as_deref()
                .is_some_and(|env| ENV_ONLY.contains(&env) && row.key.is_none()),
        };
        if !known {
            problems.push(format!(
                "README.md:{}: the row {:?} names no option",
                row.line, row.flag
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the README's configuration table and the options differ:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_readme_sample_file_parses() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let sample = text
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a TOML sample in the README");
    let file = super::FileConfig::parse(sample).expect("the README's sample is valid");
    assert!(file.serve.http.listen.is_some() && file.serve.auth.access_token_ttl.is_some());
}
