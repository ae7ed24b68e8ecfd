//! The router (SPEC §7): every feature's `routes()` merged, then the layers. Every route is
//! registered through [`Routes`], which records its method and path: [`route_table`] is the list
//! the router serves, so tests can walk every route, and no route can be added without the CSRF
//! and origin checks ([`CSRF_EXEMPT`] is the one place a route may opt out).

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
/// `(method, path pattern)`. Each must have a check of its own, or no ambient credential to
/// protect:
/// - `POST /auth/api/v1/tokens/refresh` (mobile refresh) reads no cookie at all: its only
///   credential is the refresh token in its JSON body, which another site does not have.
/// - the Google callback (`POST /auth/oauth/google/callback`, SPEC §9): Google's page posts it
///   from Google's origin; the handler checks `g_csrf_token` against its cookie (that shape) or
///   the CSRF token, the origin and the nonce (the JavaScript shape) itself.
/// - the internal API (`/auth/internal/v1/...`, [`api::internal::v1::ROUTES`]) reads no cookie:
///   its credential is `AUTHARA_INTERNAL_API_TOKEN` in `Authorization`.
pub const CSRF_EXEMPT: &[(Method, &str)] = &[
    (Method::POST, api::v1::tokens::REFRESH_PATH),
    (Method::POST, pages::oauth::CALLBACK),
];

/// See [`Route::is_state_changing`].
pub fn is_state_changing(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// See [`CSRF_EXEMPT`].
pub fn is_csrf_exempt(method: &Method, path: &str) -> bool {
    CSRF_EXEMPT
        .iter()
        .chain(api::internal::v1::ROUTES)
        .any(|(m, p)| m == method && *p == path)
}

/// A router being built, with the table of what it serves. Each feature module's `routes()`
/// returns one (rather than a bare `Router`), so that its routes land in [`route_table`].
pub struct Routes {
    router: Router<AppState>,
    table: Vec<Route>,
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
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

    /// Adds `GET path` (and so `HEAD path`).
    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::GET, MethodFilter::GET, path, h)
    }

    /// Adds `POST path`.
    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::POST, MethodFilter::POST, path, h)
    }

    /// Adds `PUT path`.
    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::PUT, MethodFilter::PUT, path, h)
    }

    /// Adds `DELETE path`.
    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::DELETE, MethodFilter::DELETE, path, h)
    }

    /// Adds a `PATCH` route.
    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::PATCH, MethodFilter::PATCH, path, h)
    }

    /// Adds every route of `other`, after this one's.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

