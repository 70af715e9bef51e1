//! Steward's metric storage engine, without I/O: the chunk codec, the in-memory head of open
//! chunks with its write-ahead bookkeeping, rollups into 1-minute and 1-hour buckets, and
//! range-query planning. The database side lives in `steward_db::metrics`, the async
//! orchestration in `steward_api::metrics::store`.
//!
//! A series is identified by an integer [`SeriesId`]; samples are `(i64 Unix ms, f64)`.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod codec;
pub mod head;
pub mod query;
pub mod rollup;
pub mod sim;

pub use codec::{Bucket, CodecError, LogSample};
pub use head::{Flush, Head, HeadConfig, HeadStats, SealedChunk, SeriesId};
pub use query::{Plan, Point, Retention, Source, Watermarks};
pub use rollup::{HOUR_MS, MINUTE_MS, Tier};
