//! Tests of the configuration: sections, precedence, the old flat file, redaction.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser};
use steward_services::config::Config;

use super::file::Layout;
use super::*;

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("steward").chain(args.iter().copied())).expect("parse")
}

fn file(text: &str) -> FileConfig {
    FileConfig::parse(text).expect("config file")
}

fn serve_of(args: &[&str]) -> ServeOpts {
    match parse(args).command {
        Command::Serve(s) => s,
        _ => panic!("serve"),
    }
}

/// Everything `steward <args>` resolves to with this file.
fn resolve(args: &[&str], text: &str) -> (Resolved, SocketAddr, Config) {
    let cli = parse(args);
    let file = file(text);
    let r = Resolved::new(&cli.global, &file);
    let Command::Serve(serve) = cli.command else {
        panic!("serve")
    };
    let (listen, api) = api_config(&serve, &file, &r.data_dir).expect("config");
    (r, listen, api)
}

#[test]
fn scan_interval_is_hours_and_zero_turns_it_off() {
    let hours = |args: &[&str], toml_text: &str| {
        api_config(&serve_of(args), &file(toml_text), Path::new("/tmp"))
            .map(|(_, a)| a.scan_interval)
    };
    let h = |n: u64| Some(std::time::Duration::from_secs(n * 3600));
    assert_eq!(hours(&["serve"], "").expect("default"), h(24));
    assert_eq!(
        hours(&["serve"], "[scan]\nscan_interval = 6").expect("file"),
        h(6)
    );
    assert_eq!(
        hours(
            &["serve", "--scan-interval", "0"],
            "[scan]\nscan_interval = 6"
        )
        .expect("flag"),
        None
    );
    assert!(hours(&["serve", "--scan-interval=-1"], "").is_err());
}

#[test]
fn flags_override_the_file_which_overrides_defaults() {
    let (r, listen, api) = resolve(
        &["--data-dir", "/srv/s", "serve", "--access-token-ttl", "600"],
        r#"
        data_dir = "/var/lib/steward"
        log_format = "json"

        [http]
        listen = "0.0.0.0:9000"
        public_url = "https://steward.example.com"
        trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]

        [auth]
        access_token_ttl = 300
        "#,
    );
    assert_eq!(r.data_dir, PathBuf::from("/srv/s"));
    assert_eq!(&*r.database_url, "sqlite:///srv/s/steward.db");
    assert_eq!(r.master_key_file, PathBuf::from("/srv/s/master.key"));
    assert_eq!(r.log_format, LogFormat::Json);
    assert_eq!(listen.to_string(), "0.0.0.0:9000");
    assert_eq!(api.access_ttl_secs, 600);
    assert!(api.secure_cookies, "https public URL means Secure cookies");
    assert_eq!(api.trusted_proxies.len(), 2);
    assert_eq!(api.refresh_ttl_secs, 14 * 24 * 3600);
    assert_eq!(api.data_dir, Some(PathBuf::from("/srv/s")));
}

#[test]
fn check_allow_from_the_flag_or_the_file() {
    let dir = PathBuf::from("/tmp/s");
    let none = FileConfig::default();
    let (_, api) = api_config(&serve_of(&["serve"]), &none, &dir).expect("config");
    assert!(
        api.check_allow.is_empty(),
        "nothing restricted is allowed by default"
    );
    let file = file("[checks]\ncheck_allow = [\"10.9.8.7/8\"]");
    let (_, api) = api_config(&serve_of(&["serve"]), &file, &dir).expect("config");
    assert_eq!(
        api.check_allow,
        ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]
    );
    let flag = serve_of(&["serve", "--check-allow", "127.0.0.0/8,::1"]);
    let (_, api) = api_config(&flag, &file, &dir).expect("config");
    assert_eq!(
        api.check_allow,
        [
            "127.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
            "::1/128".parse().unwrap()
        ]
    );
    let bad = serve_of(&["serve", "--check-allow", "localhost"]);
    assert!(api_config(&bad, &none, &dir).is_err());
}

