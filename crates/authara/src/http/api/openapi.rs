//! The OpenAPI 3.1 document of the JSON API, generated from the handlers' types and their
//! `#[utoipa::path]` attributes, served at `GET /auth/api/v1/openapi.json` (issue 9).
//!
//! Documenting a route takes three steps: derive `ToSchema` on its request and response
//! types, put one `#[utoipa::path(...)]` attribute on its handler (method, path, operationId,
//! security, parameters, body, and the responses particular to it, error ones as
//! `response = openapi::Unauthorized` and so on), and name the handler in [`ApiDoc`]'s
//! `paths(...)`. What holds for every route is added here by [`Conventions`], from the same
//! rules the router applies, so no route can forget it: `403 csrf_invalid` on every
//! state-changing route that is not [`CSRF_EXEMPT`](crate::http::CSRF_EXEMPT), `408`, `413`, `500`
//! and `503` everywhere, closed objects, and the `x-authara-error-codes` extension (status → error
//! codes, as upstream's contract has it). The tests (`openapi/tests.rs`) hold the document to the
//! router (every route under `/auth/api/` documented, nothing documented that is not served, CSRF
//! where it is checked), to the server's own error responses, and to upstream's contract where an
//! operation exists there.

use crate::http::error::{is_api_path, ApiError};
use crate::http::{api::internal, api::v1, is_csrf_exempt, is_state_changing, meta, Routes};
use authara_core::invitation::InvitationError;
use authara_core::jwt::{Audience, ADMIN_ROLE};
use authara_core::org::OrgError;
use axum::body::Bytes;
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::btree_map::Entry;
use std::sync::LazyLock;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{IntoParams, Modify, OpenApi, ToResponse};

/// Where the document is served.
pub const PATH: &str = "/auth/api/v1/openapi.json";

/// The document route.
pub fn routes() -> Routes {
    Routes::new().get(PATH, get_openapi)
}

/// The document, built once per process.
static DOCUMENT: LazyLock<Result<Bytes, String>> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .map(Bytes::from)
        .map_err(|e| e.to_string())
});

/// `GET /auth/api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = "Meta",
    summary = "This OpenAPI document",
    description = "The OpenAPI 3.1 description of the JSON API, generated from the server's code.",
    responses((status = 200, description = "The document.", body = Object)),
)]
pub async fn get_openapi() -> Response {
    match &*DOCUMENT {
        Ok(body) => {
            let mut res = body.clone().into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res
        }
        Err(e) => ApiError::Internal(e.clone().into()).into_response(),
    }
}

/// What the document says about every route at once, and the authentication and error rules
/// shared by all of them (issue 9, SPEC §5, §7, §8).
const DESCRIPTION: &str = "\
Authara's JSON API, mounted under `/auth`. Browsers authenticate with the `authara_access` and \
`authara_refresh` cookies (HttpOnly, SameSite=Lax, Path `/`); every state-changing request \
(`POST`, `PUT`, `PATCH`, `DELETE`) must repeat the `authara_csrf` cookie's value in the \
`X-CSRF-Token` header (get one from `GET /auth/api/v1/csrf`), or it is refused with \
`403 csrf_invalid` and changes nothing.\n\n\
Every error is `{\"error\":{\"code\":\"...\",\"message\":\"...\"}}` with \
`Content-Type: application/json`; each operation lists the codes it can give per status in \
`x-authara-error-codes`. An unknown path under `/auth/api/` answers `404 not_found`, a known path \
with a method it does not serve `405 method_not_allowed` (before any CSRF check). Request bodies \
over 64 KiB get `413 payload_too_large`; a body that does not arrive in time `408 \
request_timeout`; `429 rate_limited` and `503 unavailable` carry `Retry-After` (seconds). \
Cookies an operation sets are named in `x-authara-set-cookies`, cookies it clears (empty, \
`Max-Age=0`) in `x-authara-clear-cookies`.";

