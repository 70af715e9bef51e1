//! Pooled SSH connections, shared by every command, terminal and transfer that needs one.
//!
//! A connection is opened on first use, reused for as long as it is alive and its settings
//! have not changed, and closed once nobody has used it for the idle time. One connection per
//! server usually suffices; because OpenSSH allows only `MaxSessions` (default 10) channels on
//! one connection, a server whose connections all carry `channels_per_connection` users gets
//! another one, and users are spread over the least loaded. (Each holder of a [`Shared`] counts
//! as one channel: a run's host, a terminal, a scan, a connection tunnelled through it; so
//! does each idle runner shell the connection keeps, see [`crate::runner`].) The
//! number of open connections is bounded: when the bound is reached, the least recently used
//! idle connection is closed to make room, and if every connection is busy the caller waits.
//! So 5,000 servers cannot exhaust the hub's file descriptors however many runs start at once.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client::Connection;

/// Limits of the pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most connections open at once (default 512).
    pub max_connections: usize,
    /// A connection unused for this long is closed (default 5 minutes).
    pub idle_timeout: Duration,
    /// Users one connection takes before another is opened to the same server (default 8,
    /// under OpenSSH's default `MaxSessions 10`, leaving room for the short extra channel a
    /// cancel uses).
    pub channels_per_connection: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 512,
            idle_timeout: Duration::from_secs(300),
            channels_per_connection: 8,
        }
    }
}

/// A pooled connection, shared. Hold it while using it: a connection somebody holds is never
/// closed for idleness or to make room.
pub type Shared = Arc<Connection>;

