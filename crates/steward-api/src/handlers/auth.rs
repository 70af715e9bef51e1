//! Login, refresh, logout and the caller's own account.
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use steward_core::DEFAULT_ORG_ID;
use steward_core::validate::Email;
use steward_db::users::UserRow;
use steward_db::{sessions, users};
use steward_proto::{
    ChangePasswordRequest, ErrorBody, LoginRequest, Me, RefreshRequest, TokenResponse,
    UpdateProfileRequest,
};

use super::tags;
use crate::auth::attempt::{self, Attempt, Proof};
use crate::auth::{PendingPrincipal, PendingSession, cookies};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientInfo, OptionalJson};
use crate::state::AppState;
use steward_services::audit::{Event, Outcome};
use steward_services::auth::tokens;

/// UI languages Steward ships.
pub const LOCALES: &[&str] = &["en", "de", "fr", "es", "pt-BR", "ru", "zh-CN", "ja"];

/// Starts a session for `user` and returns the tokens, with cookies for browsers.
pub(crate) async fn start_session(
    st: &AppState,
    user: &UserRow,
    client: &ClientInfo,
) -> ApiResult<Response> {
    let now = st.now_ms();
    let session = sessions::SessionRow {
        id: steward_db::new_id(),
        org_id: user.org_id.clone(),
        user_id: user.id.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + st.config.session_max_secs * 1000,
        revoked_at: None,
        revoke_reason: None,
        source_ip: client.ip.map(|i| i.to_string()),
        user_agent: client.user_agent.clone(),
        step_up_at: None,
    };
    sessions::insert(&st.db.pool, &session).await?;
    issue_tokens(st, user, &session, StatusCode::OK).await
}

async fn issue_tokens(
    st: &AppState,
    user: &UserRow,
    session: &sessions::SessionRow,
    status: StatusCode,
) -> ApiResult<Response> {
    let now = st.now_ms();
    let refresh = tokens::random_token(32);
    let refresh_expires = (now + st.config.refresh_ttl_secs * 1000).min(session.expires_at);
    sessions::insert_refresh(
        &st.db.pool,
        &session.id,
        &tokens::hash_token(&refresh),
        now,
        refresh_expires,
    )
    .await?;
    let access_ttl = st.config.access_ttl_secs;
    let access = st
        .jwt
        .issue(&user.id, &session.id, &user.org_id, now / 1000, access_ttl)
        .map_err(ApiError::internal)?;
    let mut headers = HeaderMap::new();
    cookies::set(
        &mut headers,
        &access,
        access_ttl,
        &refresh,
        (refresh_expires - now) / 1000,
        st.config.secure_cookies,
    );
    let body = TokenResponse {
        access_token: access.into(),
        token_type: "Bearer".into(),
        expires_in: access_ttl,
        refresh_token: refresh.into(),
    };
    Ok((status, headers, Json(body)).into_response())
}

/// Logs in with username and password (and a TOTP or recovery code when 2FA is on).
#[utoipa::path(operation_id = "auth_login", post, path = "/api/v1/auth/login", security(()), tag = tags::AUTH, request_body = LoginRequest,
    responses((status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody, description = "`invalid_credentials`; after a correct password: `totp_required`, `invalid_totp`, `invalid_recovery_code`"),
        (status = 403, body = ErrorBody, description = "`account_disabled`"),
        (status = 429, body = ErrorBody, description = "`too_many_attempts`: wait for Retry-After"),
        (status = 503, body = ErrorBody, description = "`busy`: too many password checks at once; see Retry-After")))]