/// The document. `paths(...)` names every documented handler.
#[derive(OpenApi)]
#[openapi(
    info(title = "Authara", description = DESCRIPTION, license(name = "MIT")),
    paths(
        v1::csrf::get_csrf,
        v1::user::get_user,
        v1::session::post_refresh,
        v1::session::post_logout,
        v1::tokens::post_tokens_refresh,
        v1::login::post_login,
        v1::oauth::get_google_options,
        v1::oauth::post_google_login,
        v1::signup::post_signup_direct,
        v1::signup::post_signup_challenge,
        v1::signup::post_signup_challenge_verify,
        v1::password_reset::post_password_reset_challenge,
        v1::password_reset::post_password_reset_verify,
        v1::challenges::post_resend_challenge,
        v1::password::put_password,
        v1::sessions::get_sessions,
        v1::sessions::post_revoke_other,
        v1::sessions::delete_session,
        v1::organizations::get_capabilities,
        v1::organizations::get_organizations,
        v1::organizations::get_current,
        v1::organizations::get_current_members,
        v1::organizations::post_switch,
        v1::organizations::get_organization,
        v1::organizations::patch_organization,
        v1::organizations::get_members,
        v1::organizations::get_member,
        v1::organizations::get_memberships,
        v1::invitations::get_invitations,
        v1::invitations::get_invitation,
        v1::invitations::post_revoke,
        v1::invitations::get_preview,
        v1::invitations::post_accept,
        v1::invitations::post_login,
        internal::v1::post_organization,
        internal::v1::delete_organization,
        internal::v1::delete_member,
        internal::v1::post_ownership_transfer,
        internal::v1::post_invitation,
        internal::v1::post_invitation_resend,
        internal::v1::delete_user,
        get_openapi,
        meta::get_health,
        meta::get_version,
    ),
    modifiers(&Conventions),
    tags(
        (name = "Authentication", description = "CSRF tokens, login and signup."),
        (name = "Sessions", description = "Refresh (cookies or JSON), logout, the caller's sessions."),
        (name = "Users", description = "The signed-in user and their password."),
        (name = "Organizations", description = "The organization mode, the caller's organizations and their members."),
        (name = "Internal", description = "Server-to-server routes under `/auth/internal/v1`, with `AUTHARA_INTERNAL_API_TOKEN`."),
        (name = "Meta", description = "Health, version and this document."),
    ),
)]
pub struct ApiDoc;

/// The error responses, one per error code (or pair of codes sharing a status): status, name in
/// `components.responses`, the codes its body may carry, and whether it has `Retry-After`.
struct ErrorKind {
    name: &'static str,
    error: fn() -> ApiError,
    /// Other codes of the same status this response may carry.
    or: &'static [fn() -> ApiError],
    retry_after: bool,
}

