//! The internal (server-to-server) API under `/auth/internal/v1` (upstream's, `UPSTREAM.md`
//! §1.11): an application's backend manages organizations on behalf of its users.
//!
//! Every route takes `Authorization: Bearer <AUTHARA_INTERNAL_API_TOKEN>`, compared in constant
//! time (over SHA-256 digests, so not even the length shows); without the variable every
//! request is `401`. These routes read no cookie, so they are exempt from the CSRF and origin
//! checks (`router::CSRF_EXEMPT`): the bearer token is their only credential.

pub mod v1;

use crate::http::error::ApiError;
use crate::http::extract::auth::{bearer, Bearer};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A request that presented the internal API token.
#[derive(Debug, Clone, Copy)]
pub struct InternalCaller;

impl FromRequestParts<AppState> for InternalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = &state.internal_api_token else {
            return Err(ApiError::Unauthorized);
        };
        let Bearer::Token(presented) = bearer(&parts.headers) else {
            return Err(ApiError::Unauthorized);
        };
        let a = Sha256::digest(presented.as_bytes());
        let b = Sha256::digest(expected.expose().as_bytes());
        if bool::from(a.ct_eq(&b)) {
            Ok(InternalCaller)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}