#[test]
fn defaults_and_bad_values() {
    let (r, listen, api) = resolve(&["serve"], "");
    assert_eq!(r.data_dir, PathBuf::from("./steward-data"));
    assert_eq!(r.log_format, LogFormat::Text);
    assert_eq!(listen.to_string(), "127.0.0.1:8080");
    assert!(!api.secure_cookies);
    let exe_dir = std::env::current_exe()
        .expect("exe")
        .parent()
        .expect("dir")
        .to_path_buf();
    assert_eq!(api.agent_binary, Some(exe_dir.join("steward-agent")));
    let (_, _, api) = resolve(&["serve"], "[agent]\nagent_binary = \"/opt/a\"");
    assert_eq!(api.agent_binary, Some(PathBuf::from("/opt/a")));
    let (_, _, api) = resolve(
        &["serve", "--agent-binary", "/opt/b"],
        "[agent]\nagent_binary = \"/opt/a\"",
    );
    assert_eq!(api.agent_binary, Some(PathBuf::from("/opt/b")));

    let none = FileConfig::default();
    let bad = serve_of(&["serve", "--trusted-proxy", "not-an-ip"]);
    assert!(api_config(&bad, &none, &r.data_dir).is_err());
    let bad = serve_of(&["serve", "--access-token-ttl", "0"]);
    let err = api_config(&bad, &none, &r.data_dir).expect_err("zero TTL");
    assert_eq!(
        err.to_string(),
        "access-token-ttl must be a positive number of seconds"
    );
    let bad = file("[http]\nmax_connections = 0");
    let err = api_config(&serve_of(&["serve"]), &bad, &r.data_dir).expect_err("from the file");
    assert_eq!(err.to_string(), "max-connections must be 1 to 1000000");
    assert!(
        FileConfig::parse("no_such_option = 1").is_err(),
        "unknown keys are errors"
    );
}

#[test]
fn edge_settings_and_the_metrics_scrape_defaults() {
    let (_, _, api) = resolve(&["serve"], "");
    assert_eq!(api.max_connections, 10_000);
    assert_eq!(api.http_header_timeout.as_secs(), 15);
    assert_eq!(api.http_idle_timeout.as_secs(), 60);
    assert!(
        api.metrics_allow.is_empty(),
        "no address may scrape by default"
    );
    assert!(api.metrics_token_sha256.is_none());
    let text = "[http]\nmax_connections = 500\nhttp_header_timeout = 5\nhttp_idle_timeout = 30\n\
                [metrics]\nmetrics_allow = [\"10.0.0.0/8\"]";
    let (_, _, api) = resolve(&["serve"], text);
    assert_eq!(
        (
            api.max_connections,
            api.http_header_timeout.as_secs(),
            api.http_idle_timeout.as_secs()
        ),
        (500, 5, 30)
    );
    assert_eq!(
        api.metrics_allow,
        vec!["10.0.0.0/8".parse::<ipnet::IpNet>().expect("net")]
    );
    let (_, _, api) = resolve(
        &[
            "serve",
            "--max-connections",
            "64",
            "--http-header-timeout",
            "2",
            "--metrics-allow",
            "none",
        ],
        text,
    );
    assert_eq!(
        (api.max_connections, api.http_header_timeout.as_secs()),
        (64, 2)
    );
    assert!(api.metrics_allow.is_empty());
    for bad in [
        ["serve", "--max-connections", "0"],
        ["serve", "--http-header-timeout", "0"],
        ["serve", "--http-idle-timeout", "0"],
    ] {
        let none = FileConfig::default();
        assert!(api_config(&serve_of(&bad), &none, Path::new("/tmp")).is_err());
    }
}

#[test]
fn terminal_settings() {
    let (_, _, api) = resolve(&["serve"], "");
    assert_eq!(api.terminal_idle_timeout.as_secs(), 900);
    assert_eq!(api.recording_retention_days, 90);
    let text = "[terminal]\nterminal_idle_timeout = 60\nrecording_retention_days = 30";
    let (_, _, api) = resolve(&["serve"], text);
    assert_eq!(
        (
            api.terminal_idle_timeout.as_secs(),
            api.recording_retention_days
        ),
        (60, 30)
    );
    let (_, _, api) = resolve(
        &[
            "serve",
            "--terminal-idle-timeout",
            "120",
            "--recording-retention-days",
            "7",
        ],
        text,
    );
    assert_eq!(
        (
            api.terminal_idle_timeout.as_secs(),
            api.recording_retention_days
        ),
        (120, 7)
    );
    for bad in [
        ["serve", "--terminal-idle-timeout", "0"],
        ["serve", "--recording-retention-days", "0"],
    ] {
        let none = FileConfig::default();
        assert!(api_config(&serve_of(&bad), &none, Path::new("/tmp")).is_err());
    }
}