const ERRORS: &[ErrorKind] = &[
    ErrorKind::new("InvalidRequest", || {
        ApiError::InvalidRequest("The request is malformed.")
    }),
    ErrorKind::new("Unauthorized", || ApiError::Unauthorized),
    ErrorKind::new("CsrfInvalid", || ApiError::CsrfInvalid),
    ErrorKind::new("Forbidden", || ApiError::Forbidden),
    ErrorKind {
        or: &[|| ApiError::Forbidden],
        ..ErrorKind::new("CsrfInvalidOrForbidden", || ApiError::CsrfInvalid)
    },
    ErrorKind::new("NotFound", || ApiError::NotFound),
    ErrorKind::new("AccountLinkRequired", || v1::oauth::ACCOUNT_LINK_REQUIRED),
    ErrorKind {
        or: &[|| v1::organizations::ORGANIZATION_NOT_FOUND],
        ..ErrorKind::new("NotFoundOrOrganizationNotFound", || ApiError::NotFound)
    },
    ErrorKind {
        or: &[|| v1::organizations::MEMBERSHIP_NOT_FOUND],
        ..ErrorKind::new("NotFoundOrMembershipNotFound", || ApiError::NotFound)
    },
    ErrorKind::new("OrganizationNotFound", || {
        v1::organizations::ORGANIZATION_NOT_FOUND
    }),
    ErrorKind {
        or: &[|| v1::organizations::MEMBERSHIP_NOT_FOUND],
        ..ErrorKind::new("OrganizationOrMembershipNotFound", || {
            v1::organizations::ORGANIZATION_NOT_FOUND
        })
    },
    ErrorKind::new("UserNotFound", || OrgError::UserNotFound.into()),
    ErrorKind {
        or: &[|| OrgError::ActorNotAllowed.into()],
        ..ErrorKind::new("ActorRefused", || OrgError::ActorNotMember.into())
    },
    ErrorKind::new("PersonalImmutable", || OrgError::PersonalImmutable.into()),
    ErrorKind {
        or: &[
            || OrgError::HasOtherMembers.into(),
            || OrgError::LastMembership.into(),
        ],
        ..ErrorKind::new("OrganizationConflict", || {
            OrgError::PersonalImmutable.into()
        })
    },
    ErrorKind {
        or: &[
            || OrgError::LastOwner.into(),
            || OrgError::LastMembership.into(),
        ],
        ..ErrorKind::new("MembershipConflict", || OrgError::PersonalImmutable.into())
    },
    ErrorKind {
        or: &[|| OrgError::LastOwner.into()],
        ..ErrorKind::new("UserDeletionConflict", || OrgError::LastActiveAdmin.into())
    },
    ErrorKind {
        or: &[|| v1::invitations::INVITATION_NOT_FOUND],
        ..ErrorKind::new("NotFoundOrInvitationNotFound", || ApiError::NotFound)
    },
    ErrorKind::new("InvitationNotFound", || {
        v1::invitations::INVITATION_NOT_FOUND
    }),
    ErrorKind {
        or: &[|| v1::invitations::INVITATION_NOT_FOUND],
        ..ErrorKind::new("OrganizationOrInvitationNotFound", || {
            v1::organizations::ORGANIZATION_NOT_FOUND
        })
    },
    ErrorKind {
        or: &[
            || ApiError::Forbidden,
            || InvitationError::EmailMismatch.into(),
        ],
        ..ErrorKind::new("InvitationForbidden", || ApiError::CsrfInvalid)
    },
    ErrorKind {
        or: &[
            || InvitationError::Revoked.into(),
            || InvitationError::Expired.into(),
        ],
        ..ErrorKind::new("InvitationNotPending", || {
            InvitationError::AlreadyAccepted.into()
        })
    },
    ErrorKind {
        or: &[
            || InvitationError::Revoked.into(),
            || InvitationError::Expired.into(),
            || InvitationError::MembershipConflict.into(),
        ],
        ..ErrorKind::new("InvitationConflict", || {
            InvitationError::AlreadyAccepted.into()
        })
    },
    ErrorKind {
        or: &[|| InvitationError::AlreadyPending.into()],
        ..ErrorKind::new("InvitationCreateConflict", || {
            InvitationError::AlreadyMember.into()
        })
    },
    ErrorKind {
        or: &[
            || InvitationError::AlreadyPending.into(),
            || InvitationError::AlreadyAccepted.into(),
            || InvitationError::Revoked.into(),
        ],
        ..ErrorKind::new("InvitationResendConflict", || {
            InvitationError::AlreadyMember.into()
        })
    },
    ErrorKind::new("MethodNotAllowed", || ApiError::MethodNotAllowed),
    ErrorKind::new("RequestTimeout", || ApiError::RequestTimeout),
    ErrorKind::new("PayloadTooLarge", || ApiError::PayloadTooLarge),
    ErrorKind {
        retry_after: true,
        ..ErrorKind::new("RateLimited", || {
            ApiError::RateLimited(std::time::Duration::from_secs(30))
        })
    },
    ErrorKind::new("InternalError", || ApiError::Internal("example".into())),
    ErrorKind {
        retry_after: true,
        ..ErrorKind::new("Unavailable", || ApiError::Unavailable)
    },
];

/// The `$ref` of an entry of `components.responses`.
fn response_ref(name: &str) -> String {
    format!("#/components/responses/{name}")
}

impl ErrorKind {
    const fn new(name: &'static str, error: fn() -> ApiError) -> Self {
        Self {
            name,
            error,
            or: &[],
            retry_after: false,
        }
    }

