//! Extractors: what a handler learns about a request before it runs.
//!
//! - [`auth`]: who is asking ([`SignedIn`] for pages, refreshing on the fly; [`ApiUser`] for
//!   the JSON API; [`AdminUser`] for administrator actions). The one place that decides
//!   authentication.
//! - [`client`]: the client address and user agent ([`ClientInfo`]).
//! - [`context`]: [`RequestCtx`], the request's origin as the audit log records it.
//! - [`return_to`](mod@return_to): where to send the visitor next.
//! - [`Htmx`]: whether htmx sent the request.

pub mod auth;
pub mod client;
pub mod context;
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod props;
pub mod return_to;

pub use auth::{
    access_user, bearer, presented_access, AdminUser, ApiUser, Bearer, SignInRequired, SignedIn,
};
pub use client::{client_ip, forwarded_entry, request_client_ip, ClientInfo};
pub use context::RequestCtx;
pub use return_to::{body_return_to, return_to, QueryReturnTo};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;

/// Whether the request came from htmx (`HX-Request: true`), which changes how redirects look
/// (SPEC §7). Cheap; most HTML handlers need only this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Htmx(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Htmx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(super::respond::is_htmx(&parts.headers)))
    }
}
