//! The real `steward-agent` binary against a fake hub on 127.0.0.1: enrollment and push,
//! a refused token, an outage with backfill, a lost ack, and SIGTERM.

mod support;

use std::time::Duration;

use steward_metrics::{RawSnapshot, derive};
use support::hub::{FakeHub, HubState};
use support::{Agent, TempDir, now_ms};

const TOKEN: &str = "stw_agent_test_token";

fn agent_args<'a>(hub: &'a str, token_file: &'a str, interval: &'a str) -> Vec<&'a str> {
    vec![
        "--hub",
        hub,
        "--token-file",
        token_file,
        "--interval",
        interval,
    ]
}

/// Stored batches are numbered 1, 2, 3… and their snapshots strictly follow each other, each
/// at most `max_gap_ms` after the one before.
fn assert_complete(st: &HubState, max_gap_ms: i64) {
    assert!(st.violations.is_empty(), "{:?}", st.violations);
    let seqs: Vec<u64> = st.stored.iter().map(|b| b.seq).collect();
    let want: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, want, "batch numbers without gaps");
    let ts = st.stored_ts();
    for w in ts.windows(2) {
        assert!(w[1] > w[0], "timestamps strictly increase: {w:?}");
        assert!(w[1] - w[0] <= max_gap_ms, "no hole in the data: {w:?}");
    }
}

fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path).expect(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolls_and_pushes_plausible_snapshots_at_the_hubs_interval() {
    let dir = TempDir::new("push");
    let token = dir.file("token", &format!("{TOKEN}\n"));
    // The agent asks for 10 s; the hub's welcome (1 s) wins.
    let hub = FakeHub::start(TOKEN, 1).await;
    let url = hub.url();
    let agent = Agent::start(&agent_args(&url, token.to_str().expect("path"), "10"));
    hub.wait_for(15, "four snapshots", |s| s.stored_ts().len() >= 4)
        .await;

    let st = hub.state();
    assert_complete(&st, 1500);
    let hello = &st.hellos[0];
    assert_eq!(
        hello.hostname,
        read_proc("/proc/sys/kernel/hostname").trim()
    );
    assert_eq!(hello.kernel, read_proc("/proc/sys/kernel/osrelease").trim());
    assert_eq!(hello.arch, std::env::consts::ARCH);
    assert_eq!(
        hello.protocol,
        steward_metrics::agent_proto::PROTOCOL_VERSION
    );

    let snaps: Vec<&RawSnapshot> = st.stored.iter().flat_map(|b| &b.snapshots).collect();
    let last = snaps[snaps.len() - 1];
    let mem_total_kb: u64 = read_proc("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal");
    assert_eq!(last.mem.expect("mem").total, mem_total_kb * 1024);
    let cores = read_proc("/proc/stat")
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    assert_eq!(last.cores.len(), cores);
    assert!(
        last.mounts.iter().any(|m| m.mount == "/"),
        "{:?}",
        last.mounts
    );
    assert!(last.procs.is_some_and(|p| p > 1));
    assert!(last.uptime_secs.is_some_and(|u| u > 0.0));
    assert!(
        (now_ms() - last.ts_ms).abs() < 10_000,
        "stamped with the current time"
    );

    // The hub can turn them into sensible numbers.
    let points = derive(Some(snaps[snaps.len() - 2]), last);
    let usage = points
        .iter()
        .find(|p| p.name == "cpu.usage" && p.label.is_empty())
        .expect("cpu.usage");
    assert!((0.0..=100.0).contains(&usage.value), "{usage:?}");
    drop(st);
    assert!(
        agent.stderr().contains("connected to"),
        "logs the connection: {}",
        agent.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_retried_slowly_and_a_corrected_file_is_picked_up() {
    let dir = TempDir::new("token");
    let token = dir.file("token", "not-the-token\n");
    let hub = FakeHub::start(TOKEN, 1).await;
    let url = hub.url();
    let agent = Agent::start(&agent_args(&url, token.to_str().expect("path"), "1"));
    hub.wait_for(15, "a second refused attempt", |s| s.unauthorized >= 2)
        .await;
    assert!(hub.state().stored.is_empty());
    assert_eq!(hub.state().welcomed, 0);
    let log = agent.stderr();
    assert!(
        log.contains("refused the enrollment token (401 Unauthorized)"),
        "says why: {log}"
    );
    assert!(
        !log.contains("not-the-token"),
        "never logs the token: {log}"
    );

    // Fixing the file is enough; no restart.
    std::fs::write(&token, TOKEN).expect("write token");
    hub.wait_for(25, "a batch after the fix", |s| !s.stored.is_empty())
        .await;
    assert_complete(&hub.state(), 1500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_while_the_hub_is_down_and_backfills_in_order() {
    let dir = TempDir::new("outage");
    let token = dir.file("token", TOKEN);
    let mut hub = FakeHub::start(TOKEN, 1).await;
    let url = hub.url();
    let agent = Agent::start(&agent_args(&url, token.to_str().expect("path"), "1"));
    hub.wait_for(15, "first snapshots", |s| s.stored_ts().len() >= 2)
        .await;

    hub.stop();
    let down_at = now_ms();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let up_at = now_ms();
    hub.restart().await;
    hub.wait_for(40, "the backfill and a live snapshot", |s| {
        s.stored_ts().last().is_some_and(|&t| t > up_at + 1000)
    })
    .await;

    let st = hub.state();
    assert_complete(&st, 1500);
    let ts = st.stored_ts();
    let during = ts.iter().filter(|&&t| t > down_at && t < up_at).count();
    assert!(
        during >= 5,
        "the outage is filled in: {during} snapshots in 6 s"
    );
    // Nothing was sent twice for storing.
    let mut firsts: Vec<i64> = st.received.iter().map(|r| r.1).collect();
    firsts.sort_unstable();
    firsts.dedup();
    assert_eq!(
        firsts.len(),
        st.received.len(),
        "no batch resent: {:?}",
        st.received
    );
    assert!(st.welcomed >= 2);
    drop(st);
    assert!(agent.stderr().contains("connection to the hub lost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stored_but_not_acknowledged_is_not_stored_twice() {
    let dir = TempDir::new("lostack");
    let token = dir.file("token", TOKEN);
    let hub = FakeHub::start(TOKEN, 1).await;
    let url = hub.url();
    let _agent = Agent::start(&agent_args(&url, token.to_str().expect("path"), "1"));
    hub.wait_for(15, "a first batch", |s| !s.stored.is_empty())
        .await;
    hub.state().drop_next_ack = true;
    hub.wait_for(20, "a second connection and more data", |s| {
        s.welcomed >= 2 && s.stored.len() >= 5
    })
    .await;
    let st = hub.state();
    assert_complete(&st, 1500);
    // The batch whose ack was lost was not resent: the welcome's last_seq covered it.
    let stored_firsts: Vec<i64> = st.stored.iter().map(|b| b.snapshots[0].ts_ms).collect();
    for (seq, first) in &st.received {
        let times = st.received.iter().filter(|r| r.1 == *first).count();
        assert_eq!(
            times, 1,
            "batch {seq} (first ts {first}) received {times} times"
        );
    }
    assert_eq!(stored_firsts.len(), st.received.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_can_change_the_interval() {
    let dir = TempDir::new("config");
    let token = dir.file("token", TOKEN);
    let hub = FakeHub::start(TOKEN, 1).await;
    hub.state().config_after_welcome = Some(2);
    let url = hub.url();
    let _agent = Agent::start(&agent_args(&url, token.to_str().expect("path"), "1"));
    hub.wait_for(20, "five snapshots", |s| s.stored_ts().len() >= 5)
        .await;
    let st = hub.state();
    // A boundary too close to the snapshot before is skipped: up to 1.5 intervals apart.
    assert_complete(&st, 3000);
    let ts = st.stored_ts();
    // Once the config arrived (within the first second or two), they are 2 s apart.
    for w in ts[ts.len() - 4..].windows(2) {
        assert!((1900..=2100).contains(&(w[1] - w[0])), "2 s apart: {ts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_agent_with_status_0() {
    let dir = TempDir::new("sigterm");
    let token = dir.file("token", TOKEN);
    let hub = FakeHub::start(TOKEN, 1).await;
    let url = hub.url();

    // Connected.
    let mut agent = Agent::start(&agent_args(&url, token.to_str().expect("path"), "1"));
    hub.wait_for(15, "a batch", |s| !s.stored.is_empty()).await;
    agent.signal("TERM");
    let status = agent.wait_exit(5).await;
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    assert!(agent.stderr().contains("SIGTERM: stopping"));

    // Waiting between attempts on an unreachable hub.
    let mut agent = Agent::start(&agent_args(
        "http://127.0.0.1:9",
        token.to_str().expect("path"),
        "1",
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    agent.signal("TERM");
    let status = agent.wait_exit(5).await;
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    assert!(agent.stderr().contains("cannot connect to the hub"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_with_status_2() {
    let mut agent = Agent::start(&["--hub", "ftp://x", "--token-file", "/nonexistent"]);
    let status = agent.wait_exit(5).await;
    assert_eq!(status.code(), Some(2));
    assert!(agent.stderr().contains("scheme"), "{}", agent.stderr());
}
