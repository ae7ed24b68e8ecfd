//! The route table (SPEC §7). Every route is registered through [`Routes`], which records its
//! method and path: [`route_table`] is the list the router serves, so tests can walk every
//! route, and no route can be added without the CSRF and origin checks ([`CSRF_EXEMPT`] is the
//! one place a route may opt out).

use super::{api, layers, meta, pages};
use crate::state::AppState;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{on, MethodFilter};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

/// One route: a method and a path pattern as registered (`{id}` for path parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
}

impl Route {
    /// Whether requests of this method change state (and so need the CSRF and origin checks):
    /// everything but `GET`, `HEAD`, `OPTIONS` and `TRACE` (SPEC §5).
    pub fn is_state_changing(&self) -> bool {
        is_state_changing(&self.method)
    }

    /// Whether the route is exempt from the CSRF and origin checks.
    pub fn is_csrf_exempt(&self) -> bool {
        is_csrf_exempt(&self.method, self.path)
    }
}

/// The state-changing routes that do not take the double-submit CSRF and origin checks, as
/// `(method, path pattern)`. Each must have a check of its own; the Google callback
/// (`POST /auth/oauth/google/callback`, SPEC §9, with its `g_csrf_token` check) will be the
/// first. Empty today.
pub const CSRF_EXEMPT: &[(Method, &str)] = &[];

/// See [`Route::is_state_changing`].
pub fn is_state_changing(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// See [`CSRF_EXEMPT`].
pub fn is_csrf_exempt(method: &Method, path: &str) -> bool {
    CSRF_EXEMPT.iter().any(|(m, p)| m == method && *p == path)
}

/// A router being built, with the table of what it serves.
struct Routes {
    router: Router<AppState>,
    table: Vec<Route>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    fn add<H, T>(mut self, method: Method, filter: MethodFilter, path: &'static str, h: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter, h));
        self.table.push(Route { method, path });
        self
    }

    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::GET, MethodFilter::GET, path, h)
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::POST, MethodFilter::POST, path, h)
    }
}

/// Every route under `/auth`, unlayered.
fn routes() -> Routes {
    use pages::{account, admin, login, session, signup};
    Routes::new()
        .get("/auth/login", login::get_login)
        .post("/auth/login", login::post_login)
        .get("/auth/signup", signup::get_signup)
        .post("/auth/signup", signup::post_signup)
        .get("/auth/account", account::get_account)
        .get("/auth/successful-deletion", pages::get_successful_deletion)
        .post("/auth/user/username", account::post_username)
        .post("/auth/user/delete", account::post_delete)
        .post("/auth/sessions/logout", session::post_logout)
        .post("/auth/sessions/refresh", session::post_refresh)
        .post("/auth/sessions/{id}/revoke", session::post_revoke)
        .post("/auth/admin/users/{id}/disable", admin::post_disable)
        .post("/auth/admin/users/{id}/enable", admin::post_enable)
        .get("/auth/api/v1/user", api::get_user)
        .post("/auth/api/v1/sessions/refresh", api::post_refresh)
        .post("/auth/api/v1/sessions/logout", api::post_logout)
        .get("/auth/api/v1/csrf", api::get_csrf)
        .get("/auth/health", meta::get_health)
        .get("/auth/version", meta::get_version)
        .get("/auth/static/authara.css", meta::get_css)
}

/// Every `(method, path pattern)` the router serves, in registration order. (`HEAD` is served
/// wherever `GET` is, as axum does.)
pub fn route_table() -> Vec<Route> {
    routes().table
}

/// Every route under `/auth`, with its middleware.
pub fn router(state: AppState) -> Router {
    routes()
        .router
        // A route layer runs only once a route and one of its methods matched: unknown paths
        // get 404 and unserved methods 405 before any CSRF check (SPEC §7).
        .route_layer(from_fn_with_state(state.clone(), layers::require_csrf))
        .fallback(layers::not_found)
        .method_not_allowed_fallback(layers::method_not_allowed)
        .layer(from_fn(layers::run_to_completion))
        .layer(from_fn(layers::body_limit))
        .layer(CatchPanicLayer::custom(layers::panic_response))
        .layer(from_fn(layers::security_headers))
        .layer(from_fn_with_state(state.clone(), layers::request_id))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_no_duplicates_and_every_exemption_names_a_route() {
        let table = route_table();
        for (i, r) in table.iter().enumerate() {
            assert!(!table.iter().skip(i + 1).any(|o| o == r), "{r:?} twice");
        }
        for (m, p) in CSRF_EXEMPT {
            assert!(
                table.iter().any(|r| r.method == *m && r.path == *p),
                "exempt {m} {p} is no route"
            );
        }
        assert!(table
            .iter()
            .any(|r| r.method == Method::POST && r.path == "/auth/login"));
    }

    #[test]
    fn only_safe_methods_are_not_state_changing() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(!is_state_changing(&m), "{m}");
        }
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(is_state_changing(&m), "{m}");
        }
    }
}
