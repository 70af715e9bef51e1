//! One SSH connection per server, shared by every command, terminal and transfer that needs it.
//!
//! A connection is opened on first use, reused for as long as it is alive and its settings
//! have not changed, and closed once nobody has used it for the idle time. The number of open
//! connections is bounded: when the bound is reached, the least recently used idle connection
//! is closed to make room, and if every connection is busy the caller waits. So 5,000 servers
//! cannot exhaust the hub's file descriptors however many runs start at once.
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
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 512,
            idle_timeout: Duration::from_secs(300),
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
    entry: Mutex<Option<Entry>>,
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
        let _connecting = slot.connecting.lock().await;
        let stale = {
            let mut entry = lock(&slot.entry);
            match entry.as_mut() {
                Some(e) if e.version == version && !e.conn.is_closed() => {
                    e.last_used = Instant::now();
                    return Ok(e.conn.clone());
                }
                Some(_) => entry.take(),
                None => None,
            }
        };
        if let Some(old) = stale {
            close_later(old.conn);
        }
        let permit = self.permit().await;
        let conn = Arc::new(connect().await?);
        *lock(&slot.entry) = Some(Entry {
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
            let entry = lock(&slot.entry);
            if let Some(e) = entry.as_ref()
                && Arc::strong_count(&e.conn) == 1
                && oldest.as_ref().is_none_or(|(t, _)| e.last_used < *t)
            {
                oldest = Some((e.last_used, slot.clone()));
            }
        }
        let Some((_, slot)) = oldest else {
            return false;
        };
        let taken = lock(&slot.entry).take();
        match taken {
            Some(e) => {
                close_later(e.conn);
                true
            }
            None => false,
        }
    }

    /// Drops the connection for `key` (its server was edited or deleted, or its key changed).
    /// Users holding it keep it until they let go.
    pub fn invalidate(&self, key: &str) {
        let slot = lock(&self.inner.slots).remove(key);
        if let Some(slot) = slot
            && let Some(e) = lock(&slot.entry).take()
        {
            close_later(e.conn);
        }
    }

    /// How many connections are open and in use.
    pub fn stats(&self) -> PoolStats {
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots).values().cloned().collect();
        let mut stats = PoolStats { open: 0, in_use: 0 };
        for slot in slots {
            if let Some(e) = lock(&slot.entry).as_ref() {
                stats.open += 1;
                if Arc::strong_count(&e.conn) > 1 {
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
            let expired = {
                let mut entry = lock(&slot.entry);
                match entry.as_ref() {
                    Some(e)
                        if Arc::strong_count(&e.conn) == 1
                            && (e.last_used.elapsed() >= idle || e.conn.is_closed()) =>
                    {
                        entry.take()
                    }
                    _ => None,
                }
            };
            if let Some(e) = expired {
                tracing::debug!(server = %key, "closing idle SSH connection");
                close_later(e.conn);
            }
        }
        // Forget slots with no connection, so the map does not grow with every server ever used.
        lock(&inner.slots)
            .retain(|_, slot| Arc::strong_count(slot) > 1 || lock(&slot.entry).is_some());
    }
}
