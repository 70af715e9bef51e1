//! The metric store against a real database (SQLite by default, PostgreSQL with
//! `STEWARD_TEST_DB=postgres`): exact round trips, immediate visibility, duplicates, crash
//! recovery from the head log, rollups against a naive computation, retention, and the
//! bytes-per-sample ceiling measured on the database's own files or relations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use steward_core::Clock;
use steward_db::{Backend, Db};
use steward_services::metrics::store::{Store, StoreConfig};
use steward_tsdb::codec;
use steward_tsdb::query::Retention;
use steward_tsdb::rollup::{HOUR_MS, MINUTE_MS, Tier};
use steward_tsdb::sim::{self, Rng};

const T0: i64 = 1_780_000_000_000;
const DAY: i64 = 86_400_000;

/// A clock the test moves.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        steward_core::clock::from_ms(self.0.load(Ordering::SeqCst))
    }
}

impl TestClock {
    fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

struct Env {
    db: Db,
    clock: Arc<TestClock>,
    _test_db: steward_testkit::TestDb,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let test_db = steward_testkit::TestDb::new(dir.path()).await;
        let db = Db::connect(&test_db.url).await.unwrap();
        db.migrate().await.unwrap();
        Self {
            db,
            clock: Arc::new(TestClock(AtomicI64::new(T0))),
            _test_db: test_db,
            _dir: dir,
        }
    }

