//! The route table (SPEC §7).

use super::{api, layers, meta, pages};
use crate::state::AppState;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

/// Every route under `/auth`, with its middleware.
pub fn router(state: AppState) -> Router {
    use pages::{account, admin, login, session, signup};
    let routes = Router::new()
        .route(
            "/auth/login",
            checked(get(login::get_login).post(login::post_login)),
        )
        .route(
            "/auth/signup",
            checked(get(signup::get_signup).post(signup::post_signup)),
        )
        .route("/auth/account", get(account::get_account))
        .route(
            "/auth/successful-deletion",
            get(pages::get_successful_deletion),
        )
        .route("/auth/user/username", checked(post(account::post_username)))
        .route("/auth/user/delete", checked(post(account::post_delete)))
        .route("/auth/sessions/logout", checked(post(session::post_logout)))
        .route(
            "/auth/sessions/refresh",
            checked(post(session::post_refresh)),
        )
        .route(
            "/auth/sessions/{id}/revoke",
            checked(post(session::post_revoke)),
        )
        .route(
            "/auth/admin/users/{id}/disable",
            checked(post(admin::post_disable)),
        )
        .route(
            "/auth/admin/users/{id}/enable",
            checked(post(admin::post_enable)),
        )
        .route("/auth/api/v1/user", get(api::get_user))
        .route(
            "/auth/api/v1/sessions/refresh",
            checked(post(api::post_refresh)),
        )
        .route(
            "/auth/api/v1/sessions/logout",
            checked(post(api::post_logout)),
        )
        .route("/auth/api/v1/csrf", get(api::get_csrf))
        .route("/auth/health", get(meta::get_health))
        .route("/auth/version", get(meta::get_version))
        .route("/auth/static/authara.css", get(meta::get_css));

    routes
        .fallback(layers::not_found)
        .method_not_allowed_fallback(layers::method_not_allowed)
        .layer(from_fn(layers::body_limit))
        .layer(CatchPanicLayer::custom(layers::panic_response))
        .layer(from_fn(layers::security_headers))
        .layer(from_fn_with_state(state.clone(), layers::request_id))
        .with_state(state)
}

/// Adds the CSRF check to the methods a route serves, and only to them: an unserved method is
/// answered `405` before any CSRF check (SPEC §7).
fn checked(methods: MethodRouter<AppState>) -> MethodRouter<AppState> {
    methods.route_layer(from_fn(layers::require_csrf))
}
