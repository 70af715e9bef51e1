//! How many long-lived sockets (live view, run streams, terminals) each user holds on this
//! instance: past the limit (`--max-sockets-per-user`) a new one is refused with 429, so one
//! account (or one stolen session) cannot tie up the hub's memory and file descriptors.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use crate::error::ApiError;

/// The open sockets per user id.
#[derive(Debug, Default)]
pub struct PerUser {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One socket counted against its user until dropped.
#[derive(Debug)]
pub struct SocketSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    user_id: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PerUser {
    /// Counts one more socket for `user_id`, or 429 `too_many_sockets` at `limit`.
    pub fn acquire(&self, user_id: &str, limit: usize) -> Result<SocketSlot, ApiError> {
        let mut open = lock(&self.open);
        let n = open.entry(user_id.to_string()).or_insert(0);
        if *n >= limit {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sockets",
                format!(
                    "you already have {limit} live connections open (live view, run output, terminals); close some first"
                ),
            ));
        }
        *n += 1;
        Ok(SocketSlot {
            open: self.open.clone(),
            user_id: user_id.to_string(),
        })
    }

    /// Sockets `user_id` holds now.
    pub fn count(&self, user_id: &str) -> usize {
        lock(&self.open).get(user_id).copied().unwrap_or(0)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(n) = open.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_at_most_the_limit_and_slots_come_back() {
        let s = PerUser::default();
        let a = s.acquire("u1", 2).expect("first");
        let _b = s.acquire("u1", 2).expect("second");
        let e = s.acquire("u1", 2).expect_err("third");
        assert_eq!(
            (e.status, e.code),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_sockets")
        );
        // Another user is not affected.
        let _c = s.acquire("u2", 2).expect("other user");
        drop(a);
        assert_eq!(s.count("u1"), 1);
        let _d = s.acquire("u1", 2).expect("freed");
    }
}