    async fn server(&self, name: &str) -> String {
        let id = steward_db::new_id();
        let row = steward_db::servers::ServerRow {
            id: id.clone(),
            org_id: steward_core::DEFAULT_ORG_ID.to_string(),
            name: name.into(),
            host: "127.0.0.2".into(),
            port: 22,
            ssh_user: "root".into(),
            auth_method: "key".into(),
            notes: String::new(),
            created_by: None,
            created_at: T0,
            updated_at: T0,
            credential_kind: None,
            jump_server_id: None,
            monitoring: "agentless".into(),
            metrics_interval_secs: 10,
            endpoint_changed_at: None,
            endpoint_changed_by: None,
            endpoint_previous: None,
            tags: vec![],
        };
        let mut tx = self.db.begin().await.unwrap();
        steward_db::servers::insert(&mut tx, &row).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn store(&self, config: StoreConfig) -> Store {
        Store::open(self.db.clone(), config, self.clock.clone())
            .await
            .unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

fn bits(v: &[(i64, f64)]) -> Vec<(i64, u64)> {
    v.iter().map(|(t, x)| (*t, x.to_bits())).collect()
}

/// Ingests `n` samples every `interval` from `start` for each named series; returns what was
/// sent per series.
async fn feed(
    store: &Store,
    server: &str,
    series: &[(&str, &str)],
    start: i64,
    interval: i64,
    n: usize,
    seed: u64,
) -> BTreeMap<(String, String), Vec<(i64, f64)>> {
    let mut rng = Rng::new(seed);
    let mut sent: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for i in 0..n {
        // Jitter after the nominal time only, so each sample has its own step-aligned bucket.
        let ts = start + i as i64 * interval + rng.range(0, 6);
        let values: Vec<f64> = series
            .iter()
            .map(|_| (rng.unit() * 10_000.0).round() / 100.0)
            .collect();
        let batch: Vec<(&str, &str, f64)> = series
            .iter()
            .zip(&values)
            .map(|((n, l), v)| (*n, *l, *v))
            .collect();
        let out = store.ingest(server, ts, &batch).await.unwrap();
        assert_eq!(out.accepted, series.len());
        for ((n, l), v) in series.iter().zip(values) {
            sent.entry((n.to_string(), l.to_string()))
                .or_default()
                .push((ts, v));
        }
    }
    sent
}

const SERIES: [(&str, &str); 3] = [("cpu.user", ""), ("cpu.user", "cpu0"), ("mem.used", "")];

#[tokio::test]
async fn ingested_samples_come_back_exactly_from_head_and_from_stored_chunks() {
    let env = Env::new().await;
    let server = env.server("web-1").await;
    let store = env.store(StoreConfig::default()).await;
    // 2,000 samples: two sealed chunks per series plus an open one.
    let sent = feed(&store, &server, &SERIES, T0, 10_000, 2_000, 1).await;
    let end = T0 + 2_000 * 10_000;
    env.clock.set(end);
    for stage in ["head", "stored"] {
        for ((name, label), want) in &sent {
            let got = store.raw(&server, name, label, T0 - 10, end).await.unwrap();
            assert_eq!(bits(&got), bits(want), "{stage}: {name}/{label}");
        }
        let stats = store.flush().await.unwrap();
        if stage == "head" {
            assert_eq!(stats.chunks, 6, "two full chunks per series stored");
        }
    }
    assert_eq!(
        env.count("SELECT COUNT(*) FROM metric_chunks WHERE tier = 0")
            .await,
        6
    );
    // Range at the raw resolution: each point is one sample.
    let from = T0 + 1_000 * 10_000;
    let to = from + 300 * 10_000;
    let r = store
        .range(&server, &["cpu.user"], from, to, 10_000)
        .await
        .unwrap();
    assert_eq!((r.tier, r.step_ms), (Tier::Raw, 10_000));
    assert_eq!(r.series.len(), 2, "both labels of cpu.user");
    for s in &r.series {
        let want = &sent[&(s.name.clone(), s.label.clone())];
        let want: Vec<(i64, f64)> = want
            .iter()
            .filter(|(t, _)| *t >= from && *t < to + 10_000)
            .cloned()
            .collect();
        assert_eq!(s.points.len(), want.len());
        for (p, (t, v)) in s.points.iter().zip(&want) {
            assert_eq!(p.ts, t - t.rem_euclid(10_000));
            assert_eq!((p.min, p.avg, p.max), (*v, *v, *v));
        }
    }
}

#[tokio::test]
async fn samples_are_queryable_as_soon_as_ingested() {
    let env = Env::new().await;
    let server = env.server("web-1").await;
    let store = env.store(StoreConfig::default()).await;
    store
        .ingest(&server, T0, &[("load.load1", "", 0.42)])
        .await
        .unwrap();
    let latest = store.latest(&server).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!((latest[0].ts, latest[0].value), (T0, 0.42));
    let r = store
        .range(&server, &["load.load1"], T0 - HOUR_MS, T0 + 1, 0)
        .await
        .unwrap();
    let p = &r.series[0].points;
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].avg, 0.42);
    assert_eq!(env.count("SELECT COUNT(*) FROM metric_chunks").await, 0);
}

#[tokio::test]
async fn duplicates_and_late_samples_are_not_stored_twice_even_after_a_restart() {
    let env = Env::new().await;
    let server = env.server("web-1").await;
    let store = env.store(StoreConfig::default()).await;
    let s = [("cpu.user", "", 1.0)];
    assert_eq!(store.ingest(&server, T0, &s).await.unwrap().accepted, 1);
    assert_eq!(store.ingest(&server, T0, &s).await.unwrap().rejected, 1);
    assert_eq!(store.ingest(&server, T0 - 1, &s).await.unwrap().rejected, 1);
    for i in 1..=800 {
        store.ingest(&server, T0 + i * 1000, &s).await.unwrap();
    }
    store.flush().await.unwrap();
    drop(store);
    let store = env.store(StoreConfig::default()).await;
    // An agent backfilling after a reconnect resends what was stored (sealed) and what was
    // only in the head log.
    for i in 0..=800 {
        let out = store.ingest(&server, T0 + i * 1000, &s).await.unwrap();
        assert_eq!(out.rejected, 1, "sample {i} stored twice");
    }
    store.flush_at(T0 + 30 * DAY).await.unwrap();
    let got = store
        .raw(&server, "cpu.user", "", T0 - 1, T0 + DAY)
        .await
        .unwrap();
    assert_eq!(got.len(), 801);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
}

#[tokio::test]
async fn a_killed_store_loses_nothing_it_flushed_and_its_log_stays_bounded() {
    let env = Env::new().await;
    let server = env.server("db-1").await;
    let cfg = StoreConfig::default();
    let store = env.store(cfg.clone()).await;
    let mut sent = BTreeMap::new();
    // 1 s samples, flushed every 5 s of simulated time, for 40 minutes: chunks seal along
    // the way, the log rows they cover are deleted.
    let mut t = T0;
    for round in 0..480 {
        let part = feed(&store, &server, &SERIES, t, 1_000, 5, 100 + round).await;
        for (k, v) in part {
            sent.entry(k).or_insert_with(Vec::new).extend(v);
        }
        t += 5_000;
        env.clock.set(t);
        store.flush().await.unwrap();
    }
    let log_rows = env.count("SELECT COUNT(*) FROM metric_head_log").await;
    // Chunks of 720 samples (12 min at 1 s) pin at most that much log, or the 10 minutes
    // after which open chunks are re-logged.
    assert!(
        log_rows <= (cfg.head.max_pin_age_ms / 5_000) + 2,
        "{log_rows} log rows kept"
    );
    // Samples after the last flush may be lost; these are never flushed.
    feed(&store, &server, &SERIES, t, 1_000, 3, 9).await;
    drop(store); // no shutdown, no final flush
    let store = env.store(cfg).await;
    for ((name, label), want) in &sent {
        let got = store.raw(&server, name, label, T0 - 10, t).await.unwrap();
        assert_eq!(bits(&got), bits(want), "{name}/{label} after the restart");
    }
    // The restarted store carries on: nothing is stored twice.
    feed(&store, &server, &SERIES, t + 5_000, 1_000, 900, 10).await;
    store.flush_at(t + DAY).await.unwrap();
    let stored = env
        .count("SELECT CAST(COALESCE(SUM(samples), 0) AS BIGINT) FROM metric_chunks WHERE tier = 0")
        .await;
    assert_eq!(stored as usize, 3 * (480 * 5 + 900));
}

/// Naive per-bucket aggregates of samples: (bucket, min, max, sum, count).
fn naive(samples: &[(i64, f64)], width: i64) -> Vec<(i64, f64, f64, f64, u64)> {
    let mut g: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for &(t, v) in samples {
        if !v.is_nan() {
            g.entry(t - t.rem_euclid(width)).or_default().push(v);
        }
    }
    g.into_iter()
        .map(|(k, vs)| {
            let min = vs.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = vs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            (k, min, max, vs.iter().sum(), vs.len() as u64)
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test]
async fn rollups_match_a_naive_computation_and_queries_agree_before_and_after() {
    let env = Env::new().await;
    let server = env.server("app-1").await;
    let store = env.store(StoreConfig::default()).await;
    // Three days at 10 s with gaps (agent down for a while) and irregular intervals.
    let mut rng = Rng::new(4);
    let mut sent: Vec<(i64, f64)> = Vec::new();
    let mut t = T0;
    while t < T0 + 3 * DAY {
        t += if rng.unit() < 0.000_2 {
            rng.range(60_000, 3 * HOUR_MS)
        } else {
            10_000 + rng.range(-5, 6)
        };
        let v = if rng.unit() < 0.001 {
            f64::NAN
        } else {
            (rng.normal() * 1000.0 + 5000.0).round() / 100.0
        };
        store
            .ingest(&server, t, &[("cpu.user", "", v)])
            .await
            .unwrap();
        sent.push((t, v));
    }
    let end = t;
    env.clock.set(end + 1);
    store.flush().await.unwrap();
    let q_from = T0 + 5 * HOUR_MS;
    let q_to = T0 + 2 * DAY + 7 * HOUR_MS;
    let before = store
        .range(&server, &["cpu.user"], q_from, q_to, 0)
        .await
        .unwrap();
    let stats = store.rollup_at(end).await.unwrap();
    assert!(
        stats.minute_chunks > 0 && stats.hour_chunks > 0,
        "{stats:?}"
    );
    // Stored 1-minute and 1-hour buckets against the naive aggregates of what was sent.
    let id: i64 = sqlx::query_scalar("SELECT id FROM metric_series")
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    for (tier, width) in [(Tier::Minute, MINUTE_MS), (Tier::Hour, HOUR_MS)] {
        let rows = steward_db::metrics::chunks(
            &env.db.pool,
            &[id],
            tier.code(),
            i64::MIN / 2,
            i64::MAX / 2,
            0,
        )
        .await
        .unwrap();
        let stored: Vec<_> = rows
            .iter()
            .flat_map(|r| codec::decode_rollup(&r.data).unwrap())
            .collect();
        let watermark: i64 = sqlx::query_scalar(if tier == Tier::Minute {
            "SELECT minute_to FROM metric_series"
        } else {
            "SELECT hour_to FROM metric_series"
        })
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
        let want: Vec<_> = naive(&sent, width)
            .into_iter()
            .filter(|b| b.0 < watermark)
            .collect();
        assert!(want.len() > 10);
        assert_eq!(stored.len(), want.len(), "{tier:?} buckets");
        for (g, w) in stored.iter().zip(&want) {
            assert_eq!(
                (g.ts, g.min, g.max, g.count),
                (w.0, w.1, w.2, w.4),
                "{tier:?}"
            );
            assert!(close(g.sum, w.3), "{tier:?} sum {} vs {}", g.sum, w.3);
        }
    }
    // The same query answered from rollups (plus raw for what is not rolled up) as from raw.
    let after = store
        .range(&server, &["cpu.user"], q_from, q_to, 0)
        .await
        .unwrap();
    assert_eq!(after.tier, Tier::Minute);
    let (a, b) = (&before.series[0].points, &after.series[0].points);
    assert!(a.len() > 400 && a.len() <= 1000, "{} points", a.len());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!((x.ts, x.min, x.max), (y.ts, y.min, y.max));
        assert!(close(x.avg, y.avg), "{x:?} vs {y:?}");
    }
    // And an hourly-tier query against naive hourly aggregates.
    let r = store
        .range(&server, &["cpu.user"], T0, end, 3 * HOUR_MS)
        .await
        .unwrap();
    assert_eq!((r.tier, r.step_ms), (Tier::Hour, 3 * HOUR_MS));
    let want = naive(&sent, 3 * HOUR_MS);
    let got = &r.series[0].points;
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((g.ts, g.min, g.max), (w.0, w.1, w.2));
        assert!(close(g.avg, w.3 / w.4 as f64));
    }
    // A second pass has nothing left to do.
    let again = store.rollup_at(end).await.unwrap();
    assert_eq!((again.minute_chunks, again.hour_chunks), (0, 0));
}

#[tokio::test]
async fn retention_prunes_each_tier_and_queries_fall_back_to_coarser_tiers() {
    let env = Env::new().await;
    let server = env.server("old-1").await;
    let cfg = StoreConfig {
        retention: Retention {
            raw_ms: DAY,
            minute_ms: 3 * DAY,
            hour_ms: 10 * DAY,
        },
        ..Default::default()
    };
    let store = env.store(cfg).await;
    // 14 days at one sample a minute.
    let mut sent = Vec::new();
    for i in 0..(14 * 1440) {
        let t = T0 + i * MINUTE_MS;
        let v = (i % 97) as f64;
        store
            .ingest(&server, t, &[("disk.busy", "sda", v)])
            .await
            .unwrap();
        sent.push((t, v));
    }
    let now = T0 + 14 * DAY;
    env.clock.set(now);
    store.flush_at(now + DAY).await.unwrap();
    store.rollup_at(now).await.unwrap();
    let oldest = |tier: Tier| {
        let sql = format!(
            "SELECT MIN(start_ms) FROM metric_chunks WHERE tier = {}",
            tier.code()
        );
        let pool = env.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(oldest(Tier::Raw).await, T0);
    let pruned = store.prune_at(now).await.unwrap();
    assert!(
        pruned.raw > 0 && pruned.minute > 0 && pruned.hour > 0,
        "{pruned:?}"
    );
    let newest_end = |tier: Tier, before: i64| {
        let sql = format!(
            "SELECT COUNT(*) FROM metric_chunks WHERE tier = {} AND end_ms < {before}",
            tier.code()
        );
        let pool = env.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(newest_end(Tier::Raw, now - DAY).await, 0);
    assert_eq!(newest_end(Tier::Minute, now - 3 * DAY).await, 0);
    assert_eq!(newest_end(Tier::Hour, now - 10 * DAY).await, 0);
    // Still kept: the last day raw, three days of minutes.
    assert!(oldest(Tier::Raw).await <= now - DAY + 6 * HOUR_MS);
    assert!(oldest(Tier::Minute).await <= now - 3 * DAY + 6 * HOUR_MS);
    // A fine-grained query eight days back is answered from the hourly tier.
    let from = now - 8 * DAY;
    let r = store
        .range(&server, &["disk.busy"], from, from + 6 * HOUR_MS, 60_000)
        .await
        .unwrap();
    assert_eq!((r.tier, r.step_ms), (Tier::Hour, HOUR_MS));
    let want = naive(&sent, HOUR_MS);
    let first = from - from.rem_euclid(HOUR_MS);
    let want: Vec<_> = want
        .iter()
        .filter(|b| b.0 >= first && b.0 <= from + 6 * HOUR_MS)
        .collect();
    let got = &r.series[0].points;
    assert_eq!(got.len(), want.len());
    assert!(got.len() >= 6);
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.ts, g.min, g.max), (w.0, w.1, w.2));
    }
    // Two days back: from the 1-minute tier.
    let from = now - 2 * DAY;
    let r = store
        .range(&server, &["disk.busy"], from, from + HOUR_MS, 1_000)
        .await
        .unwrap();
    assert_eq!((r.tier, r.series[0].points.len()), (Tier::Minute, 61));
}

