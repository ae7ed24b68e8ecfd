//! The HTTP layer: routes, extractors, templates, cookies and error responses.
//! Handlers call services only; none of them touches SQL.

pub mod api;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod form;
pub mod layers;
pub mod meta;
pub mod pages;
pub mod respond;
mod router;

pub use router::router;