    fn by_name(name: &str) -> Option<&'static ErrorKind> {
        ERRORS.iter().find(|k| k.name == name)
    }

    fn status(&self) -> u16 {
        (self.error)().parts().0.as_u16()
    }

    fn codes(&self) -> Vec<&'static str> {
        let mut codes = vec![(self.error)().parts().1];
        codes.extend(self.or.iter().map(|e| e().parts().1));
        codes
    }

    fn response(&self) -> ApiResponse {
        let error = (self.error)();
        let (status, code, message) = error.parts();
        let codes = self.codes();
        let code_schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes.clone()));
        let narrowed = ObjectBuilder::new()
            .property("error", ObjectBuilder::new().property("code", code_schema));
        let schema = AllOfBuilder::new()
            .item(Ref::from_schema_name("ErrorResponse"))
            .item(narrowed);
        let content = ContentBuilder::new()
            .schema(Some(schema))
            .example(Some(json!({"error": {"code": code, "message": message}})))
            .build();
        let what = match codes.as_slice() {
            [one] => format!("`{one}`"),
            many => many
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(" or "),
        };
        let mut description = format!("{} {}: {what}.", status.as_u16(), reason(status));
        if self.retry_after {
            description.push_str(" `Retry-After` says in how many seconds to try again.");
        }
        let mut b = ResponseBuilder::new()
            .description(description)
            .content("application/json", content);
        if self.retry_after {
            b = b.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Whole seconds, at least 1."))
                    .build(),
            );
        }
        b.build()
    }
}

fn reason(status: axum::http::StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// Reusable error responses for `#[utoipa::path(responses(...))]`, each a `$ref` into
/// `components.responses` (filled by [`Conventions`] from `ERRORS`).
macro_rules! error_responses {
    ($($ty:ident),* $(,)?) => {$(
        #[doc = concat!("The `", stringify!($ty), "` error response, for `responses(...)`.")]
        pub struct $ty;

        impl<'s> ToResponse<'s> for $ty {
            fn response() -> (&'s str, RefOr<ApiResponse>) {
                let name = stringify!($ty);
                (name, RefOr::Ref(Ref::new(response_ref(name))))
            }
        }
    )*};
}

error_responses!(
    InvalidRequest,
    Unauthorized,
    CsrfInvalid,
    Forbidden,
    CsrfInvalidOrForbidden,
    NotFound,
    AccountLinkRequired,
    NotFoundOrOrganizationNotFound,
    NotFoundOrMembershipNotFound,
    OrganizationNotFound,
    OrganizationOrMembershipNotFound,
    UserNotFound,
    ActorRefused,
    PersonalImmutable,
    OrganizationConflict,
    MembershipConflict,
    UserDeletionConflict,
    NotFoundOrInvitationNotFound,
    InvitationNotFound,
    OrganizationOrInvitationNotFound,
    InvitationForbidden,
    InvitationNotPending,
    InvitationConflict,
    InvitationCreateConflict,
    InvitationResendConflict,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    RateLimited,
    InternalError,
    Unavailable,
);

/// The `audience` query parameter of the refresh and login routes: `app` (when absent) or
/// `admin`; anything else, empty or repeated is `400 invalid_request`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AudienceQuery {
    /// The audience of the access token to issue; `admin` only for administrators.
    #[param(schema_with = audience_schema, required = false)]
    pub audience: Option<String>,
}

/// The `audience` query parameter of the signup routes, where only `app` is accepted.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppAudienceQuery {
    /// The audience of the access token to issue; only `app`.
    #[param(schema_with = app_audience_schema, required = false)]
    pub audience: Option<String>,
}

fn audience_enum(values: &[Audience]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().map(|a| a.as_str())))
        .default(Some(json!(Audience::App.as_str())))
}

/// `app` or `admin`, default `app`.
pub fn audience_schema() -> Schema {
    audience_enum(&[Audience::App, Audience::Admin]).into()
}

/// `app` only, default `app`.
pub fn app_audience_schema() -> Schema {
    audience_enum(&[Audience::App]).into()
}

/// The platform roles a user can hold (`roles` of `GET /auth/api/v1/user`).
pub fn roles_schema() -> Schema {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([ADMIN_ROLE])),
        )
        .into()
}

