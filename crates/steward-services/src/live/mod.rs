//! The live view of the fleet: the latest values of every server (for the fleet summary, the
//! Prometheus fleet metrics and sparklines), each server's status, and the hub that pushes
//! changes to `/api/v1/live` subscribers.
//!
//! - [`crate::metrics::record`] calls [`Hub::update`] per snapshot: O(points), one short lock.
//! - Server metadata (name, tags, interval, collection mode, failing checks) is loaded from the
//!   database in one query for the whole fleet, every 10 s or when a server changes
//!   ([`Hub::invalidate`]), never per server or per request.
//! - A ticker runs every 250 ms: it notices status changes (a server going offline sends no
//!   sample), takes the set of servers changed since the previous tick, and gives each client
//!   at most one frame with only the newest values of its servers, so no client gets more
//!   than four frames a second. Fleet frames are encoded once per visibility scope; each
//!   server's JSON once per tick. A client whose queue is full is kicked, not waited for.
//! - A snapshot larger than [`SNAPSHOT_PART_BYTES`] goes out in parts, back to back in the
//!   same tick (one queue slot): a WebSocket connection keeps a write buffer as large as the
//!   largest message it ever sent, so a 1 MiB snapshot of a big fleet would otherwise stay
//!   with every subscriber for as long as it is connected.
//! - Frames ([`Frame`]) carry a slot for their encoded form, filled once by the first
//!   connection that needs it (steward-api's permessage-deflate) and shared by the others: a
//!   fleet update of 1,000 servers is ~85 KiB of JSON and a fifth of that on the wire.
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use steward_metrics::Point;
use steward_proto::metrics::{HostStatus, LivePoint, ServerMetrics};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Services;
use crate::metrics::store::{ServerUsage, StoreResult};
use steward_core::clock::from_ms as time;

mod frame;
pub use frame::Frame;
/// The name the frames had when steward-api built them.
type Shared = Frame;

/// Values of `cpu.usage` kept per server for sparklines.
pub const SPARK_LEN: usize = 60;
/// The ticker's period: at most four frames a second per client.
pub const TICK: Duration = Duration::from_millis(250);
/// Ticks' worth of frames queued per client before it counts as too slow and is dropped.
pub const CLIENT_QUEUE: usize = 8;
/// The most server JSON one snapshot message carries; a larger snapshot is sent in parts.
pub const SNAPSHOT_PART_BYTES: usize = 64 * 1024;

/// What one tick sends a client: one frame, or a snapshot's parts in order. Shared by every
/// client that gets the same frames, and compressed once for all that agreed to
/// permessage-deflate.
pub type Batch = Arc<[Shared]>;
/// Server metadata older than this is reloaded.
pub const META_MAX_AGE_MS: i64 = 10_000;
/// A filesystem this full (percent) makes an online server degraded.
pub const DISK_FULL_PCT: f64 = 95.0;
/// The shortest time without a sample before a server counts as offline.
pub const MIN_OFFLINE_MS: i64 = 30_000;

/// The status rule. `last_ts`: the newest sample's time; `problems`: a check attached to the
/// server is down, a filesystem is ≥ 95 % full or systemd units failed.
///
/// - monitoring `off`, or never sampled: unknown;
/// - the last sample is younger than 3 × the interval (at least 30 s): online, or degraded
///   with problems;
/// - otherwise offline.
pub fn status(
    now_ms: i64,
    interval_secs: i64,
    monitoring: &str,
    last_ts: Option<i64>,
    problems: bool,
) -> HostStatus {
    let Some(last) = last_ts else {
        return HostStatus::Unknown;
    };
    if monitoring == "off" {
        return HostStatus::Unknown;
    }
    let window = (interval_secs.saturating_mul(3_000)).max(MIN_OFFLINE_MS);
    if now_ms.saturating_sub(last) >= window {
        HostStatus::Offline
    } else if problems {
        HostStatus::Degraded
    } else {
        HostStatus::Online
    }
}

/// What the hub knows of a server from the database.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub org_id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub monitoring: String,
    pub interval_secs: i64,
    /// Enabled attached checks whose last result is `down`.
    pub checks_down: i64,
}

