//! The HTTP layer. A request goes through the layers ([`layers`], applied in [`router`]), then
//! the extractors ([`extract`]: who is asking, from where), then a handler in
//! `pages/<feature>.rs` (HTML) or `api/v1/<feature>.rs` (JSON), which calls a core service.
//! Handlers call services only; none of them touches SQL. Cookie attributes are set only in
//! [`cookies`]; errors become responses in [`error`].

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

pub use router::{
    is_csrf_exempt, is_state_changing, route_table, router, Route, Routes, CSRF_EXEMPT,
};