/// The `GET /auth/health` body.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // described here, built with `json!` in `meta.rs`
pub struct HealthBody {
    /// `ok` with `200`, `unavailable` with `503`.
    #[schema(schema_with = health_status_schema)]
    status: String,
}

fn health_status_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["ok", "unavailable"]))
        .into()
}

/// The `GET /auth/version` body.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // described here, built with `json!` in `meta.rs`
pub struct VersionBody {
    /// The server's crate version.
    version: String,
}

/// Security scheme names, as upstream's contract spells them (plus the bearer one).
pub mod scheme {
    /// The `authara_access` cookie.
    pub const ACCESS_COOKIE: &str = "accessCookie";
    /// The `authara_refresh` cookie.
    pub const REFRESH_COOKIE: &str = "refreshCookie";
    /// The `authara_csrf` cookie (half of the double submit).
    pub const CSRF_COOKIE: &str = "csrfCookie";
    /// The `X-CSRF-Token` header (the other half).
    pub const CSRF_HEADER: &str = "csrfHeader";
    /// `Authorization: Bearer <access token>`.
    pub const ACCESS_BEARER: &str = "accessBearer";
    /// `Authorization: Bearer <AUTHARA_INTERNAL_API_TOKEN>`.
    pub const INTERNAL_BEARER: &str = "internalBearer";
    /// The `authara_oauth_nonce` cookie of a Google sign-in.
    pub const OAUTH_NONCE_COOKIE: &str = "oauthNonceCookie";
}

/// The rules every operation shares, applied to the generated document: security schemes,
/// the error responses, CSRF's 403 on state-changing routes, the always-possible errors,
/// `x-authara-error-codes`, and closed objects.
pub struct Conventions;

/// The reusable HTML error page response: what the layers answer outside `/auth/api/`.
const ERROR_PAGE: &str = "ErrorPage";

/// The statuses the layers answer with [`ERROR_PAGE`] outside `/auth/api/`: a body too large or
/// too slow, a request that outlived its time limit.
const PAGE_ERRORS: &[u16] = &[408, 413, 503];

fn page_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// Responses any API request can get, whatever the route: a body too large or too slow, a panic,
/// a request that outlived its time limit or a database that is down.
const ALWAYS: &[&str] = &[
    "RequestTimeout",
    "PayloadTooLarge",
    "InternalError",
    "Unavailable",
];

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_schemes_from_iter([
            (
                scheme::ACCESS_COOKIE,
                api_key_cookie(crate::http::cookies::ACCESS, "The access token (a JWT)."),
            ),
            (
                scheme::REFRESH_COOKIE,
                api_key_cookie(crate::http::cookies::REFRESH, "The refresh token."),
            ),
            (
                scheme::CSRF_COOKIE,
                api_key_cookie(crate::http::cookies::CSRF, "The CSRF token."),
            ),
            (
                scheme::OAUTH_NONCE_COOKIE,
                api_key_cookie(
                    crate::http::cookies::OAUTH_NONCE,
                    "The nonce of a Google sign-in in progress.",
                ),
            ),
            (
                scheme::CSRF_HEADER,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    "X-CSRF-Token",
                    "The value of the `authara_csrf` cookie, repeated.",
                ))),
            ),
            (scheme::ACCESS_BEARER, {
                let mut http = Http::new(HttpAuthScheme::Bearer);
                http.bearer_format = Some("JWT".to_owned());
                http.description = Some("The access token, for clients without cookies.".into());
                SecurityScheme::Http(http)
            }),
            (scheme::INTERNAL_BEARER, {
                let mut http = Http::new(HttpAuthScheme::Bearer);
                http.description = Some(
                    "`AUTHARA_INTERNAL_API_TOKEN`, for the application's backend only.".into(),
                );
                SecurityScheme::Http(http)
            }),
        ]);
        components.schemas.insert(
            "ErrorResponse".to_owned(),
            RefOr::T(error_envelope_schema()),
        );
        components.responses.insert(
            ERROR_PAGE.to_owned(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("An HTML error page: outside `/auth/api/` errors are pages.")
                    .content("text/html", page_content())
                    .build(),
            ),
        );
        for kind in ERRORS {
            components
                .responses
                .insert(kind.name.to_owned(), RefOr::T(kind.response()));
        }
        for schema in components.schemas.values_mut() {
            close(schema);
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in [
                (Method::GET, &mut item.get),
                (Method::PUT, &mut item.put),
                (Method::POST, &mut item.post),
                (Method::DELETE, &mut item.delete),
                (Method::PATCH, &mut item.patch),
            ] {
                if let Some(op) = op {
                    add_shared_responses(&method, path, op);
                }
            }
        }
    }
}

