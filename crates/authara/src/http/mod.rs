//! The HTTP layer: routes, extractors, templates, cookies and error responses.
//! Handlers call services only; none of them touches SQL.

pub mod api;
pub mod cookies;
pub mod error;
pub mod extract;
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod extract_props;
pub mod form;
pub mod layers;
pub mod meta;
pub mod origin;
pub mod pages;
pub mod respond;
mod router;

pub use router::{is_csrf_exempt, is_state_changing, route_table, router, Route, CSRF_EXEMPT};