/// The main values of a server's last sample, worked out once per sample (not per summary
/// request and tick): the fleet summary and every live frame read them.
#[derive(Debug, Default, Clone)]
struct Main {
    cpu: Option<f64>,
    load1: Option<f64>,
    mem: Option<f64>,
    /// The fullest filesystem: mount and percent used.
    disk: Option<(String, f64)>,
    rx: Option<f64>,
    tx: Option<f64>,
    failed_units: Option<f64>,
}

impl Main {
    fn of(points: &[Point]) -> Main {
        let mut m = Main::default();
        let add = |acc: &mut Option<f64>, v: f64| *acc = Some(acc.unwrap_or(0.0) + v);
        for p in points.iter().filter(|p| p.value.is_finite()) {
            let v = p.value;
            match p.name {
                "cpu.usage" if p.label.is_empty() => m.cpu = Some(v),
                "load.1" if p.label.is_empty() => m.load1 = Some(v),
                "mem.used_pct" if p.label.is_empty() => m.mem = Some(v),
                "systemd.failed_units" if p.label.is_empty() => m.failed_units = Some(v),
                "net.rx_bytes" => add(&mut m.rx, v),
                "net.tx_bytes" => add(&mut m.tx, v),
                "disk.used_pct" if m.disk.as_ref().is_none_or(|(_, best)| v > *best) => {
                    m.disk = Some((p.label.clone(), v));
                }
                _ => {}
            }
        }
        m
    }
}

/// A server's summary JSON as last encoded, and what it was encoded from.
#[derive(Debug)]
struct Encoded {
    version: u64,
    status: HostStatus,
    json: Arc<str>,
}

/// The latest view of one server.
#[derive(Debug, Default)]
struct View {
    meta: Option<Meta>,
    last_ts: Option<i64>,
    points: Vec<Point>,
    main: Main,
    spark: VecDeque<f32>,
    /// The status last sent to clients.
    published: Option<HostStatus>,
    /// Bumped by every accepted sample and metadata change.
    version: u64,
    /// The summary JSON (no sparkline, no points) for the fleet summary and live frames,
    /// encoded again only when the version or the status moved.
    encoded: Mutex<Option<Encoded>>,
}

impl View {
    /// The summary JSON without sparkline and points, from the cache when nothing changed.
    fn summary_json(&self, id: &str, now_ms: i64) -> Option<Arc<str>> {
        let status = self.status(now_ms);
        let mut cached = lock(&self.encoded);
        if let Some(e) = cached.as_ref()
            && e.version == self.version
            && e.status == status
        {
            return Some(e.json.clone());
        }
        let json: Arc<str> = serde_json::to_string(&self.summary(id, now_ms, false, false)?)
            .ok()?
            .into();
        *cached = Some(Encoded {
            version: self.version,
            status,
            json: json.clone(),
        });
        Some(json)
    }

    fn problems(&self) -> bool {
        let checks = self.meta.as_ref().is_some_and(|m| m.checks_down > 0);
        checks
            || self
                .main
                .disk
                .as_ref()
                .is_some_and(|(_, v)| *v >= DISK_FULL_PCT)
            || self.main.failed_units.is_some_and(|v| v > 0.0)
    }

    fn status(&self, now_ms: i64) -> HostStatus {
        match &self.meta {
            Some(m) => status(
                now_ms,
                m.interval_secs,
                &m.monitoring,
                self.last_ts,
                self.problems(),
            ),
            None => HostStatus::Unknown,
        }
    }

    fn summary(&self, id: &str, now_ms: i64, spark: bool, points: bool) -> Option<ServerMetrics> {
        let meta = self.meta.as_ref()?;
        let main = &self.main;
        Some(ServerMetrics {
            id: id.to_string(),
            name: meta.name.clone(),
            tags: meta.tags.clone(),
            monitoring: meta.monitoring.clone(),
            interval_secs: meta.interval_secs,
            status: self.status(now_ms),
            last_sample_at: self.last_ts.map(time),
            cpu_pct: main.cpu,
            load1: main.load1,
            mem_used_pct: main.mem,
            disk_used_pct: main.disk.as_ref().map(|d| d.1),
            disk_mount: main.disk.as_ref().map(|d| d.0.clone()),
            net_rx_bps: main.rx,
            net_tx_bps: main.tx,
            failed_units: main.failed_units,
            checks_down: meta.checks_down,
            // Two decimals: an f32 widened to f64 would print 17 digits for a line 60 px high.
            sparkline: spark.then(|| {
                self.spark
                    .iter()
                    .map(|v| (f64::from(*v) * 100.0).round() / 100.0)
                    .collect()
            }),
            points: points.then(|| {
                self.points
                    .iter()
                    .filter(|p| p.value.is_finite())
                    .map(|p| LivePoint {
                        name: p.name.to_string(),
                        label: p.label.clone(),
                        value: p.value,
                    })
                    .collect()
            }),
        })
    }
}