fn api_key_cookie(name: &str, description: &str) -> SecurityScheme {
    SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
        name,
        description,
    )))
}

/// SPEC §8: `{"error":{"code","message"}}`, nothing else.
fn error_envelope_schema() -> Schema {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .property(
            "error",
            ObjectBuilder::new()
                .property("code", text().description(Some("Machine-readable code.")))
                .property(
                    "message",
                    text().description(Some("For people; never names a cause.")),
                )
                .required("code")
                .required("message")
                .additional_properties(Some(AdditionalProperties::FreeForm(false))),
        )
        .required("error")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some("Every JSON error (SPEC §8)."))
        .into()
}

/// Objects we publish name every field we send or accept (`additionalProperties: false`), as
/// upstream's contract does: a field the server sends that the document lacks is a finding.
fn close(schema: &mut RefOr<Schema>) {
    if let RefOr::T(Schema::Object(o)) = schema {
        if o.additional_properties.is_none() && !o.properties.is_empty() {
            o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
        for p in o.properties.values_mut() {
            close(p);
        }
    }
}

fn add_shared_responses(method: &Method, path: &str, op: &mut Operation) {
    let responses = &mut op.responses.responses;
    let shared = |name: &'static str| {
        ErrorKind::by_name(name).map(|k| (k.status().to_string(), response_ref(name)))
    };
    if is_state_changing(method) && !is_csrf_exempt(method, path) {
        let forbidden = match responses.get("403") {
            None => Some("CsrfInvalid"),
            Some(r) if ref_name(r) == Some("Forbidden") => Some("CsrfInvalidOrForbidden"),
            Some(_) => None,
        };
        if let Some((status, r)) = forbidden.and_then(shared) {
            responses.insert(status, RefOr::Ref(Ref::new(r)));
        }
    }
    if is_api_path(path) {
        for (status, r) in ALWAYS.iter().filter_map(|n| shared(n)) {
            responses
                .entry(status)
                .or_insert_with(|| RefOr::Ref(Ref::new(r)));
        }
    } else {
        // Outside the API, the layers answer with HTML pages; a panic is still the JSON 500.
        for status in PAGE_ERRORS {
            match responses.entry(status.to_string()) {
                Entry::Vacant(e) => {
                    e.insert(RefOr::Ref(Ref::new(response_ref(ERROR_PAGE))));
                }
                Entry::Occupied(mut e) => {
                    if let RefOr::T(r) = e.get_mut() {
                        r.content.insert("text/html".to_owned(), page_content());
                    }
                }
            }
        }
        if let Some((status, r)) = shared("InternalError") {
            responses
                .entry(status)
                .or_insert_with(|| RefOr::Ref(Ref::new(r)));
        }
    }
    let codes: serde_json::Map<String, serde_json::Value> = responses
        .iter()
        .filter_map(|(status, r)| {
            let kind = ErrorKind::by_name(ref_name(r)?)?;
            Some((status.clone(), json!(kind.codes())))
        })
        .collect();
    op.extensions
        .get_or_insert_with(Extensions::default)
        .insert("x-authara-error-codes".to_owned(), codes.into());
}

/// The name of a `components.responses` entry a response refers to.
fn ref_name(r: &RefOr<ApiResponse>) -> Option<&str> {
    match r {
        RefOr::Ref(r) => r.ref_location.strip_prefix("#/components/responses/"),
        RefOr::T(_) => None,
    }
}

#[cfg(test)]
mod tests;
