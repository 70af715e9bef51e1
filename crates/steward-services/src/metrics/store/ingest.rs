//! Ingest: resolving series ids (creating missing series) and appending samples to the head;
//! forgetting a deleted server's series.
use std::collections::HashMap;

use steward_db::metrics as db;
use steward_tsdb::SeriesId;

use super::{Registry, Store, StoreError, StoreResult, lock};

/// What an ingest call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Samples stored.
    pub accepted: usize,
    /// Samples dropped as duplicate or out of order (at or before the series' last time).
    pub rejected: usize,
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

impl Store {
    /// Stores one sample time of a server: `(name, label, value)` per series. Samples at or
    /// before a series' last time are dropped and counted.
    pub async fn ingest(
        &self,
        server_id: &str,
        ts_ms: i64,
        samples: &[(&str, &str, f64)],
    ) -> StoreResult<IngestOutcome> {
        let ids = self.resolve(server_id, samples).await?;
        let mut out = IngestOutcome::default();
        let mut head = lock(&self.inner.head);
        for (id, (_, _, v)) in ids.into_iter().zip(samples) {
            if head.append(id, ts_ms, *v) {
                out.accepted += 1;
            } else {
                out.rejected += 1;
            }
        }
        Ok(out)
    }

    /// The series ids of `samples`, creating the missing series.
    async fn resolve(
        &self,
        server_id: &str,
        samples: &[(&str, &str, f64)],
    ) -> StoreResult<Vec<SeriesId>> {
        let lookup = |reg: &Registry| -> Vec<Option<SeriesId>> {
            let map = reg.by_key.get(server_id);
            samples
                .iter()
                .map(|(n, l, _)| {
                    map.and_then(|m| m.get(&((*n).to_string(), (*l).to_string())).copied())
                })
                .collect()
        };
        let found = lookup(
            &self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if found.iter().all(Option::is_some) {
            return Ok(found.into_iter().flatten().collect());
        }
        let mut missing: Vec<(String, String)> = Vec::new();
        for ((n, l, _), id) in samples.iter().zip(&found) {
            if id.is_none() {
                if !valid_name(n, 128) || !(l.is_empty() || valid_name(l, 256)) {
                    return Err(StoreError::Invalid(format!(
                        "metric name {n:?} / label {l:?} must be 1–128 / 0–256 characters without control characters"
                    )));
                }
                let key = ((*n).to_string(), (*l).to_string());
                if !missing.contains(&key) {
                    missing.push(key);
                }
            }
        }
        let known = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .get(server_id)
            .map_or(0, HashMap::len);
        if known + missing.len() > self.inner.config.max_series_per_server {
            return Err(StoreError::Invalid(format!(
                "server {server_id} would have more than {} metric series",
                self.inner.config.max_series_per_server
            )));
        }
        let now = self.inner.clock.now_ms();
        let rows = db::ensure_series(&self.inner.db.pool, server_id, &missing, now).await?;
        {
            let mut reg = self
                .inner
                .registry
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let mut head = lock(&self.inner.head);
            for r in rows {
                if !reg.meta.contains_key(&r.id) {
                    if let Some(t) = r.raw_to {
                        head.set_floor(r.id, t);
                    }
                    reg.add(r);
                }
            }
        }
        let found = lookup(
            &self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        );
        found
            .into_iter()
            .map(|id| id.ok_or_else(|| StoreError::Invalid("series vanished while created".into())))
            .collect()
    }

    /// Forgets a deleted server's series in memory (the database drops them with the server).
    pub fn forget_server(&self, server_id: &str) {
        let mut reg = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(map) = reg.by_key.remove(server_id) {
            let ids: Vec<SeriesId> = map.into_values().collect();
            for id in &ids {
                reg.meta.remove(id);
            }
            lock(&self.inner.head).remove_series(&ids);
        }
    }
}
