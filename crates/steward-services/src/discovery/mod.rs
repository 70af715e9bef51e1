//! Service discovery's pure half: the read-only script a scan runs on a server ([`script`]),
//! the parser of its output ([`parse`]) and the comparison of one scan with the last, with the
//! proposals it makes ([`diff`]). Running scans (over the fleet's SSH connections, on a
//! schedule) is still in steward-api's `discovery`.
pub mod diff;
pub mod parse;
pub mod script;
