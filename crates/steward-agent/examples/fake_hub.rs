//! The tests' fake hub as a program, for measuring the agent by hand (docs/notes/agent.md):
//! `cargo run --example fake_hub -p steward-agent -- 127.0.0.1:7070 TOKEN INTERVAL_SECS`.
//! Prints what it stored every 10 s.

#[path = "../tests/support/hub.rs"]
#[allow(dead_code)] // the tests use the rest
mod hub;

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, token, interval] = &args[..] else {
        eprintln!("usage: fake_hub ADDR TOKEN INTERVAL_SECS");
        std::process::exit(2);
    };
    let interval = interval.parse().expect("interval");
    let hub = hub::FakeHub::start_at(addr, token, interval).await;
    eprintln!("fake hub on {}", hub.url());
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let st = hub.state();
        let bytes: usize = st
            .stored
            .iter()
            .map(|b| serde_json::to_string(b).map_or(0, |s| s.len()))
            .sum();
        eprintln!(
            "stored {} batches, {} snapshots, {} bytes of JSON; violations {:?}",
            st.stored.len(),
            st.stored_ts().len(),
            bytes,
            st.violations
        );
    }
}
