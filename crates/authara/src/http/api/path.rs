//! Ids in a JSON route's path.

use crate::http::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;

/// A path segment that is no UUID (or does not even decode, like `%FF`).
pub const BAD_ID: ApiError = ApiError::InvalidRequest("The id in the path is not a valid UUID.");

/// The ids of a path (`Path<Uuid>`, `Path<(Uuid, Uuid)>`); any rejection is `400`
/// [`BAD_ID`], never axum's plain-text answer.
pub fn ids<T>(raw: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    raw.map(|Path(ids)| ids).map_err(|_| BAD_ID)
}