#[test]
fn a_file_with_every_section() {
    let (r, listen, api) = resolve(
        &["serve"],
        r#"
        data_dir = "/var/lib/steward"
        database_url = "postgres://steward:pw@db/steward"
        master_key_file = "/etc/steward/master.key"
        log_format = "json"
        log_level = "debug"
        [http]
        listen = "127.0.0.1:9090"
        max_body_bytes = 2048
        max_sockets_per_user = 5
        [auth]
        session_max_age = 3600
        step_up_window = 60
        password_hash_concurrency = 3
        [ssh]
        ssh_connect_timeout = 4
        ssh_max_connections = 8
        [execution]
        execution_output_cap = 4096
        execution_retention_days = 9
        [terminal]
        terminal_recording_cap = 65536
        [scan]
        scan_interval = 0
        [metrics]
        metrics_collect_concurrency = 0
        metrics_raw_days = 2
        metrics_token = "0123456789abcdef"
        [checks]
        check_concurrency = 0
        check_retention_days = 10
        [agent]
        agent_binary = "/opt/agents"
        "#,
    );
    assert_eq!(
        (&*r.database_url, r.log_level.as_str()),
        ("postgres://steward:pw@db/steward", "debug")
    );
    assert_eq!(r.master_key_file, PathBuf::from("/etc/steward/master.key"));
    assert_eq!(listen.port(), 9090);
    assert_eq!((api.max_body_bytes, api.max_sockets_per_user), (2048, 5));
    assert_eq!(
        (api.session_max_secs, api.step_up_window.as_secs()),
        (3600, 60)
    );
    assert_eq!(api.password_hash_concurrency, 3);
    assert_eq!(
        (api.ssh_connect_timeout.as_secs(), api.ssh_max_connections),
        (4, 8)
    );
    assert_eq!(
        (api.execution_output_cap, api.execution_retention_days),
        (4096, 9)
    );
    assert_eq!(
        (api.terminal_recording_cap, api.scan_interval),
        (65536, None)
    );
    assert_eq!(api.metrics_collect_concurrency, 0);
    assert_eq!(api.metrics_retention.raw_ms, 2 * 86_400_000);
    assert!(api.metrics_token_sha256.is_some());
    assert_eq!((api.check_concurrency, api.check_retention_days), (0, 10));
    assert_eq!(api.agent_binary, Some(PathBuf::from("/opt/agents")));
}

/// The layout the file loader reads from clap is the one serde knows: each section's group id
/// is a field of `ServeOpts`, and each of its argument ids a key of that table.
#[test]
fn clap_groups_and_serde_tables_agree() {
    let layout = Layout::of_the_structs();
    let serde_tables = serde_json::to_value(ServeOpts::default()).expect("json");
    let serde_tables: Vec<&String> = serde_tables.as_object().expect("object").keys().collect();
    let clap_tables: Vec<&String> = layout.sections.keys().collect();
    let mut sorted = serde_tables.clone();
    sorted.sort();
    assert_eq!(sorted, clap_tables);
    let serve_args = ServeOpts::augment_args(clap::Command::new("serve"));
    let in_sections: usize = layout.sections.values().map(Vec::len).sum();
    assert_eq!(
        in_sections,
        serve_args.get_arguments().count(),
        "each argument in a section"
    );
    for (table, keys) in &layout.sections {
        for key in keys {
            // A map fits no setting's type: the error says so unless the key is unknown.
            let err = FileConfig::parse(&format!("[{table}]\n{key} = {{}}"))
                .expect_err("a map is no setting");
            assert!(
                !format!("{err:#}").contains("unknown field"),
                "[{table}] {key}: {err:#}"
            );
        }
    }
}