struct Entry {
    conn: Shared,
    /// The settings the connection was made with; different settings make a new connection.
    version: String,
    last_used: Instant,
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Slot {
    /// Serializes connecting, so that concurrent users of one server share one handshake.
    connecting: tokio::sync::Mutex<()>,
    entries: Mutex<Vec<Entry>>,
}

/// Users of a pooled connection (the pool's own reference not counted).
fn users(e: &Entry) -> usize {
    Arc::strong_count(&e.conn).saturating_sub(1)
}

/// The channels a connection may be carrying: one per user, plus its idle runner shells.
fn load(e: &Entry) -> usize {
    users(e) + e.conn.idle_runners()
}

struct Inner {
    config: PoolConfig,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    permits: Arc<Semaphore>,
}

/// The pool. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// What the pool holds, for the status page and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open.
    pub open: usize,
    /// Of those, connections somebody is using.
    pub in_use: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// A pool with these limits. Starts a task that closes idle connections, so it must be
    /// called within a Tokio runtime; the task ends when the last clone of the pool is dropped.
    pub fn new(config: PoolConfig) -> Self {
        let inner = Arc::new(Inner {
            permits: Arc::new(Semaphore::new(config.max_connections.max(1))),
            config,
            slots: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&inner);
        let period = (inner.config.idle_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        tokio::spawn(reaper(weak, period));
        Self { inner }
    }

    /// The connection for `key` (a server id), made with settings `version` (anything that
    /// should force a new connection when it changes: address, user, credential, trusted key).
    /// A live connection with the same version is reused; otherwise `connect` makes one.
    pub async fn get<F, Fut, E>(&self, key: &str, version: &str, connect: F) -> Result<Shared, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Connection, E>>,
    {
        let slot = {
            let mut slots = lock(&self.inner.slots);
            slots.entry(key.to_string()).or_default().clone()
        };
        let per_connection = self.inner.config.channels_per_connection.max(1);
        let pick = |entries: &mut Vec<Entry>, stale: &mut Vec<Shared>| -> Option<Shared> {
            entries.retain(|e| {
                let keep = e.version == version && !e.conn.is_closed();
                if !keep {
                    stale.push(e.conn.clone());
                }
                keep
            });
            let e = entries
                .iter_mut()
                .filter(|e| load(e) < per_connection)
                .min_by_key(|e| load(e))?;
            e.last_used = Instant::now();
            Some(e.conn.clone())
        };
        let mut stale = Vec::new();
        // Fast path: a connection with room, without waiting for a handshake in progress.
        let found = pick(&mut lock(&slot.entries), &mut stale);
        if let Some(conn) = found {
            stale.into_iter().for_each(close_later);
            return Ok(conn);
        }
        let _connecting = slot.connecting.lock().await;
        // Someone may have connected while we waited.
        let found = pick(&mut lock(&slot.entries), &mut stale);
        stale.into_iter().for_each(close_later);
        if let Some(conn) = found {
            return Ok(conn);
        }
        let permit = self.permit().await;
        let conn = Arc::new(connect().await?);
        lock(&slot.entries).push(Entry {
            conn: conn.clone(),
            version: version.to_string(),
            last_used: Instant::now(),
            _permit: permit,
        });
        Ok(conn)
    }

    /// A permit for one more connection: free, taken from the least recently used idle
    /// connection, or waited for.
    async fn permit(&self) -> OwnedSemaphorePermit {
        loop {
            if let Ok(p) = self.inner.permits.clone().try_acquire_owned() {
                return p;
            }
            if self.evict_idle() {
                continue;
            }
            tokio::select! {
                p = self.inner.permits.clone().acquire_owned() => {
                    if let Ok(p) = p { return p; }
                }
                // Connections become idle without releasing a permit; look again now and then.
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Closes the least recently used connection nobody holds. False if there is none.
    fn evict_idle(&self) -> bool {
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots).values().cloned().collect();
        let mut oldest: Option<(Instant, Arc<Slot>)> = None;
        for slot in slots {
            let entries = lock(&slot.entries);
            for e in entries.iter() {
                if users(e) == 0 && oldest.as_ref().is_none_or(|(t, _)| e.last_used < *t) {
                    oldest = Some((e.last_used, slot.clone()));
                }
            }
        }
        let Some((at, slot)) = oldest else {
            return false;
        };
        let mut entries = lock(&slot.entries);
        match entries
            .iter()
            .position(|e| users(e) == 0 && e.last_used == at)
        {
            Some(i) => {
                close_later(entries.remove(i).conn);
                true
            }
            None => false,
        }
    }

    /// Drops the connection for `key` (its server was edited or deleted, or its key changed).
    /// Users holding it keep it until they let go.
    pub fn invalidate(&self, key: &str) {
        let slot = lock(&self.inner.slots).remove(key);
        if let Some(slot) = slot {
            for e in lock(&slot.entries).drain(..) {
                close_later(e.conn);
            }
        }
    }

    /// How many connections are open and in use.
    pub fn stats(&self) -> PoolStats {
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots).values().cloned().collect();
        let mut stats = PoolStats { open: 0, in_use: 0 };
        for slot in slots {
            for e in lock(&slot.entries).iter() {
                stats.open += 1;
                if users(e) > 0 {
                    stats.in_use += 1;
                }
            }
        }
        stats
    }

    /// Closes every connection nobody holds (on shutdown).
    pub fn close_idle(&self) {
        while self.evict_idle() {}
    }
}

/// Disconnects politely once the last holder lets go, without making the caller wait.
fn close_later(conn: Shared) {
    tokio::spawn(async move {
        // Whoever still holds the connection finishes first; it closes when dropped anyway.
        if let Some(conn) = Arc::into_inner(conn) {
            conn.close().await;
        }
    });
}

async fn reaper(pool: Weak<Inner>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = pool.upgrade() else { return };
        let idle = inner.config.idle_timeout;
        let slots: Vec<(String, Arc<Slot>)> = lock(&inner.slots)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, slot) in slots {
            let mut expired = Vec::new();
            lock(&slot.entries).retain(|e| {
                let done = users(e) == 0 && (e.last_used.elapsed() >= idle || e.conn.is_closed());
                if done {
                    expired.push(e.conn.clone());
                }
                !done
            });
            for conn in expired {
                tracing::debug!(server = %key, "closing idle SSH connection");
                close_later(conn);
            }
        }
        // Forget slots with no connection, so the map does not grow with every server ever used.
        lock(&inner.slots)
            .retain(|_, slot| Arc::strong_count(slot) > 1 || !lock(&slot.entries).is_empty());
    }
}