/// Every route under `/auth`, unlayered: one line per feature.
fn routes() -> Routes {
    use api::v1;
    use pages::{
        account, admin, challenge, code_flow, email_change, invitations, login, oauth,
        organizations, password, password_reset, provider_links, providers, session, signup,
    };
    Routes::new()
        .merge(login::routes())
        .merge(signup::routes())
        .merge(oauth::routes())
        .merge(code_flow::routes())
        .merge(providers::routes())
        .merge(provider_links::routes())
        .merge(account::routes())
        .merge(password::routes())
        .merge(password_reset::routes())
        .merge(challenge::routes())
        .merge(email_change::routes())
        .merge(session::routes())
        .merge(organizations::routes())
        .merge(invitations::routes())
        .merge(admin::routes())
        .merge(v1::user::routes())
        .merge(v1::password::routes())
        .merge(v1::session::routes())
        .merge(v1::login::routes())
        .merge(v1::oauth::routes())
        .merge(v1::signup::routes())
        .merge(v1::password_reset::routes())
        .merge(v1::challenges::routes())
        .merge(v1::tokens::routes())
        .merge(v1::sessions::routes())
        .merge(v1::organizations::routes())
        .merge(v1::invitations::routes())
        .merge(api::internal::v1::routes())
        .merge(v1::csrf::routes())
        .merge(api::openapi::routes())
        .merge(meta::routes())
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

    /// Every `(method, path)` we serve, in registration order. A route added, removed or moved
    /// between features changes this list on purpose, never by accident.
    #[test]
    fn the_route_table_is_pinned() {
        let want: &[(&str, &str)] = &[
            ("GET", "/auth/login"),
            ("POST", "/auth/login"),
            ("GET", "/auth/signup"),
            ("POST", "/auth/signup"),
            ("POST", "/auth/oauth/google/callback"),
            ("GET", "/auth/oauth/{provider}/start"),
            ("GET", "/auth/oauth/{provider}/callback"),
            ("POST", "/auth/providers/{provider}/link/start"),
            ("POST", "/auth/providers/{provider}/unlink"),
            ("GET", "/auth/provider-links/confirm"),
            ("POST", "/auth/provider-links/confirm"),
            ("POST", "/auth/provider-links/confirm/{provider}"),
            ("GET", "/auth/account"),
            ("GET", "/auth/successful-deletion"),
            ("POST", "/auth/user/username"),
            ("POST", "/auth/user/delete"),
            ("GET", "/auth/providers/password/change"),
            ("POST", "/auth/providers/password/change"),
            ("GET", "/auth/providers/password/add"),
            ("POST", "/auth/providers/password/link"),
            ("GET", "/auth/password-reset"),
            ("POST", "/auth/password-reset"),
            ("GET", "/auth/verify-challenge/{action}"),
            ("POST", "/auth/verify-challenge/{action}"),
            ("POST", "/auth/resend-challenge"),
            ("POST", "/auth/email-change"),
            ("POST", "/auth/sessions/logout"),
            ("POST", "/auth/sessions/refresh"),
            ("POST", "/auth/sessions/revoke-other"),
            ("POST", "/auth/sessions/{id}/revoke"),
            ("POST", "/auth/organizations/switch"),
            ("GET", "/auth/invitations/accept"),
            ("POST", "/auth/invitations/accept"),
            ("GET", "/auth/invitations/signup"),
            ("POST", "/auth/invitations/signup"),
            ("GET", "/auth/invitations/login"),
            ("POST", "/auth/invitations/login"),
            ("POST", "/auth/admin/users/{id}/disable"),
            ("POST", "/auth/admin/users/{id}/enable"),
            ("GET", "/auth/api/v1/user"),
            ("PUT", "/auth/api/v1/users/password"),
            ("POST", "/auth/api/v1/sessions/refresh"),
            ("POST", "/auth/api/v1/sessions/logout"),
            ("POST", "/auth/api/v1/login"),
            ("GET", "/auth/api/v1/oauth/google/options"),
            ("POST", "/auth/api/v1/oauth/google"),
            ("POST", "/auth/api/v1/signup/direct"),
            ("POST", "/auth/api/v1/signup/challenges"),
            ("POST", "/auth/api/v1/signup/challenges/verify"),
            ("POST", "/auth/api/v1/password-reset/challenges"),
            ("POST", "/auth/api/v1/password-reset/challenges/verify"),
            ("POST", "/auth/api/v1/challenges/resend"),
            ("POST", "/auth/api/v1/tokens/refresh"),
            ("GET", "/auth/api/v1/sessions"),
            ("POST", "/auth/api/v1/sessions/revoke-other"),
            ("DELETE", "/auth/api/v1/sessions/{id}"),
            ("GET", "/auth/api/v1/capabilities"),
            ("GET", "/auth/api/v1/organizations"),
            ("GET", "/auth/api/v1/organizations/current"),
            ("GET", "/auth/api/v1/organizations/current/members"),
            ("POST", "/auth/api/v1/organizations/{organizationID}/switch"),
            ("GET", "/auth/api/v1/organizations/{organizationID}"),
            ("PATCH", "/auth/api/v1/organizations/{organizationID}"),
            ("GET", "/auth/api/v1/organizations/{organizationID}/members"),
            (
                "GET",
                "/auth/api/v1/organizations/{organizationID}/members/{userID}",
            ),
            ("GET", "/auth/api/v1/users/{userID}/memberships"),
            (
                "GET",
                "/auth/api/v1/organizations/{organizationID}/invitations",
            ),
            (
                "GET",
                "/auth/api/v1/organizations/{organizationID}/invitations/{invitationID}",
            ),
            (
                "POST",
                "/auth/api/v1/organizations/{organizationID}/invitations/{invitationID}/revoke",
            ),
            ("GET", "/auth/api/v1/invitations/preview"),
            ("POST", "/auth/api/v1/invitations/accept"),
            ("POST", "/auth/api/v1/invitations/login"),
            ("POST", "/auth/internal/v1/organizations"),
            ("DELETE", "/auth/internal/v1/organizations/{organizationID}"),
            (
                "DELETE",
                "/auth/internal/v1/organizations/{organizationID}/members/{userID}",
            ),
            (
                "POST",
                "/auth/internal/v1/organizations/{organizationID}/ownership-transfer",
            ),
            (
                "POST",
                "/auth/internal/v1/organizations/{organizationID}/invitations",
            ),
            (
                "POST",
                "/auth/internal/v1/organizations/{organizationID}/invitations/{invitationID}/resend",
            ),
            ("DELETE", "/auth/internal/v1/users/{userID}"),
            ("GET", "/auth/api/v1/csrf"),
            ("GET", "/auth/api/v1/openapi.json"),
            ("GET", "/auth/health"),
            ("GET", "/auth/version"),
            ("GET", "/auth/static/authara.css"),
        ];
        let got: Vec<(String, &str)> = route_table()
            .into_iter()
            .map(|r| (r.method.to_string(), r.path))
            .collect();
        let want: Vec<(String, &str)> = want.iter().map(|(m, p)| ((*m).to_owned(), *p)).collect();
        assert_eq!(got, want);
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