#[tokio::test]
async fn the_background_task_flushes_and_flushes_again_on_shutdown() {
    let env = Env::new().await;
    let server = env.server("bg").await;
    let cfg = StoreConfig {
        flush_interval: std::time::Duration::from_millis(50),
        ..Default::default()
    };
    let store = env.store(cfg.clone()).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = store.spawn_background(shutdown.clone());
    store
        .ingest(&server, T0, &[("cpu.user", "", 1.5)])
        .await
        .unwrap();
    let mut logged = 0;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        logged = env.count("SELECT COUNT(*) FROM metric_head_log").await;
        if logged > 0 {
            break;
        }
    }
    assert_eq!(logged, 1, "the periodic flush wrote the head log");
    // Accepted just before shutdown: the final flush keeps it.
    store
        .ingest(&server, T0 + 1_000, &[("cpu.user", "", 2.5)])
        .await
        .unwrap();
    shutdown.cancel();
    task.await.unwrap();
    drop(store);
    let store = env.store(cfg).await;
    let got = store
        .raw(&server, "cpu.user", "", T0, T0 + 1_000)
        .await
        .unwrap();
    assert_eq!(got, vec![(T0, 1.5), (T0 + 1_000, 2.5)]);
}

#[tokio::test]
async fn deleting_a_server_deletes_its_series_and_chunks() {
    let env = Env::new().await;
    let gone = env.server("gone").await;
    let kept = env.server("kept").await;
    let store = env.store(StoreConfig::default()).await;
    feed(&store, &gone, &SERIES, T0, 10_000, 800, 1).await;
    feed(&store, &kept, &SERIES, T0, 10_000, 800, 2).await;
    store.flush().await.unwrap();
    assert_eq!(env.count("SELECT COUNT(*) FROM metric_chunks").await, 6);
    steward_db::servers::delete(&env.db.pool, &gone)
        .await
        .unwrap();
    store.forget_server(&gone);
    assert_eq!(env.count("SELECT COUNT(*) FROM metric_series").await, 3);
    assert_eq!(env.count("SELECT COUNT(*) FROM metric_chunks").await, 3);
    // Flushing what was still in memory for the kept server works.
    store.flush_at(T0 + DAY).await.unwrap();
    assert_eq!(env.count("SELECT COUNT(*) FROM metric_chunks").await, 6);
    assert!(store.latest(&gone).await.unwrap().is_empty());
    assert!(
        store
            .ingest(&gone, T0 + DAY, &[("cpu.user", "", 1.0)])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn bad_names_and_too_many_series_are_refused() {
    let env = Env::new().await;
    let server = env.server("noisy").await;
    let store = env
        .store(StoreConfig {
            max_series_per_server: 10,
            ..Default::default()
        })
        .await;
    assert!(store.ingest(&server, T0, &[("", "", 1.0)]).await.is_err());
    assert!(
        store
            .ingest(&server, T0, &[("a\nb", "", 1.0)])
            .await
            .is_err()
    );
    let names: Vec<String> = (0..11).map(|i| format!("m{i}")).collect();
    let batch: Vec<(&str, &str, f64)> = names.iter().map(|n| (n.as_str(), "", 1.0)).collect();
    assert!(store.ingest(&server, T0, &batch).await.is_err());
    assert!(store.ingest(&server, T0, &batch[..10]).await.is_ok());
}

/// Bytes the chunk table and its index take on disk.
async fn chunk_table_bytes(db: &Db) -> i64 {
    match db.backend() {
        Backend::Sqlite => sqlx::query_scalar::<_, i64>(
            "SELECT CAST(SUM(pgsize) AS BIGINT) FROM dbstat \
             WHERE name IN ('metric_chunks', 'sqlite_autoindex_metric_chunks_1')",
        )
        .fetch_one(&db.pool)
        .await
        .expect(
            "dbstat (SQLite built with SQLITE_ENABLE_DBSTAT_VTAB, as libsqlite3-sys bundles it)",
        ),
        Backend::Postgres => {
            sqlx::query("VACUUM ANALYZE metric_chunks")
                .execute(&db.pool)
                .await
                .unwrap();
            sqlx::query_scalar::<_, i64>("SELECT pg_total_relation_size('metric_chunks')")
                .fetch_one(&db.pool)
                .await
                .unwrap()
        }
    }
}

/// A simulated day of one server (93 series every 10 s) costs at most 2 bytes per sample in
/// the raw tier, counting the table's pages and its index as the database reports them.
#[tokio::test]
async fn a_realistic_day_costs_at_most_two_bytes_per_sample_on_disk() {
    let env = Env::new().await;
    let server = env.server("realistic").await;
    let store = env.store(StoreConfig::default()).await;
    let series = sim::server_series();
    let n = 8_640; // one day at 10 s
    let mut rng = Rng::new(11);
    let ts = sim::timestamps(&mut rng, T0, 10_000, 5, n);
    let columns: Vec<Vec<f64>> = series
        .iter()
        .enumerate()
        .map(|(i, (name, label))| {
            sim::server_metric(i as u64, name, label, T0, 10_000, n)
                .into_iter()
                .map(|p| p.1)
                .collect()
        })
        .collect();
    for (i, &t) in ts.iter().enumerate() {
        let batch: Vec<(&str, &str, f64)> = series
            .iter()
            .zip(&columns)
            .map(|((name, label), col)| (name.as_str(), label.as_str(), col[i]))
            .collect();
        store.ingest(&server, t, &batch).await.unwrap();
        if i % 30 == 29 {
            env.clock.set(t);
            store.flush().await.unwrap();
        }
    }
    // End of the day: seal and store what is still open.
    store.flush_at(T0 + DAY + 7 * HOUR_MS).await.unwrap();
    let samples = (series.len() * n) as f64;
    let stored = env
        .count("SELECT CAST(SUM(samples) AS BIGINT) FROM metric_chunks WHERE tier = 0")
        .await;
    assert_eq!(stored as f64, samples);
    let raw = chunk_table_bytes(&env.db).await as f64;
    let per_sample = raw / samples;
    eprintln!(
        "{}: raw tier {per_sample:.3} B/sample on disk ({raw} bytes for {samples} samples)",
        env.db.backend().name()
    );
    let data = env
        .count("SELECT CAST(SUM(LENGTH(data)) AS BIGINT) FROM metric_chunks WHERE tier = 0")
        .await as f64;
    eprintln!("chunk data alone: {:.3} B/sample", data / samples);
    if env.db.backend() == Backend::Sqlite {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as("SELECT name, CAST(COUNT(*) AS BIGINT), CAST(SUM(pgsize) AS BIGINT), CAST(SUM(unused) AS BIGINT) FROM dbstat WHERE name IN ('metric_chunks', 'sqlite_autoindex_metric_chunks_1') GROUP BY name").fetch_all(&env.db.pool).await.unwrap();
        eprintln!("sqlite pages (name, pages, bytes, unused bytes): {rows:?}");
    }
    assert!(per_sample <= 2.0, "{per_sample:.3} bytes per sample");
    // The rollups of the day on top.
    store.rollup_at(T0 + DAY + 7 * HOUR_MS).await.unwrap();
    let all = chunk_table_bytes(&env.db).await as f64;
    eprintln!(
        "{}: with 1-minute and 1-hour rollups {:.3} B per raw sample",
        env.db.backend().name(),
        all / samples
    );
    // The UI figure: bytes per server per day, close to what the database holds.
    let usage = store.disk_usage().await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].server_id, server);
    let raw_usage = usage[0].tiers.iter().find(|t| t.tier == Tier::Raw).unwrap();
    assert_eq!(raw_usage.samples as f64, samples);
    let ratio = raw_usage.bytes_per_day / raw;
    assert!(
        (0.7..1.3).contains(&ratio),
        "reported {} vs measured {raw}",
        raw_usage.bytes_per_day
    );
}
