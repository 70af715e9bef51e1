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
mod frames;
mod meta;
mod tick;
mod view;

pub use frame::Frame;
use frames::{snapshot_frames, update_frame};
use meta::load_meta;
use view::{Main, View};

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
pub type Batch = Arc<[Frame]>;
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
}

#[cfg(test)]
mod tests;