pub async fn login(
    State(st): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let now = st.now_ms();
    // What the audit log records of the attempted name: printable, bounded.
    let attempted: String = req
        .username
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let audit = |outcome: Outcome, reason: &str| {
        Event::new("auth.login", &client, now)
            .actor(None, &attempted)
            .outcome(outcome)
            .details(json!({ "reason": reason }))
    };

    // Counted before anything is checked, so a burst cannot outrun the throttle.
    let attempt = match Attempt::reserve(&st, &req.username, &client).await? {
        Ok(a) => a,
        Err(wait) => {
            audit(Outcome::Denied, "throttled")
                .write(&st.db.pool)
                .await?;
            return Err(ApiError::too_many_attempts(wait));
        }
    };

    // A name that cannot be valid is not looked up (and cannot break the query), but is
    // still checked against the dummy hash so the answer takes as long as any other.
    let user = match steward_core::validate::Username::parse(&req.username) {
        Ok(name) => users::get_by_username(&st.db.pool, DEFAULT_ORG_ID, name.as_str()).await?,
        Err(_) => None,
    };

    let hash = user.as_ref().map_or_else(
        || st.dummy_password_hash.clone(),
        |u| u.password_hash.clone(),
    );
    let password_ok = match st.passwords.verify(req.password.clone(), hash).await {
        Ok(ok) => ok && user.is_some(),
        Err(e) => {
            attempt.not_judged(&st).await?;
            return Err(e.into());
        }
    };
    let Some(user) = user.filter(|_| password_ok) else {
        attempt.failed();
        audit(Outcome::Failure, "bad credentials")
            .write(&st.db.pool)
            .await?;
        return Err(ApiError::unauthorized(
            "invalid_credentials",
            "wrong username or password",
        ));
    };
    let audit = |outcome: Outcome, reason: &str| {
        audit(outcome, reason).actor(Some(&user.id), &user.username)
    };
    if user.disabled_at.is_some() {
        attempt.succeeded(&st).await?;
        audit(Outcome::Denied, "account disabled")
            .write(&st.db.pool)
            .await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_disabled",
            "this account is disabled",
        ));
    }

    let mut method = "password";
    if user.totp_enabled_at.is_some() {
        if let Some(code) = req
            .recovery_code
            .as_ref()
            .filter(|c| !c.is_blank())
            .map(|c| c.expose())
        {
            let hash = tokens::hash_token(&tokens::normalize_recovery_code(code));
            if !users::use_recovery_code(&st.db.pool, &user.id, &hash, now).await? {
                attempt.failed();
                audit(Outcome::Failure, "bad recovery code")
                    .write(&st.db.pool)
                    .await?;
                return Err(ApiError::unauthorized(
                    "invalid_recovery_code",
                    "the recovery code is not valid or was used",
                ));
            }
            method = "recovery_code";
        } else {
            let Some(code) = req
                .totp_code
                .as_ref()
                .filter(|c| !c.is_blank())
                .map(|c| c.expose())
            else {
                attempt.right_so_far(&st).await?;
                return Err(ApiError::unauthorized(
                    "totp_required",
                    "enter the code from your authenticator app",
                ));
            };
            if !super::totp::check_code(&st, &user, code, now).await? {
                attempt.failed();
                audit(Outcome::Failure, "bad totp code")
                    .write(&st.db.pool)
                    .await?;
                return Err(ApiError::unauthorized(
                    "invalid_totp",
                    "the authentication code is not valid",
                ));
            }
            method = "totp";
        }
    }

    attempt.succeeded(&st).await?;
    users::touch_login(&st.db.pool, &user.id, now).await?;
    let response = start_session(&st, &user, &client).await?;
    audit(Outcome::Success, "ok")
        .details(json!({ "method": method }))
        .write(&st.db.pool)
        .await?;
    Ok(response)
}

/// Exchanges a refresh token (body or cookie) for a new pair. A token presented twice ends its
/// whole session: one of the two presenters stole it.
#[utoipa::path(operation_id = "auth_refresh", post, path = "/api/v1/auth/refresh", security(()), tag = tags::AUTH, request_body(content = RefreshRequest, description = "optional when the cookie is sent"),
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody, description = "`invalid_refresh_token`, `refresh_token_reused`, `session_ended`")))]
pub async fn refresh(
    State(st): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> ApiResult<Response> {
    let now = st.now_ms();
    // The body is optional: browsers send only the cookie.
    let token = body
        .unwrap_or_default()
        .refresh_token
        .map(|t| t.expose().to_string())
        .or_else(|| {
            let name = cookies::names(st.config.secure_cookies).refresh;
            cookies::get(&headers, name)
        })
        .ok_or_else(|| {
            ApiError::unauthorized("invalid_refresh_token", "no refresh token was sent")
        })?;
    let invalid =
        || ApiError::unauthorized("invalid_refresh_token", "the refresh token is not valid");
    let row = sessions::get_refresh(&st.db.pool, &tokens::hash_token(&token))
        .await?
        .ok_or_else(invalid)?;
    let session = sessions::get(&st.db.pool, &row.session_id)
        .await?
        .ok_or_else(invalid)?;
    let user = users::get(&st.db.pool, &session.org_id, &session.user_id)
        .await?
        .ok_or_else(invalid)?;

    if row.used_at.is_some() || !sessions::spend_refresh(&st.db.pool, &row.id, now).await? {
        let was_live =
            sessions::revoke(&st.db.pool, &session.id, "refresh token reuse", now).await?;
        Event::new("auth.refresh_reuse", &client, now)
            .actor(Some(&user.id), &user.username)
            .target("session", &session.id, &user.username)
            .outcome(Outcome::Denied)
            .details(json!({ "session_revoked": was_live }))
            .write(&st.db.pool)
            .await?;
        tracing::warn!(user = %user.username, session = %session.id, "refresh token reused; session revoked");
        return Err(ApiError::unauthorized(
            "refresh_token_reused",
            "this refresh token was already used; the session has been ended",
        ));
    }
    if session.revoked_at.is_some() || session.expires_at <= now || row.expires_at <= now {
        return Err(ApiError::unauthorized(
            "session_ended",
            "the session has ended; log in again",
        ));
    }
    if user.disabled_at.is_some() {
        return Err(ApiError::unauthorized(
            "account_disabled",
            "this account is disabled",
        ));
    }
    sessions::touch(&st.db.pool, &session.id, now).await?;
    issue_tokens(&st, &user, &session, StatusCode::OK).await
}

/// Ends the current session and clears the cookies.
#[utoipa::path(operation_id = "auth_logout", post, path = "/api/v1/auth/logout", tag = tags::AUTH, responses((status = 204)))]
pub async fn logout(State(st): State<AppState>, principal: PendingSession) -> ApiResult<Response> {
    let p = principal.0;
    let now = st.now_ms();
    if let Some(sid) = p.session_id() {
        sessions::revoke(&st.db.pool, sid, "logout", now).await?;
    }
    Event::by(&p, "auth.logout", now).write(&st.db.pool).await?;
    let mut headers = HeaderMap::new();
    cookies::clear(&mut headers, st.config.secure_cookies);
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// The caller's account and permissions.
#[utoipa::path(operation_id = "auth_me", get, path = "/api/v1/auth/me", tag = tags::AUTH, responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(st): State<AppState>, principal: PendingPrincipal) -> ApiResult<Json<Me>> {
    me_view(&st, &principal.0).await.map(Json)
}

async fn me_view(st: &AppState, p: &crate::auth::Principal) -> ApiResult<Me> {
    Ok(Me {
        id: p.user.id.clone(),
        username: p.user.username.clone(),
        email: p.user.email.clone(),
        locale: p.user.locale.clone(),
        roles: p.roles.iter().map(|r| r.name.clone()).collect(),
        permissions: p.authz.permissions().into_iter().collect(),
        scopes: p
            .authz
            .permissions()
            .into_iter()
            .filter(|perm| perm.is_server_scoped())
            .filter_map(|perm| {
                let tags = match p.authz.scope_of(perm)? {
                    steward_core::rbac::Scope::All => None,
                    steward_core::rbac::Scope::Tags(t) => Some(t.into_iter().collect()),
                };
                Some((perm.as_str().to_owned(), tags))
            })
            .collect(),
        totp_enabled: p.user.totp_enabled_at.is_some(),
        totp_required: p.totp_required,
        totp_setup_required: p.totp_setup_required(),
        password_change_required: p.password_change_required(),
        recovery_codes_left: users::count_recovery_codes(&st.db.pool, &p.user.id).await?,
        auth_method: match p.method {
            crate::auth::AuthMethod::Session { .. } => "session".into(),
            crate::auth::AuthMethod::ApiToken { .. } => "api_token".into(),
        },
    })
}

/// Updates the caller's e-mail address and language.
#[utoipa::path(operation_id = "auth_update_me", patch, path = "/api/v1/auth/me", tag = tags::AUTH, request_body = UpdateProfileRequest,
    responses((status = 200, body = Me), (status = 422, body = ErrorBody)))]
