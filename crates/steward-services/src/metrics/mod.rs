//! Host metrics on the hub: the time-series store ([`store`]) over `steward-tsdb` and the
//! database.
pub mod store;
