//! The internal (server-to-server) API under `/auth/internal/v1` (upstream's, `UPSTREAM.md`
//! §1.11): an application's backend manages organizations on behalf of its users.
//!
//! Every route takes `Authorization: Bearer <AUTHARA_INTERNAL_API_TOKEN>`, compared in constant
//! time over SHA-256 digests (so not even the length shows; the state keeps only the token's
//! digest, made once at start-up); without the variable every request is `401`. These routes read no cookie, so they are exempt from the CSRF and origin
//! checks (`router::CSRF_EXEMPT`): the bearer token is their only credential.

pub mod v1;

use crate::http::error::ApiError;
use crate::http::extract::auth::{bearer, Bearer};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The SHA-256 of an internal API token, as the state keeps it and presented ones are compared.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A request that presented the internal API token.
#[derive(Debug, Clone, Copy)]
pub struct InternalCaller;

impl FromRequestParts<AppState> for InternalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = &state.internal_api_digest else {
            return Err(ApiError::Unauthorized);
        };
        let Bearer::Token(presented) = bearer(&parts.headers) else {
            return Err(ApiError::Unauthorized);
        };
        if bool::from(token_digest(presented).ct_eq(expected)) {
            Ok(InternalCaller)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}
