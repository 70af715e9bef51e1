//! The buffer on realistic snapshots of this host: order, numbering across reconnects, the
//! one-hour bound and its size.

use super::*;
use steward_metrics::agent_proto::{AgentMessage, Samples};

/// A real reading of this host, then the same with counters moved on `i` seconds.
fn snapshot(base: &RawSnapshot, i: i64) -> RawSnapshot {
    let mut s = base.clone();
    s.ts_ms = 1_700_000_000_000 + i * 1000;
    let step = i as u64;
    if let Some(c) = &mut s.cpu {
        c.user += step * 37;
        c.idle += step * 150;
    }
    for core in &mut s.cores {
        core.times.user += step * 17;
        core.times.idle += step * 80;
    }
    for n in &mut s.nets {
        n.rx_bytes += step * 1500 * 7;
        n.rx_packets += step * 7;
    }
    for d in &mut s.disks {
        d.writes += step * 3;
        d.write_sectors += step * 24;
    }
    s.uptime_secs = s.uptime_secs.map(|u| u + i as f64);
    s
}

fn base() -> RawSnapshot {
    crate::collect::Collector::new().collect(0)
}

fn decode(frame: &str) -> Samples {
    match serde_json::from_str::<AgentMessage>(frame).expect("frame") {
        AgentMessage::Samples(s) => s,
        other => panic!("not samples: {other:?}"),
    }
}

fn drain(buf: &mut Buffer) -> Vec<Samples> {
    let mut out = Vec::new();
    while let Some(f) = buf.next_frame() {
        let s = decode(&f);
        buf.ack(s.seq);
        out.push(s);
    }
    out
}

#[test]
fn live_snapshots_go_one_per_batch() {
    let b0 = base();
    let mut buf = Buffer::new(1);
    for i in 0..3 {
        buf.push(snapshot(&b0, i));
        let f = buf.next_frame().expect("frame");
        let s = decode(&f);
        assert_eq!(s.seq, i as u64 + 1);
        assert_eq!(s.snapshots[0].ts_ms, snapshot(&b0, i).ts_ms, "sent as read");
        assert_eq!(s.snapshots[0].cpu, snapshot(&b0, i).cpu);
        assert!(buf.next_frame().is_none());
        buf.ack(s.seq);
    }
    assert_eq!(buf.snapshots(), 0);
    assert_eq!(buf.bytes(), 0);
}

#[test]
fn an_hour_offline_fits_compactly_and_comes_back_in_order() {
    let b0 = base();
    let mut buf = Buffer::new(1);
    for i in 0..3600 {
        buf.push(snapshot(&b0, i));
    }
    assert_eq!(buf.snapshots(), 3600);
    assert_eq!(buf.dropped_total(), 0);
    let json_size = serde_json::to_string(&snapshot(&b0, 0))
        .expect("json")
        .len();
    eprintln!(
        "an hour at 1 s: {} bytes held for 3600 snapshots of {json_size} bytes of JSON each",
        buf.bytes()
    );
    assert!(
        buf.bytes() < 1 << 20,
        "an hour of snapshots in {} bytes",
        buf.bytes()
    );
    buf.welcomed(0);
    let batches = drain(&mut buf);
    let ts: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.snapshots.iter().map(|s| s.ts_ms))
        .collect();
    assert_eq!(ts.len(), 3600);
    assert!(
        ts.windows(2).all(|w| w[1] - w[0] == 1000),
        "no gap, no duplicate"
    );
    let seqs: Vec<u64> = batches.iter().map(|b| b.seq).collect();
    assert_eq!(seqs, (1..=60).collect::<Vec<_>>());
    assert!(batches.iter().all(|b| b.check().is_ok()));
    // Through JSON and back (serde_json may move a float by one ulp), then deflate.
    let expected: RawSnapshot =
        serde_json::from_str(&serde_json::to_string(&snapshot(&b0, 300)).expect("json"))
            .expect("parse");
    assert_eq!(
        batches[5].snapshots[0], expected,
        "content survives deflate"
    );
}

#[test]
fn beyond_an_hour_the_oldest_are_dropped_and_reported() {
    let b0 = base();
    let mut buf = Buffer::new(1);
    for i in 0..3700 {
        buf.push(snapshot(&b0, i));
    }
    // The first minute-chunk older than an hour went; the newest hour is complete.
    assert_eq!(buf.dropped_total(), 60);
    assert_eq!(buf.snapshots(), 3640);
    buf.welcomed(0);
    let batches = drain(&mut buf);
    assert_eq!(batches[0].dropped, 60);
    assert_eq!(batches[0].snapshots[0].ts_ms, snapshot(&b0, 60).ts_ms);
    assert!(batches[1..].iter().all(|b| b.dropped == 0));
}

#[test]
fn after_a_reconnect_stored_batches_are_skipped_and_the_rest_renumbered() {
    let b0 = base();
    let mut buf = Buffer::new(1);
    buf.welcomed(10);
    let mut sent = Vec::new();
    for i in 0..3 {
        buf.push(snapshot(&b0, i));
        sent.push(decode(&buf.next_frame().expect("frame")));
    }
    assert_eq!(sent.iter().map(|s| s.seq).collect::<Vec<_>>(), [11, 12, 13]);
    // The hub stored 11 and 12 but its acks were lost with the connection.
    buf.push(snapshot(&b0, 3));
    buf.disconnected();
    buf.push(snapshot(&b0, 4));
    buf.welcomed(12);
    let batches = drain(&mut buf);
    let got: Vec<(u64, Vec<i64>)> = batches
        .iter()
        .map(|b| (b.seq, b.snapshots.iter().map(|s| s.ts_ms).collect()))
        .collect();
    let ts = |i| snapshot(&b0, i).ts_ms;
    assert_eq!(got, [(13, vec![ts(2)]), (14, vec![ts(3), ts(4)])]);
}

#[test]
fn a_restarted_agent_numbers_after_the_hubs_last_seq() {
    let b0 = base();
    let mut buf = Buffer::new(10);
    buf.push(snapshot(&b0, 0));
    buf.welcomed(500);
    let s = decode(&buf.next_frame().expect("frame"));
    assert_eq!(s.seq, 501);
    // The hub lost its data (last_seq back to 0): numbering follows it.
    buf.disconnected();
    buf.welcomed(0);
    assert_eq!(decode(&buf.next_frame().expect("frame")).seq, 1);
}

#[test]
fn the_window_bounds_batches_in_flight() {
    let b0 = base();
    let mut buf = Buffer::new(1);
    for i in 0..400 {
        buf.push(snapshot(&b0, i));
    }
    for _ in 0..WINDOW {
        assert!(buf.next_frame().is_some());
    }
    assert!(buf.next_frame().is_none());
    buf.ack(2);
    assert!(buf.next_frame().is_some());
    assert!(buf.next_frame().is_some());
    assert!(buf.next_frame().is_none());
    assert!(buf.has_inflight());
}

#[test]
fn chunk_length_follows_the_interval() {
    assert_eq!(chunk_len(1), 60);
    assert_eq!(chunk_len(10), 36);
    assert_eq!(chunk_len(60), 6);
}