#[test]
fn the_old_flat_file_says_where_each_key_moved() {
    let err =
        FileConfig::parse("data_dir = \"/d\"\naccess_token_ttl = 300\nlisten = \"0.0.0.0:1\"")
            .expect_err("flat keys");
    let msg = err.to_string();
    assert!(
        msg.contains("`access_token_ttl` is now under `[auth]`"),
        "{msg}"
    );
    assert!(msg.contains("`listen` is now under `[http]`"), "{msg}");
    let err = FileConfig::parse("[http]\naccess_token_ttl = 300").expect_err("wrong section");
    assert!(
        err.to_string()
            .contains("`access_token_ttl` belongs under `[auth]`, not `[http]`"),
        "{err}"
    );
    let err = FileConfig::parse("colour = 1").expect_err("unknown");
    assert!(err.to_string().contains("unknown key `colour`"), "{err}");
    let err = FileConfig::parse("[http]\ncolour = 1").expect_err("unknown in a section");
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    assert!(
        FileConfig::parse("config = \"/x\"").is_err(),
        "the file names no file"
    );
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let token = "prometheus-token-0123456789";
    let cli = parse(&[
        "--database-url",
        "postgres://steward:hunter2-db@db/steward",
        "serve",
        "--metrics-token",
        token,
    ]);
    let file = file(&format!(
        "database_url = \"postgres://u:hunter2-file@db/s\"\n[metrics]\nmetrics_token = \"{token}-file\""
    ));
    let r = Resolved::new(&cli.global, &file);
    for debug in [format!("{cli:?}"), format!("{file:?}"), format!("{r:?}")] {
        assert!(
            !debug.contains("hunter2") && !debug.contains(token),
            "a secret in {debug}"
        );
        assert!(debug.contains("[redacted]"), "{debug}");
    }
    assert_eq!(&*r.database_url, "postgres://steward:hunter2-db@db/steward");
}

/// Set in the child process of [`precedence_flag_over_env_over_file_over_default`].
const CHILD: &str = "STEWARD_CONFIG_TEST_CHILD";

/// One setting of each kind: a path (global), a number, a list, a duration, a bool, a path.
const FILE: &str = r#"
data_dir = "/file/data"
[http]
max_connections = 100
trusted_proxies = ["10.0.0.1"]
[ssh]
ssh_idle_timeout = 100
[execution]
execution_runners = false
[agent]
agent_binary = "/file/agent"
"#;

type Kinds = (PathBuf, usize, Vec<String>, u64, bool, Option<PathBuf>);

fn kinds(args: &[&str], text: &str) -> Kinds {
    let (r, _, api) = resolve(args, text);
    let proxies = api
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    let runners = api.execution_runners;
    (
        r.data_dir,
        api.max_connections,
        proxies,
        api.ssh_idle_timeout.as_secs(),
        runners,
        api.agent_binary,
    )
}

fn expect(level: &str) -> Kinds {
    let (data, n, proxy, secs, runners) = match level {
        "file" => ("/file/data", 100, vec!["10.0.0.1/32"], 100, false),
        "env" => (
            "/env/data",
            200,
            vec!["10.0.0.2/32", "10.0.0.3/32"],
            200,
            true,
        ),
        _ => ("/flag/data", 300, vec!["10.0.0.4/32"], 300, false),
    };
    let proxies = proxy.into_iter().map(String::from).collect();
    let agent = Some(PathBuf::from(format!("/{level}/agent")));
    (PathBuf::from(data), n, proxies, secs, runners, agent)
}

const FLAGS: [&str; 13] = [
    "--data-dir",
    "/flag/data",
    "serve",
    "--max-connections",
    "300",
    "--trusted-proxy",
    "10.0.0.4",
    "--ssh-idle-timeout",
    "300",
    "--execution-runners",
    "false",
    "--agent-binary",
    "/flag/agent",
];

#[test]
fn precedence_flag_over_env_over_file_over_default() {
    let (r, _, api) = resolve(&["serve"], "");
    assert_eq!(r.data_dir, PathBuf::from("./steward-data"));
    assert_eq!(
        (api.max_connections, api.ssh_idle_timeout.as_secs()),
        (10_000, 300)
    );
    assert!(api.trusted_proxies.is_empty() && api.execution_runners);
    assert_eq!(kinds(&["serve"], FILE), expect("file"));
    assert_eq!(kinds(&FLAGS, FILE), expect("flag"));
    // The environment is read by clap from the process's own: set it in a child process (this
    // test binary again, running only `environment_in_a_child_process`).
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "config::tests::environment_in_a_child_process"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("STEWARD_DATA_DIR", "/env/data")
        .env("STEWARD_MAX_CONNECTIONS", "200")
        .env("STEWARD_TRUSTED_PROXIES", "10.0.0.2,10.0.0.3")
        .env("STEWARD_SSH_IDLE_TIMEOUT", "200")
        .env("STEWARD_EXECUTION_RUNNERS", "true")
        .env("STEWARD_AGENT_BINARY", "/env/agent")
        .output()
        .expect("the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn environment_in_a_child_process() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    assert_eq!(kinds(&["serve"], FILE), expect("env"), "env over the file");
    assert_eq!(kinds(&FLAGS, FILE), expect("flag"), "flags over env");
}