/// The latest values of a server, for the Prometheus fleet metrics.
#[derive(Debug, Clone)]
pub struct HostLatest {
    pub id: String,
    pub meta: Meta,
    pub status: HostStatus,
    pub points: Vec<Point>,
}

/// What a client subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    None,
    Fleet,
    Servers(HashSet<String>),
}

/// Who a client is, for visibility: the organization and the tags limiting which servers it
/// sees (`None`: every server of the organization).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub org_id: String,
    pub visible_tags: Option<BTreeSet<String>>,
}

impl Scope {
    fn sees(&self, meta: &Meta) -> bool {
        meta.org_id == self.org_id
            && match &self.visible_tags {
                None => true,
                Some(t) => meta.tags.iter().any(|tag| t.contains(tag)),
            }
    }
}

struct Client {
    scope: Arc<Scope>,
    sub: Subscription,
    /// The next frame must be a full snapshot (just subscribed).
    snapshot: bool,
    tx: mpsc::Sender<Batch>,
    kicked: CancellationToken,
}

/// A subscriber's end: frames to send, and a token cancelled when the hub drops it (too slow).
/// Dropping it unregisters the client.
pub struct ClientHandle {
    pub id: u64,
    pub rx: mpsc::Receiver<Batch>,
    pub kicked: CancellationToken,
    hub: Hub,
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

#[derive(Default)]
struct Inner {
    views: RwLock<HashMap<String, View>>,
    /// Servers with new values since the previous tick, and servers whose metadata changed
    /// (with the metadata they had, to tell who could see them before).
    dirty: Mutex<HashSet<String>>,
    changed_meta: Mutex<Vec<(String, Option<Meta>)>>,
    clients: Mutex<HashMap<u64, Client>>,
    next_client: AtomicU64,
    /// When the metadata was loaded (0: never, or invalidated).
    meta_at: AtomicI64,
    /// Bumped by every invalidation, so a load that raced a server change is not trusted.
    generation: AtomicU64,
    loading: tokio::sync::Mutex<()>,
    kicked_total: AtomicU64,
    ever_loaded: AtomicBool,
    /// The store's disk use and when it was computed.
    disk_usage: tokio::sync::Mutex<Option<(i64, Arc<Vec<ServerUsage>>)>>,
}

/// The live hub (cheap to clone).
#[derive(Clone, Default)]
pub struct Hub(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    /// Takes one snapshot's points. A sample older than the newest seen (an agent's backfill)
    /// is stored by the caller but does not move the live view back.
    pub fn update(&self, server_id: &str, ts_ms: i64, points: &[Point]) {
        {
            let mut views = self.0.views.write().unwrap_or_else(|e| e.into_inner());
            let view = views.entry(server_id.to_string()).or_default();
            if view.last_ts.is_some_and(|t| t >= ts_ms) {
                return;
            }
            view.last_ts = Some(ts_ms);
            view.points.clear();
            view.points.extend_from_slice(points);
            view.main = Main::of(points);
            view.version += 1;
            if let Some(cpu) = view.main.cpu {
                if view.spark.len() == SPARK_LEN {
                    view.spark.pop_front();
                }
                view.spark.push_back(cpu as f32);
            }
        }
        lock(&self.0.dirty).insert(server_id.to_string());
    }

    /// Forgets a deleted server and reloads the metadata on the next occasion.
    pub fn invalidate(&self) {
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        self.0.meta_at.store(0, Ordering::Release);
    }

    /// Whether the metadata must be loaded before answering: never loaded, or a server
    /// changed since. (Metadata that is merely old is reloaded by the ticker; requests do not
    /// wait for that.)
    pub fn must_load(&self) -> bool {
        self.0.meta_at.load(Ordering::Acquire) == 0
    }

    /// Whether the metadata is due for a reload.
    pub fn stale(&self, now_ms: i64) -> bool {
        let at = self.0.meta_at.load(Ordering::Acquire);
        at == 0 || now_ms - at >= META_MAX_AGE_MS
    }

    /// Loads the fleet's metadata (one query for servers, one for failing checks) if it is
    /// stale; concurrent callers wait for one load.
    pub async fn refresh(&self, st: &Services) -> steward_db::DbResult<()> {
        let started = st.now_ms();
        let _guard = self.0.loading.lock().await;
        let at = self.0.meta_at.load(Ordering::Acquire);
        if at != 0 && at >= started && self.0.ever_loaded.load(Ordering::Acquire) {
            return Ok(()); // somebody loaded it while we waited
        }
        if !self.stale(st.now_ms()) {
            return Ok(());
        }
        let mut unseeded = Vec::new();
        // A server changed while we read: read again (a few times at most), so a change that
        // committed during the load is not hidden for the next 10 s.
        for _ in 0..3 {
            let generation = self.0.generation.load(Ordering::Acquire);
            let now = st.now_ms();
            let metas = load_meta(st).await?;
            unseeded.extend(self.set_meta(metas));
            if self.0.generation.load(Ordering::Acquire) == generation {
                self.0.meta_at.store(now.max(1), Ordering::Release);
                break;
            }
        }
        // After a restart, the last stored values say when each server was last seen, so a
        // silent server shows offline rather than unknown.
        for id in unseeded {
            if let Ok(latest) = st.metrics.latest(&id).await
                && let Some(ts) = latest.iter().map(|l| l.ts).max()
            {
                let points: Vec<Point> = latest
                    .iter()
                    .filter(|l| l.ts == ts)
                    .filter_map(|l| {
                        let info = steward_metrics::catalog::info(&l.name)?;
                        Some(Point {
                            name: info.name,
                            label: l.label.clone(),
                            value: l.value,
                        })
                    })
                    .collect();
                self.update(&id, ts, &points);
            }
        }
        Ok(())
    }

    /// Replaces the fleet's metadata (what [`Hub::refresh`] loads); servers not in `metas` are
    /// forgotten. Returns the servers that are new since the first load was never done (their
    /// last stored values may seed the view).
    pub fn set_meta(&self, metas: HashMap<String, Meta>) -> Vec<String> {
        let first = !self.0.ever_loaded.swap(true, Ordering::AcqRel);
        let mut unseeded = Vec::new();
        let mut views = self.0.views.write().unwrap_or_else(|e| e.into_inner());
        let mut changed = lock(&self.0.changed_meta);
        for (id, view) in views.iter_mut() {
            let new = metas.get(id);
            if view.meta.as_ref() != new {
                changed.push((id.clone(), view.meta.clone()));
                view.meta = new.cloned();
                view.version += 1;
            }
        }
        for (id, meta) in &metas {
            if !views.contains_key(id) {
                views.insert(
                    id.clone(),
                    View {
                        meta: Some(meta.clone()),
                        ..Default::default()
                    },
                );
                changed.push((id.clone(), None));
                if first {
                    unseeded.push(id.clone());
                }
            }
        }
        // Views of servers that no longer exist go (their removal was noted above).
        views.retain(|id, _| metas.contains_key(id));
        unseeded
    }

    /// The summary of every server `scope` sees, by name, with sparklines or without.
    pub fn summary(&self, scope: &Scope, now_ms: i64, sparklines: bool) -> Vec<ServerMetrics> {
        let views = self.0.views.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<ServerMetrics> = views
            .iter()
            .filter(|(_, v)| v.meta.as_ref().is_some_and(|m| scope.sees(m)))
            .filter_map(|(id, v)| v.summary(id, now_ms, sparklines, false))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// The fleet summary as JSON (`MetricsSummary`, without sparklines): every server
    /// `scope` sees, by name, each server's part encoded only when it changed.
    pub fn summary_json(&self, scope: &Scope, now_ms: i64) -> String {
        let views = self.0.views.read().unwrap_or_else(|e| e.into_inner());
        let mut items: Vec<(&str, &str, Arc<str>)> = views
            .iter()
            .filter_map(|(id, v)| {
                let meta = v.meta.as_ref().filter(|m| scope.sees(m))?;
                Some((meta.name.as_str(), id.as_str(), v.summary_json(id, now_ms)?))
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(b.1)));
        let at = serde_json::to_string(&time(now_ms)).unwrap_or_else(|_| "null".into());
        let mut out =
            String::with_capacity(items.iter().map(|i| i.2.len() + 1).sum::<usize>() + 64);
        out.push_str(r#"{"at":"#);
        out.push_str(&at);
        out.push_str(r#","items":["#);
        for (i, (_, _, json)) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(json);
        }
        out.push_str("]}");
        out
    }

    /// The status of one server.
    pub fn status_of(&self, server_id: &str, now_ms: i64) -> HostStatus {
        let views = self.0.views.read().unwrap_or_else(|e| e.into_inner());
        views
            .get(server_id)
            .map_or(HostStatus::Unknown, |v| v.status(now_ms))
    }

    /// The latest values of every known server (all organizations).
    pub fn hosts(&self, now_ms: i64) -> Vec<HostLatest> {
        let views = self.0.views.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<HostLatest> = views
            .iter()
            .filter_map(|(id, v)| {
                Some(HostLatest {
                    id: id.clone(),
                    meta: v.meta.clone()?,
                    status: v.status(now_ms),
                    points: v.points.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.meta.name.cmp(&b.meta.name).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Registers a client with its visibility; it receives nothing until it subscribes.
    pub fn connect(&self, scope: Scope) -> ClientHandle {
        let id = self.0.next_client.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let kicked = CancellationToken::new();
        lock(&self.0.clients).insert(
            id,
            Client {
                scope: Arc::new(scope),
                sub: Subscription::None,
                snapshot: false,
                tx,
                kicked: kicked.clone(),
            },
        );
        ClientHandle {
            id,
            rx,
            kicked,
            hub: self.clone(),
        }
    }

    /// Replaces a client's subscription; its next frame is a snapshot.
    pub fn subscribe(&self, client: u64, sub: Subscription) {
        if let Some(c) = lock(&self.0.clients).get_mut(&client) {
            c.sub = sub;
            c.snapshot = true;
        }
    }

    /// Changes what a client may see (after its roles changed); sends it a fresh snapshot.
    pub fn set_scope(&self, client: u64, scope: Scope) {
        if let Some(c) = lock(&self.0.clients).get_mut(&client)
            && *c.scope != scope
        {
            c.scope = Arc::new(scope);
            c.snapshot = true;
        }
    }

    fn remove(&self, client: u64) {
        lock(&self.0.clients).remove(&client);
    }

    /// The store's disk use, recomputed by `compute` when older than `ttl_ms`; with the time
    /// it was computed.
    pub async fn disk_usage<F, Fut>(
        &self,
        now_ms: i64,
        ttl_ms: i64,
        compute: F,
    ) -> StoreResult<(i64, Arc<Vec<ServerUsage>>)>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = StoreResult<Vec<ServerUsage>>>,
    {
        let mut cached = self.0.disk_usage.lock().await;
        if let Some((at, usage)) = cached.as_ref()
            && now_ms - at < ttl_ms
        {
            return Ok((*at, usage.clone()));
        }
        let usage = Arc::new(compute().await?);
        *cached = Some((now_ms, usage.clone()));
        Ok((now_ms, usage))
    }

    /// Clients connected.
    pub fn clients(&self) -> usize {
        lock(&self.0.clients).len()
    }

    /// Clients dropped for being too slow since the start.
    pub fn kicked_total(&self) -> u64 {
        self.0.kicked_total.load(Ordering::Relaxed)
    }

    /// Starts the ticker; it stops when `state` is dropped.
    pub(crate) fn spawn_ticker(&self, state: std::sync::Weak<crate::Inner>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(st) = Services::upgrade(&state) else {
                    return;
                };
                let hub = st.live.clone();
                if hub.clients() > 0 || hub.stale(st.now_ms()) {
                    if hub.stale(st.now_ms())
                        && let Err(e) = hub.refresh(&st).await
                    {
                        tracing::warn!(error = %e, "live view: loading server metadata failed");
                    }
                    hub.tick(st.now_ms());
                }
            }
        });
    }

    /// One round: status changes, then at most one frame per client.
    pub fn tick(&self, now_ms: i64) {
        let mut changed: HashSet<String> = std::mem::take(&mut *lock(&self.0.dirty));
        let meta_changes = std::mem::take(&mut *lock(&self.0.changed_meta));
        let mut clients = lock(&self.0.clients);
        let views = self.0.views.read().unwrap_or_else(|e| e.into_inner());
        // Status changes without a sample (going offline) count as changes; the published
        // status is written back below under the write lock only when something moved.
        let mut moved = Vec::new();
        for (id, v) in views.iter() {
            let s = v.status(now_ms);
            if v.published != Some(s) {
                moved.push((id.clone(), s));
                changed.insert(id.clone());
            }
        }
        for (id, _) in &meta_changes {
            changed.insert(id.clone());
        }
        if clients.is_empty() {
            drop(views);
            self.publish(moved);
            return;
        }
        let old_meta: HashMap<&str, &Option<Meta>> = meta_changes
            .iter()
            .map(|(id, m)| (id.as_str(), m))
            .collect();
        let at = serde_json::to_string(&time(now_ms)).unwrap_or_else(|_| "null".into());
        // Each server's JSON is encoded once per tick (with or without every value).
        let mut detailed: HashMap<String, Option<Arc<str>>> = HashMap::new();
        let mut encode = |id: &str, detail: bool| -> Option<Arc<str>> {
            let v = views.get(id)?;
            if !detail {
                return v.summary_json(id, now_ms);
            }
            detailed
                .entry(id.to_string())
                .or_insert_with(|| {
                    v.summary(id, now_ms, false, true)
                        .and_then(|s| serde_json::to_string(&s).ok())
                        .map(Arc::from)
                })
                .clone()
        };
        let mut fleet_frames: HashMap<Arc<Scope>, Option<Batch>> = HashMap::new();
        let mut fleet_snapshots: HashMap<Arc<Scope>, Batch> = HashMap::new();
        let mut gone = Vec::new();
        let sorted: Vec<&String> = {
            let mut c: Vec<&String> = changed.iter().collect();
            c.sort();
            c
        };
        for (cid, c) in clients.iter_mut() {
            let frame = if c.snapshot {
                c.snapshot = false;
                // Clients that reconnect together (after a restart) share one encoding per scope.
                if c.sub == Subscription::Fleet {
                    Some(
                        fleet_snapshots
                            .entry(c.scope.clone())
                            .or_insert_with(|| snapshot_frames(&views, c, now_ms, &at))
                            .clone(),
                    )
                } else {
                    Some(snapshot_frames(&views, c, now_ms, &at))
                }
            } else {
                match &c.sub {
                    Subscription::None => None,
                    Subscription::Fleet => {
                        let key = c.scope.clone();
                        fleet_frames
                            .entry(key)
                            .or_insert_with(|| {
                                update_frame(
                                    &views,
                                    &sorted,
                                    &old_meta,
                                    &c.scope,
                                    |_| true,
                                    false,
                                    &at,
                                    &mut encode,
                                )
                            })
                            .clone()
                    }
                    Subscription::Servers(ids) => update_frame(
                        &views,
                        &sorted,
                        &old_meta,
                        &c.scope,
                        |id| ids.contains(id),
                        true,
                        &at,
                        &mut encode,
                    ),
                }
            };
            if let Some(frame) = frame {
                match c.tx.try_send(frame) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        c.kicked.cancel();
                        gone.push(*cid);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => gone.push(*cid),
                }
            }
        }
        for cid in &gone {
            if clients.remove(cid).is_some_and(|c| c.kicked.is_cancelled()) {
                self.0.kicked_total.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(views);
        drop(clients);
        self.publish(moved);
    }

    fn publish(&self, moved: Vec<(String, HostStatus)>) {
        if moved.is_empty() {
            return;
        }
        let mut views = self.0.views.write().unwrap_or_else(|e| e.into_inner());
        for (id, s) in moved {
            if let Some(v) = views.get_mut(&id) {
                v.published = Some(s);
            }
        }
    }
}

/// A client's snapshot: `{"type":"snapshot","part":i,"parts":n,…}` messages of at most
/// [`SNAPSHOT_PART_BYTES`] of servers each (at least one message, sorted by name throughout).
fn snapshot_frames(views: &HashMap<String, View>, c: &Client, now_ms: i64, at: &str) -> Batch {
    let mut items: Vec<ServerMetrics> = views
        .iter()
        .filter(|(id, v)| {
            v.meta.as_ref().is_some_and(|m| c.scope.sees(m))
                && match &c.sub {
                    Subscription::None => false,
                    Subscription::Fleet => true,
                    Subscription::Servers(ids) => ids.contains(*id),
                }
        })
        .filter_map(|(id, v)| {
            v.summary(id, now_ms, true, matches!(c.sub, Subscription::Servers(_)))
        })
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let mut parts: Vec<String> = vec![String::new()];
    for item in &items {
        let Ok(json) = serde_json::to_string(item) else {
            continue;
        };
        let last = parts.last_mut().expect("one part at least");
        if !last.is_empty() && last.len() + json.len() > SNAPSHOT_PART_BYTES {
            parts.push(json);
        } else {
            if !last.is_empty() {
                last.push(',');
            }
            last.push_str(&json);
        }
    }
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, servers)| {
            Shared::new(format!(
                r#"{{"type":"snapshot","part":{i},"parts":{n},"at":{at},"servers":[{servers}]}}"#
            ))
        })
        .collect()
}

#[expect(
    clippy::too_many_arguments,
    reason = "the per-tick state shared by both subscription kinds"
)]
fn update_frame(
    views: &HashMap<String, View>,
    changed: &[&String],
    old_meta: &HashMap<&str, &Option<Meta>>,
    scope: &Scope,
    wanted: impl Fn(&str) -> bool,
    detail: bool,
    at: &str,
    encode: &mut impl FnMut(&str, bool) -> Option<Arc<str>>,
) -> Option<Batch> {
    let mut servers = String::new();
    let mut removed = String::new();
    for id in changed {
        if !wanted(id) {
            continue;
        }
        let now_visible = views
            .get(id.as_str())
            .and_then(|v| v.meta.as_ref())
            .is_some_and(|m| scope.sees(m));
        if now_visible {
            if let Some(json) = encode(id, detail) {
                if !servers.is_empty() {
                    servers.push(',');
                }
                servers.push_str(&json);
            }
        } else if let Some(Some(before)) = old_meta.get(id.as_str())
            && scope.sees(before)
        {
            if !removed.is_empty() {
                removed.push(',');
            }
            removed.push_str(&serde_json::to_string(id).unwrap_or_default());
        }
    }
    if servers.is_empty() && removed.is_empty() {
        return None;
    }
    Some(Arc::from([Shared::new(format!(
        r#"{{"type":"update","at":{at},"servers":[{servers}],"removed":[{removed}]}}"#
    ))]))
}

/// The fleet's metadata, from the database: every server with its tags, and the number of
/// enabled checks attached to it that are down.
async fn load_meta(st: &Services) -> steward_db::DbResult<HashMap<String, Meta>> {
    use steward_db::{checks, servers};
    let org = steward_core::DEFAULT_ORG_ID;
    let (rows, _) = servers::list(
        &st.db.pool,
        &servers::ServerFilter {
            org_id: org,
            query: None,
            tags: &[],
            visible_tags: None,
            sort: servers::SortKey::Name,
            descending: false,
            limit: i64::MAX / 2,
            offset: 0,
        },
    )
    .await?;
    let down = checks::list(
        &st.db.pool,
        &checks::CheckFilter {
            org_id: org,
            server_id: None,
            status: Some("down"),
            query: None,
            visible_tags: None,
        },
    )
    .await?;
    let mut down_by_server: HashMap<String, i64> = HashMap::new();
    for c in down.into_iter().filter(|c| c.enabled != 0) {
        if let Some(s) = c.server_id {
            *down_by_server.entry(s).or_default() += 1;
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let meta = Meta {
                org_id: r.org_id,
                name: r.name,
                tags: r.tags,
                monitoring: r.monitoring,
                interval_secs: r.metrics_interval_secs,
                checks_down: down_by_server.get(&r.id).copied().unwrap_or(0),
            };
            (r.id, meta)
        })
        .collect())
}

#[cfg(test)]
mod tests {
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
}
