//! The hub's ticker: every [`TICK`] it notices status changes and gives each subscriber at most
//! one frame.
use super::*;

impl Hub {
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
