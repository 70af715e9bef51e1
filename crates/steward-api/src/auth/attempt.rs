//! The one gate in front of every check of a password or a code: logins, step-ups, and every
//! confirmation of the signed-in user's password or TOTP code (changing the password, turning
//! 2FA off, new recovery codes, confirming 2FA set-up).
//!
//! An attempt is *reserved* before anything is checked: one atomic statement per counter (the
//! source address, then the account) counts it if the schedule of
//! [`steward_core::throttle`] allows one now, and refuses it otherwise. However many attempts
//! arrive at once, at most the allowance is checked. A right answer then clears the account's
//! count and gives the address its attempt back; a wrong one keeps both counted; an attempt
//! that was never judged (the server was busy) gives both back.
use std::future::Future;

use serde_json::json;
use steward_core::throttle;
use steward_db::throttle::{self as counters, Schedule};
use steward_proto::Sensitive;

use super::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::ClientInfo;
use crate::state::AppState;
use steward_services::audit::{Event, Outcome};

/// An attempt counted against an address and an account, not yet judged.
#[derive(Debug)]
#[must_use = "say how the attempt ended: succeeded, failed or not_judged"]
pub(crate) struct Attempt {
    address: String,
    account: String,
}

fn schedule(free: i64) -> Schedule {
    Schedule {
        free,
        max_exponent: throttle::max_delay_exponent(),
        max_delay_secs: throttle::MAX_DELAY_SECS,
    }
}

/// Seconds until `key` may make another attempt.
async fn wait_secs(st: &AppState, key: &str, free: i64, now: i64) -> ApiResult<i64> {
    let Some(row) = counters::get(&st.db.pool, key).await? else {
        return Ok(1);
    };
    let until = row.last_failure_at + throttle::delay_secs(row.failures, free) * 1000;
    Ok(((until - now + 999) / 1000).max(1))
}

impl Attempt {
    /// Reserves an attempt to prove `username` from `client`. `Err(wait)` (seconds) when the
    /// address or the account must wait first; nothing more is counted then.
    pub(crate) async fn reserve(
        st: &AppState,
        username: &str,
        client: &ClientInfo,
    ) -> ApiResult<Result<Self, i64>> {
        let now = st.now_ms();
        let forget_before = now - throttle::FORGET_AFTER_SECS * 1000;
        let address = throttle::address_key(client.ip);
        let account = throttle::account_key(username);
        // The address first: an attacker's refused address then costs the account nothing.
        let free = throttle::ADDRESS_FREE_FAILURES;
        if counters::reserve(&st.db.pool, &address, now, forget_before, schedule(free))
            .await?
            .is_none()
        {
            return Ok(Err(wait_secs(st, &address, free, now).await?));
        }
        let free = throttle::ACCOUNT_FREE_FAILURES;
        if counters::reserve(&st.db.pool, &account, now, forget_before, schedule(free))
            .await?
            .is_none()
        {
            counters::refund(&st.db.pool, &address).await?;
            return Ok(Err(wait_secs(st, &account, free, now).await?));
        }
        Ok(Ok(Self { address, account }))
    }

    /// The user proved themselves: the account starts afresh, the address gets its attempt
    /// back.
    pub(crate) async fn succeeded(self, st: &AppState) -> ApiResult<()> {
        counters::clear(&st.db.pool, &self.account).await?;
        counters::refund(&st.db.pool, &self.address).await?;
        Ok(())
    }

    /// The answer was right but the proof is not complete yet (a login that still needs its
    /// second factor): both get their attempt back, the account's run goes on.
    pub(crate) async fn right_so_far(self, st: &AppState) -> ApiResult<()> {
        self.not_judged(st).await
    }

    /// Nothing was checked (the server was too busy): both get their attempt back.
    pub(crate) async fn not_judged(self, st: &AppState) -> ApiResult<()> {
        counters::refund(&st.db.pool, &self.account).await?;
        counters::refund(&st.db.pool, &self.address).await?;
        Ok(())
    }

    /// A wrong answer: the attempt stays counted.
    pub(crate) fn failed(self) {}
}

/// How the signed-in user proves themselves again.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Proof<'a> {
    Password(&'a Sensitive),
    /// A code from the authenticator app (of an account with 2FA on).
    TotpCode(&'a str),
}

impl Proof<'_> {
    /// The method, as the audit log names it.
    pub(crate) fn method(self) -> &'static str {
        match self {
            Proof::Password(_) => "password",
            Proof::TotpCode(_) => "totp",
        }
    }
}

/// Runs `check` (which answers whether the signed-in user proved themselves) as one reserved
/// attempt on the account's and the address's counters. Throttled: audited as a denied
/// `action` and answered 429 with `Retry-After`. Wrong: audited as a failed `action`
/// (`details.reason`), `Ok(None)`. Right: `Ok(Some(value))`; the caller audits its success.
pub(crate) async fn guarded<T, F, Fut>(
    st: &AppState,
    p: &Principal,
    action: &str,
    reason: &str,
    check: F,
) -> ApiResult<Option<T>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<Option<T>>>,
{
    let attempt = match Attempt::reserve(st, &p.user.username, &p.client).await? {
        Ok(a) => a,
        Err(wait) => {
            Event::by(p, action, st.now_ms())
                .target("user", &p.user.id, &p.user.username)
                .outcome(Outcome::Denied)
                .details(json!({ "reason": "throttled" }))
                .write(&st.db.pool)
                .await?;
            return Err(ApiError::too_many_attempts(wait));
        }
    };
    match check().await {
        Ok(Some(v)) => {
            attempt.succeeded(st).await?;
            Ok(Some(v))
        }
        Ok(None) => {
            attempt.failed();
            Event::by(p, action, st.now_ms())
                .target("user", &p.user.id, &p.user.username)
                .outcome(Outcome::Failure)
                .details(json!({ "reason": reason }))
                .write(&st.db.pool)
                .await?;
            Ok(None)
        }
        Err(e) => {
            attempt.not_judged(st).await?;
            Err(e)
        }
    }
}

/// Checks the signed-in user's password or TOTP code again (see [`guarded`]). Returns
/// whether it was right.
pub(crate) async fn confirm(
    st: &AppState,
    p: &Principal,
    proof: Proof<'_>,
    action: &str,
) -> ApiResult<bool> {
    let reason = match proof {
        Proof::Password(_) => "wrong password",
        Proof::TotpCode(_) => "wrong code",
    };
    let right = guarded(st, p, action, reason, || async {
        let ok = match proof {
            Proof::Password(password) => {
                st.passwords
                    .verify(password.clone(), p.user.password_hash.clone())
                    .await?
            }
            Proof::TotpCode(code) => {
                steward_services::second_factor::check_code(st, &p.user, code, st.now_ms()).await?
            }
        };
        Ok(ok.then_some(()))
    })
    .await?;
    Ok(right.is_some())
}
