//! The OpenAPI 3.1 document, generated from the handlers' annotations. Routes are registered
//! together with their documentation (utoipa-axum), so an undocumented API route cannot exist.
use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::handlers::{
    agents, api_tokens, audit, auth, checks, credentials, executions, health, metrics, prometheus,
    roles, scan, scripts, servers, sessions, settings, setup, ssh, step_up, terminal, totp, users,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Steward API", description = "Run a fleet of Linux servers: inventory, access, audit.", license(name = "AGPL-3.0-only")),
    modifiers(&Security),
    // The WebSocket messages (live view, run stream, terminal): not operations, but the UI's
    // types are generated from these components like the rest.
    components(schemas(
        steward_proto::LiveClientMessage,
        steward_proto::LiveServerMessage,
        steward_proto::ExecutionEvent,
        steward_proto::TerminalClientMessage,
        steward_proto::TerminalServerMessage
    )),
    security(("bearer" = []), ("cookie" = [])),
    tags(
        (name = "setup", description = "First-run setup"),
        (name = "auth", description = "Login, sessions, two-factor authentication"),
        (name = "users", description = "User management"),
        (name = "roles", description = "Roles and permissions"),
        (name = "servers", description = "Server inventory and credentials"),
        (name = "scripts", description = "Script library and runs across servers"),
        (name = "checks", description = "Health checks run from Steward: HTTP(S), TCP, DNS"),
        (name = "audit", description = "Audit log"),
        (name = "api-tokens", description = "Personal API tokens"),
        (name = "settings", description = "Organization settings"),
        (name = "metrics", description = "Host metrics: charts, fleet summary, live updates"),
        (name = "health", description = "Probes"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or stw_ API token")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::cookies::ACCESS,
                "Set by login; named `__Host-steward_access` when Steward is served over HTTPS",
            ))),
        );
    }
}

/// Every documented route, with its documentation.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(prometheus::metrics))
        .routes(routes!(agents::connect))
        .routes(routes!(agents::download))
        .routes(routes!(agents::install))
        .routes(routes!(agents::uninstall))
        .routes(routes!(agents::get, agents::enroll, agents::revoke))
        .routes(routes!(document))
        .routes(routes!(setup::status, setup::create))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me, auth::update_me))
        .routes(routes!(auth::change_password))
        .routes(routes!(sessions::list_own))
        .routes(routes!(sessions::revoke_own))
        .routes(routes!(sessions::revoke_others))
        .routes(routes!(step_up::step_up))
        .routes(routes!(totp::enroll))
        .routes(routes!(totp::confirm))
        .routes(routes!(totp::disable))
        .routes(routes!(totp::regenerate_codes))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::reset_password))
        .routes(routes!(users::reset_totp))
        .routes(routes!(sessions::list_for_user))
        .routes(routes!(sessions::revoke_for_user))
        .routes(routes!(sessions::revoke_all_for_user))
        .routes(routes!(sessions::tokens_for_user))
        .routes(routes!(sessions::revoke_token_for_user))
        .routes(routes!(roles::list, roles::create))
        .routes(routes!(roles::get, roles::update, roles::delete))
        .routes(routes!(roles::permissions))
        .routes(routes!(servers::list, servers::create))
        .routes(routes!(servers::get, servers::update, servers::delete))
        .routes(routes!(servers::confirm_endpoint))
        .routes(routes!(servers::tag_list))
        .routes(routes!(
            credentials::get,
            credentials::put,
            credentials::delete
        ))
        .routes(routes!(ssh::test_connection))
        .routes(routes!(
            ssh::get_host_key,
            ssh::pin_host_key,
            ssh::forget_host_key
        ))
        .routes(routes!(ssh::accept_host_key))
        .routes(routes!(scan::run, scan::latest))
        .routes(routes!(scan::history))
        .routes(routes!(scan::one))
        .routes(routes!(scan::proposals_list))
        .routes(routes!(scan::proposal_dismiss))
        .routes(routes!(checks::list, checks::create))
        .routes(routes!(checks::get, checks::update, checks::delete))
        .routes(routes!(checks::results))
        .routes(routes!(checks::run))
        .routes(routes!(checks::proposal_accept))
        .routes(routes!(scripts::list, scripts::create))
        .routes(routes!(scripts::get, scripts::update, scripts::delete))
        .routes(routes!(scripts::versions))
        .routes(routes!(scripts::version))
        .routes(routes!(executions::list, executions::create))
        .routes(routes!(executions::get))
        .routes(routes!(executions::cancel))
        .routes(routes!(executions::stream))
        .routes(routes!(terminal::open))
        .routes(routes!(terminal::list))
        .routes(routes!(terminal::get))
        .routes(routes!(terminal::recording))
        .routes(routes!(terminal::terminate))
        .routes(routes!(metrics::range))
        .routes(routes!(metrics::summary))
        .routes(routes!(metrics::disk_usage))
        .routes(routes!(metrics::live))
        .routes(routes!(audit::list))
        .routes(routes!(api_tokens::list, api_tokens::create))
        .routes(routes!(api_tokens::revoke))
        .routes(routes!(settings::get, settings::put))
}

/// The OpenAPI document (built once).
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| api_routes().into_openapi())
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(operation_id = "document", get, path = "/api/v1/openapi.json", tag = "health", security(()), responses((status = 200, description = "the OpenAPI document")))]
pub async fn document() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(openapi())
}
