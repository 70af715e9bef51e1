//! Disk use of the stored tiers per server, and the samples held in memory.
use steward_db::metrics as db;
use steward_tsdb::rollup::Tier;

use super::{Store, StoreResult, lock};

/// Disk use of one tier of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct TierUsage {
    pub tier: Tier,
    pub chunks: i64,
    /// Chunk bytes plus an estimate of row and index overhead.
    pub bytes: i64,
    pub samples: i64,
    /// `bytes` over the days the tier's data covers (at least one day).
    pub bytes_per_day: f64,
    /// What the tier will hold at this rate once its retention is full.
    pub projected_bytes: f64,
}

/// Disk use of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerUsage {
    pub server_id: String,
    pub tiers: Vec<TierUsage>,
    /// Sum of the tiers' bytes per day.
    pub bytes_per_day: f64,
}

/// Estimated row plus index overhead of one chunk (row header, key columns, index entry).
const ROW_OVERHEAD: i64 = 80;

impl Store {
    /// Disk use per server and tier, with bytes per day and what each tier will hold once its
    /// retention is full. Scans the chunk table: call it from a page, not per sample.
    pub async fn disk_usage(&self) -> StoreResult<Vec<ServerUsage>> {
        const DAY: f64 = 86_400_000.0;
        let rows = db::disk_usage(&self.inner.db.pool).await?;
        let mut out: Vec<ServerUsage> = Vec::new();
        for r in rows {
            let Some(tier) = Tier::from_code(r.tier) else {
                continue;
            };
            let bytes = r.bytes + r.chunks * ROW_OVERHEAD;
            let days = ((r.last_ms - r.first_ms) as f64 / DAY).max(1.0);
            let per_day = bytes as f64 / days;
            let usage = TierUsage {
                tier,
                chunks: r.chunks,
                bytes,
                samples: r.samples,
                bytes_per_day: per_day,
                projected_bytes: per_day * self.inner.config.retention.of(tier) as f64 / DAY,
            };
            match out.last_mut() {
                Some(s) if s.server_id == r.server_id => {
                    s.bytes_per_day += per_day;
                    s.tiers.push(usage);
                }
                _ => out.push(ServerUsage {
                    server_id: r.server_id,
                    bytes_per_day: per_day,
                    tiers: vec![usage],
                }),
            }
        }
        Ok(out)
    }

    /// Samples held in memory.
    pub fn samples_in_memory(&self) -> usize {
        lock(&self.inner.head).samples_in_memory()
    }
}
