//! The JSON API under `/auth/api`, by version: handlers with typed request and response structs,
//! one module per feature, each with its `routes()`.

pub mod internal;
pub mod json;
pub mod openapi;
pub mod path;
pub mod v1;
