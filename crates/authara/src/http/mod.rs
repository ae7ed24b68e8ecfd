//! The HTTP layer: routes, extractors, templates, cookies and error responses.
//! Handlers call services only; none of them touches SQL.

pub mod api;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod form;
pub mod layers;
pub mod meta;
pub mod origin;
pub mod pages;
pub mod respond;
mod router;

pub use router::{is_csrf_exempt, is_state_changing, route_table, router, Route, CSRF_EXEMPT};
