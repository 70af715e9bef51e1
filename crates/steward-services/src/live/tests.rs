//! The hub's tests: status rules, frames, scopes, slow clients, large snapshots.
use super::*;
use steward_proto::metrics::LiveServerMessage;

#[test]
fn the_status_rule() {
    let now = 1_000_000;
    assert_eq!(
        status(now, 10, "agentless", None, false),
        HostStatus::Unknown
    );
    assert_eq!(
        status(now, 10, "off", Some(now), false),
        HostStatus::Unknown
    );
    assert_eq!(
        status(now, 10, "agent", Some(now - 29_999), false),
        HostStatus::Online
    );
    assert_eq!(
        status(now, 10, "agent", Some(now - 30_000), false),
        HostStatus::Offline
    );
    assert_eq!(
        status(now, 10, "agent", Some(now - 1_000), true),
        HostStatus::Degraded
    );
    assert_eq!(
        status(now, 10, "agent", Some(now - 40_000), true),
        HostStatus::Offline
    );
    // A slow interval gets three intervals.
    assert_eq!(
        status(now, 60, "agentless", Some(now - 170_000), false),
        HostStatus::Online
    );
    assert_eq!(
        status(now, 60, "agentless", Some(now - 180_000), false),
        HostStatus::Offline
    );
}

fn point(name: &'static str, label: &str, value: f64) -> Point {
    Point {
        name,
        label: label.into(),
        value,
    }
}

#[test]
fn a_large_fleet_snapshot_comes_in_bounded_parts_in_one_queue_slot() {
    let hub = Hub::default();
    let n = 1_000;
    let metas: HashMap<String, Meta> = (0..n)
        .map(|i| {
            let meta = Meta {
                org_id: "o".into(),
                name: format!("host-{i:04}"),
                tags: vec!["web".into()],
                monitoring: "agent".into(),
                interval_secs: 1,
                checks_down: 0,
            };
            (format!("id-{i:04}"), meta)
        })
        .collect();
    hub.set_meta(metas);
    for i in 0..n {
        for t in 0..SPARK_LEN as i64 {
            hub.update(
                &format!("id-{i:04}"),
                1_000 + t * 1_000,
                &[point("cpu.usage", "", 12.345_678 + t as f64)],
            );
        }
    }
    let scope = Scope {
        org_id: "o".into(),
        visible_tags: None,
    };
    let mut client = hub.connect(scope);
    hub.subscribe(client.id, Subscription::Fleet);
    hub.tick(62_000);
    let batch = client.rx.try_recv().expect("the snapshot");
    assert!(batch.len() > 1, "a 1,000-server snapshot is split");
    let mut names = Vec::new();
    for (i, part) in batch.iter().enumerate() {
        assert!(
            part.len() <= SNAPSHOT_PART_BYTES + 2_048,
            "part {i} is {} bytes",
            part.len()
        );
        // (How well such a part compresses: steward-api's `ws_deflate` tests.)
        let msg: LiveServerMessage =
            serde_json::from_str(part.as_str()).expect("a snapshot message");
        let LiveServerMessage::Snapshot {
            part,
            parts,
            servers,
            ..
        } = msg
        else {
            panic!("not a snapshot: {msg:?}");
        };
        assert_eq!((part as usize, parts as usize), (i, batch.len()));
        for s in servers {
            assert_eq!(s.sparkline.as_ref().map(Vec::len), Some(SPARK_LEN));
            names.push(s.name);
        }
    }
    let expected: Vec<String> = (0..n).map(|i| format!("host-{i:04}")).collect();
    assert_eq!(
        names, expected,
        "every server once, sorted across the parts"
    );
    assert!(
        client.rx.try_recv().is_err(),
        "the parts take one queue slot"
    );
}

#[test]
fn the_encoded_summary_follows_samples_metadata_and_status() {
    let hub = Hub::default();
    let meta = |name: &str| Meta {
        org_id: "o".into(),
        name: name.into(),
        tags: vec!["a".into()],
        monitoring: "agent".into(),
        interval_secs: 10,
        checks_down: 0,
    };
    hub.set_meta(HashMap::from([
        ("s1".to_string(), meta("web")),
        ("s2".to_string(), meta("db")),
    ]));
    let scope = Scope {
        org_id: "o".into(),
        visible_tags: None,
    };
    let same = |now: i64| {
        let encoded: serde_json::Value =
            serde_json::from_str(&hub.summary_json(&scope, now)).expect("json");
        let built = serde_json::to_value(hub.summary(&scope, now, false)).expect("json");
        assert_eq!(encoded["items"], built, "at {now}");
        encoded
    };
    hub.update("s1", 1_000, &[point("cpu.usage", "", 5.0)]);
    let v = same(2_000);
    assert_eq!(v["items"][0]["name"], "db", "sorted by name");
    assert_eq!(v["items"][1]["cpu_pct"], 5.0);
    assert_eq!(v["items"][1]["status"], "online");
    // A new sample, then a rename, then silence: each shows at once.
    hub.update("s1", 3_000, &[point("cpu.usage", "", 7.0)]);
    assert_eq!(same(4_000)["items"][1]["cpu_pct"], 7.0);
    hub.set_meta(HashMap::from([
        ("s1".to_string(), meta("app")),
        ("s2".to_string(), meta("db")),
    ]));
    assert_eq!(same(5_000)["items"][0]["name"], "app");
    assert_eq!(same(40_000)["items"][0]["status"], "offline");
}

#[test]
fn summary_values_and_a_bounded_sparkline() {
    let hub = Hub::default();
    {
        let mut views = hub.0.views.write().expect("lock");
        views.insert(
            "s1".into(),
            View {
                meta: Some(Meta {
                    org_id: "o".into(),
                    name: "web".into(),
                    tags: vec!["a".into()],
                    monitoring: "agentless".into(),
                    interval_secs: 10,
                    checks_down: 0,
                }),
                ..Default::default()
            },
        );
    }
    for i in 0..100 {
        hub.update(
            "s1",
            1_000 + i,
            &[
                point("cpu.usage", "", i as f64),
                point("disk.used_pct", "/", 50.0),
                point("disk.used_pct", "/data", 97.0),
                point("net.rx_bytes", "eth0", 100.0),
                point("net.rx_bytes", "eth1", 50.0),
            ],
        );
    }
    // An older sample does not move the view back.
    hub.update("s1", 5, &[point("cpu.usage", "", 1.0)]);
    let scope = Scope {
        org_id: "o".into(),
        visible_tags: None,
    };
    let s = &hub.summary(&scope, 1_100, true)[0];
    assert_eq!(s.cpu_pct, Some(99.0));
    assert_eq!(s.disk_mount.as_deref(), Some("/data"));
    assert_eq!(s.net_rx_bps, Some(150.0));
    assert_eq!(s.status, HostStatus::Degraded);
    let spark = s.sparkline.as_ref().expect("sparkline");
    assert_eq!(spark.len(), SPARK_LEN);
    assert_eq!(spark.last(), Some(&99.0));
    let other = Scope {
        org_id: "o".into(),
        visible_tags: Some(["b".to_string()].into()),
    };
    assert!(hub.summary(&other, 1_100, true).is_empty());
    assert!(hub.summary(&scope, 1_100, false)[0].sparkline.is_none());
}
