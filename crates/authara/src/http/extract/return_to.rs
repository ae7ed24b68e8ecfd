//! `return_to`: where a page sends the visitor next (SPEC §7, §10). Only a [`ReturnTo`] that
//! parses (a same-site relative path) is ever used; a bad one is silently dropped.

use crate::http::form::{self, ReturnToQuery};
use authara_core::domain::ReturnTo;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;

/// The accepted `return_to` of an HTML route (SPEC §7, §10): the form field when it is valid,
/// else the query parameter of `raw_query`; a bad one is silently dropped, never an error.
/// Pages without a form pass `None` as the field.
pub fn return_to(field: Option<&str>, raw_query: Option<&str>) -> Option<ReturnTo> {
    field.and_then(ReturnTo::parse).or_else(|| {
        // Repeated: dropped, like any other bad value.
        form::query_param(raw_query, "return_to")
            .ok()
            .flatten()
            .as_deref()
            .and_then(ReturnTo::parse)
    })
}

/// [`return_to`] of a form whose only other field is the CSRF token (logout, refresh, admin).
pub fn body_return_to(body: &[u8], raw_query: Option<&str>) -> Option<ReturnTo> {
    let f: ReturnToQuery = form::parse(body);
    return_to(f.return_to.as_deref(), raw_query)
}

/// The `return_to` query parameter of a page without a form (`GET /auth/login`,
/// `GET /auth/signup`): [`return_to`] with no field.
#[derive(Debug, Clone)]
pub struct QueryReturnTo(pub Option<ReturnTo>);

impl<S: Send + Sync> FromRequestParts<S> for QueryReturnTo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(return_to(None, parts.uri.query())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn return_to_takes_a_valid_form_field_else_the_query() {
        let got = |field, query| return_to(field, query).map(|r| r.as_str().to_owned());
        assert_eq!(got(Some("/a"), Some("return_to=/b")).as_deref(), Some("/a"));
        assert_eq!(
            got(Some("//evil"), Some("return_to=/b")).as_deref(),
            Some("/b")
        );
        assert_eq!(
            got(None, Some("return_to=%2Fb%3Fx%3D1")).as_deref(),
            Some("/b?x=1")
        );
        assert_eq!(got(Some("//evil"), Some("return_to=//evil")), None);
        assert_eq!(got(None, Some("return_to")), None);
        assert_eq!(got(None, None), None);
    }

    #[tokio::test]
    async fn the_query_extractor_reads_only_the_query() {
        let (mut parts, ()) = axum::http::Request::get("/auth/login?return_to=%2Fapp%3Fx%3D1")
            .body(())
            .unwrap()
            .into_parts();
        let QueryReturnTo(rt) = QueryReturnTo::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(rt.as_ref().map(ReturnTo::as_str), Some("/app?x=1"));
        let (mut parts, ()) = axum::http::Request::get("/auth/login?return_to=//evil")
            .body(())
            .unwrap()
            .into_parts();
        let QueryReturnTo(rt) = QueryReturnTo::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert!(rt.is_none());
    }
}