pub async fn update_me(
    State(st): State<AppState>,
    principal: PendingSession,
    ApiJson(req): ApiJson<UpdateProfileRequest>,
) -> ApiResult<Json<Me>> {
    let p = principal.0;
    let now = st.now_ms();
    let email = match req.email.as_deref().map(str::trim) {
        None => p.user.email.clone(),
        Some("") => None,
        Some(e) => Some(Email::parse(e)?.into_inner()),
    };
    let locale = match req.locale.as_deref() {
        None => p.user.locale.clone(),
        Some(l) if LOCALES.contains(&l) => Some(l.to_string()),
        Some(_) => {
            return Err(steward_core::ValidationError::new(
                "locale",
                format!("must be one of {}", LOCALES.join(", ")),
            )
            .into());
        }
    };
    users::update_profile(
        &st.db.pool,
        &p.user.id,
        email.as_deref(),
        locale.as_deref(),
        now,
    )
    .await?;
    Event::by(&p, "user.update_profile", now)
        .target("user", &p.user.id, &p.user.username)
        .details(json!({ "email_changed": email != p.user.email, "locale": locale }))
        .write(&st.db.pool)
        .await?;
    let mut p = p;
    p.user = users::get(&st.db.pool, &p.user.org_id, &p.user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    me_view(&st, &p).await.map(Json)
}

/// Changes the caller's password; every other session of the account ends.
#[utoipa::path(operation_id = "auth_change_password", post, path = "/api/v1/auth/password", tag = tags::AUTH, request_body = ChangePasswordRequest,
    responses((status = 204), (status = 403, body = ErrorBody, description = "wrong current password"), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody, description = "`too_many_attempts`")))]
pub async fn change_password(
    State(st): State<AppState>,
    principal: PendingSession,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let p = principal.0;
    confirm_password(&st, &p, req.current_password, "user.change_password").await?;
    steward_services::accounts::change_own_password(&st, &p, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks for the caller's own password again before a sensitive change of their account,
/// through the throttle every password check shares ([`attempt::confirm`]). A wrong one is
/// audited as a failed `action` and answered 403 `invalid_password`.
pub(crate) async fn confirm_password(
    st: &AppState,
    p: &crate::auth::Principal,
    password: steward_proto::Sensitive,
    action: &str,
) -> ApiResult<()> {
    if attempt::confirm(st, p, Proof::Password(&password), action).await? {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_password",
        "the password is wrong",
    ))
}
