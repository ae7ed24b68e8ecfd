//! Invitations as JSON (upstream's routes and codes): an organization's invitations for its
//! owners and admins (behind `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED`), the preview of
//! an invitation by its token, and accepting one as the signed-in user.

use super::organizations::{Organization, ORGANIZATION_NOT_FOUND};
use super::session::audience_param;
use super::tokens::{new_tokens, signed_in, AuthSession, Tokens};
use super::user::rfc3339_seconds;
use crate::http::api::{json, openapi, path};
use crate::http::error::ApiError;
use crate::http::extract::{ApiUser, ClientInfo};
use crate::http::pages::invitations::{invitation_login, InvitationLoginRefusal};
use crate::http::pages::set_session_cookies;
use crate::http::{form, Routes};
use crate::state::AppState;
use authara_core::auth::{InvitedError, LoginError, SignupError};
use authara_core::invitation::InvitationError;
use authara_core::jwt::Audience;
use authara_core::session::SwitchError;
use authara_core::store::InvitationRecord;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The invitation routes.
pub fn routes() -> Routes {
    Routes::new()
        .get(
            "/auth/api/v1/organizations/{organizationID}/invitations",
            get_invitations,
        )
        .get(
            "/auth/api/v1/organizations/{organizationID}/invitations/{invitationID}",
            get_invitation,
        )
        .post(
            "/auth/api/v1/organizations/{organizationID}/invitations/{invitationID}/revoke",
            post_revoke,
        )
        .get("/auth/api/v1/invitations/preview", get_preview)
        .post("/auth/api/v1/invitations/accept", post_accept)
        .post("/auth/api/v1/invitations/login", post_login)
}

/// `404 invitation_not_found`.
pub const INVITATION_NOT_FOUND: ApiError = refused(
    StatusCode::NOT_FOUND,
    "invitation_not_found",
    "Invitation not found.",
);

const fn refused(status: StatusCode, code: &'static str, message: &'static str) -> ApiError {
    ApiError::Refused {
        status,
        code,
        message,
    }
}

/// Every refusal of the invitation service in upstream's codes.
impl From<InvitationError> for ApiError {
    fn from(e: InvitationError) -> Self {
        use InvitationError as E;
        match e {
            E::InvalidRequest(why) => ApiError::InvalidRequest(why),
            E::Forbidden => ApiError::Forbidden,
            E::RequiresNewAccount => refused(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This invitation requires creating a new account.",
            ),
            E::ActorNotMember => refused(
                StatusCode::FORBIDDEN,
                "actor_not_member",
                "The actor is not a member of the organization.",
            ),
            E::ActorNotAllowed => refused(
                StatusCode::FORBIDDEN,
                "actor_not_allowed",
                "The actor's role does not allow this.",
            ),
            E::EmailMismatch => refused(
                StatusCode::FORBIDDEN,
                "invitation_email_mismatch",
                "This invitation is for another email address.",
            ),
            E::OrganizationNotFound => ORGANIZATION_NOT_FOUND,
            E::InvitationNotFound => INVITATION_NOT_FOUND,
            E::AlreadyMember => refused(
                StatusCode::CONFLICT,
                "already_member",
                "A user with this email is already a member.",
            ),
            E::AlreadyPending => refused(
                StatusCode::CONFLICT,
                "invitation_already_pending",
                "An invitation for this email is already pending.",
            ),
            E::AlreadyAccepted => refused(
                StatusCode::CONFLICT,
                "invitation_already_accepted",
                "The invitation was already accepted.",
            ),
            E::Revoked => refused(
                StatusCode::CONFLICT,
                "invitation_revoked",
                "The invitation was revoked.",
            ),
            E::Expired => refused(
                StatusCode::CONFLICT,
                "invitation_expired",
                "The invitation has expired.",
            ),
            E::MembershipConflict => refused(
                StatusCode::CONFLICT,
                "organization_membership_conflict",
                "You are already a member of this organization.",
            ),
            E::Store(s) => s.into(),
        }
    }
}

/// The refusals of an invitation login, in upstream's codes.
impl From<InvitedError> for ApiError {
    fn from(e: InvitedError) -> Self {
        match e {
            InvitedError::Invitation(e) => e.into(),
            InvitedError::Login(LoginError::Empty) => {
                ApiError::InvalidRequest("token and password are required.")
            }
            InvitedError::Login(LoginError::Invalid) => ApiError::InvalidCredentials,
            InvitedError::Login(LoginError::Disabled) => ApiError::AudienceRefused,
            InvitedError::Login(LoginError::Busy) | InvitedError::Signup(SignupError::Busy) => {
                ApiError::Busy
            }
            InvitedError::Login(LoginError::Failed(e))
            | InvitedError::Signup(SignupError::Failed(e)) => ApiError::internal(e),
            InvitedError::Signup(e) => ApiError::internal(e),
        }
    }
}

/// Upstream's `OrganizationInvitation`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationInvitation {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[schema(format = Email)]
    pub email: String,
    /// `admin` or `member`.
    #[schema(schema_with = invitation_role_schema)]
    pub role: &'static str,
    /// The application's opaque metadata, as given.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    #[schema(schema_with = status_schema)]
    pub status: &'static str,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Only when the invitation is created (or resent): the link with its token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uri")]
    pub invite_url: Option<String>,
}

impl OrganizationInvitation {
    pub fn new(
        i: &InvitationRecord,
        now: OffsetDateTime,
        invite_url: Option<String>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            id: i.id,
            organization_id: i.organization_id,
            email: i.email.clone(),
            role: i.role.as_str(),
            metadata: i.metadata.clone(),
            status: i.status(now).as_str(),
            expires_at: rfc3339_seconds(i.expires_at)?,
            invite_url,
        })
    }
}

/// Upstream's `OrganizationInvitationEnvelope`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationInvitationEnvelope {
    pub invitation: OrganizationInvitation,
}

/// Upstream's `OrganizationInvitations`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationInvitations {
    /// Newest first, every status.
    pub invitations: Vec<OrganizationInvitation>,
}

/// Upstream's `InvitationPreview`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationPreview {
    pub invitation: OrganizationInvitation,
    pub organization: Organization,
}

/// Upstream's `InvitationPasswordLoginRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationPasswordLoginRequest {
    /// The token of the invitation link.
    #[schema(max_length = 128)]
    pub token: String,
    #[schema(format = Password, min_length = 1)]
    pub password: String,
}

/// Upstream's `InvitationTokenRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationTokenRequest {
    /// The token of the invitation link.
    #[schema(max_length = 128)]
    pub token: String,
}

fn enum_schema(values: &[&'static str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

fn invitation_role_schema() -> utoipa::openapi::Object {
    enum_schema(&["admin", "member"])
}

fn status_schema() -> utoipa::openapi::Object {
    enum_schema(&["pending", "accepted", "revoked", "expired"])
}

/// The management routes answer `404` while management is off, before anything else.
fn management_on(state: &AppState) -> Result<(), ApiError> {
    if state.orgs.public_management() {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

fn envelope(
    state: &AppState,
    invitation: &InvitationRecord,
    invite_url: Option<String>,
) -> Result<OrganizationInvitationEnvelope, ApiError> {
    Ok(OrganizationInvitationEnvelope {
        invitation: OrganizationInvitation::new(invitation, state.invitations.now(), invite_url)?,
    })
}

/// `GET /auth/api/v1/organizations/{organizationID}/invitations`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/organizations/{organizationID}/invitations",
    operation_id = "listPublicOrganizationInvitations",
    tag = "Organizations",
    summary = "List an organization's invitations",
    description = "Every invitation of the organization of the caller's access token, newest \
        first, for its owners and admins (else `403`). `404` unless \
        `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`.",
    params(("organizationID" = Uuid, Path, description = "The organization.")),
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The invitations.", body = OrganizationInvitations),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 404, response = openapi::NotFound),
    ),
    extensions(("x-authara-availability" = json!("public-organization-management-enabled"))),
)]
pub async fn get_invitations(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    management_on(&state)?;
    let organization_id = path::ids(id)?;
    let now = state.invitations.now();
    let invitations = state
        .invitations
        .list(auth.user.id, auth.claims.org_id, organization_id)
        .await?
        .iter()
        .map(|i| OrganizationInvitation::new(i, now, None))
        .collect::<Result<_, _>>()?;
    Ok(Json(OrganizationInvitations { invitations }).into_response())
}

/// `GET /auth/api/v1/organizations/{organizationID}/invitations/{invitationID}`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/organizations/{organizationID}/invitations/{invitationID}",
    operation_id = "getPublicOrganizationInvitation",
    tag = "Organizations",
    summary = "Get an organization invitation",
    description = "One invitation of the organization of the caller's access token, for its \
        owners and admins; `404 invitation_not_found` for another organization's. `404 \
        not_found` unless `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`.",
    params(
        ("organizationID" = Uuid, Path, description = "The organization."),
        ("invitationID" = Uuid, Path, description = "The invitation."),
    ),
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The invitation.", body = OrganizationInvitationEnvelope),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 404, response = openapi::NotFoundOrInvitationNotFound),
    ),
    extensions(("x-authara-availability" = json!("public-organization-management-enabled"))),
)]
pub async fn get_invitation(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    ids: Result<Path<(Uuid, Uuid)>, PathRejection>,
) -> Result<Response, ApiError> {
    management_on(&state)?;
    let (organization_id, invitation_id) = path::ids(ids)?;
    let invitation = state
        .invitations
        .get(
            auth.user.id,
            auth.claims.org_id,
            organization_id,
            invitation_id,
        )
        .await?;
    Ok(Json(envelope(&state, &invitation, None)?).into_response())
}

/// `POST /auth/api/v1/organizations/{organizationID}/invitations/{invitationID}/revoke`.
#[utoipa::path(
    post,
    path = "/auth/api/v1/organizations/{organizationID}/invitations/{invitationID}/revoke",
    operation_id = "revokePublicOrganizationInvitation",
    tag = "Organizations",
    summary = "Revoke an organization invitation",
    description = "An owner or admin of the organization of their access token revokes a \
        pending invitation (`409` once accepted, revoked or expired); its link stops working. \
        Emits `organization.invitation.revoked`. `404 not_found` unless \
        `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`.",
    params(
        ("organizationID" = Uuid, Path, description = "The organization."),
        ("invitationID" = Uuid, Path, description = "The invitation."),
    ),
    security(
        ("accessCookie" = [], "csrfCookie" = [], "csrfHeader" = []),
        ("accessBearer" = []),
    ),
    responses(
        (status = 200, description = "The revoked invitation.", body = OrganizationInvitationEnvelope),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::CsrfInvalidOrForbidden),
        (status = 404, response = openapi::NotFoundOrInvitationNotFound),
        (status = 409, response = openapi::InvitationNotPending),
    ),
    extensions(("x-authara-availability" = json!("public-organization-management-enabled"))),
)]
pub async fn post_revoke(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    ids: Result<Path<(Uuid, Uuid)>, PathRejection>,
) -> Result<Response, ApiError> {
    management_on(&state)?;
    let (organization_id, invitation_id) = path::ids(ids)?;
    let invitation = state
        .invitations
        .revoke(
            auth.user.id,
            auth.claims.org_id,
            organization_id,
            invitation_id,
        )
        .await?;
    Ok(Json(envelope(&state, &invitation, None)?).into_response())
}

/// `GET /auth/api/v1/invitations/preview?token=`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/invitations/preview",
    operation_id = "previewInvitation",
    tag = "Organizations",
    summary = "Preview an organization invitation",
    description = "The invitation of a token with its organization, whatever its status (a \
        page words itself by it). `403` in `personal` mode; `404 invitation_not_found` for an \
        unknown token.",
    params(("token" = String, Query, description = "The token of the invitation link.")),
    security(()),
    responses(
        (status = 200, description = "The invitation and its organization.", body = InvitationPreview),
        (status = 400, response = openapi::InvalidRequest),
        (status = 403, response = openapi::Forbidden),
        (status = 404, response = openapi::InvitationNotFound),
    ),
    extensions(("x-authara-availability" = json!("invitations-enabled"))),
)]
pub async fn get_preview(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let token = match form::query_param(query.as_deref(), "token") {
        Ok(Some(token)) => token,
        _ => return Err(ApiError::InvalidRequest("token is required.")),
    };
    let found = state.invitations.preview(&token).await?;
    Ok(Json(InvitationPreview {
        invitation: OrganizationInvitation::new(&found.invitation, state.invitations.now(), None)?,
        organization: Organization::new(&found.organization)?,
    })
    .into_response())
}

/// `POST /auth/api/v1/invitations/accept?audience=app`.
#[utoipa::path(
    post,
    path = "/auth/api/v1/invitations/accept",
    operation_id = "acceptInvitation",
    tag = "Organizations",
    summary = "Accept an invitation and switch the session to its organization",
    description = "In `multi` mode (in `single` an invitation only creates an account: `403`): \
        the signed-in user whose email is the invitation's joins its organization with its \
        role, and the session moves there (every refresh token of the session replaced; both \
        tokens in the body and as cookies). Accepting again is idempotent. Emits \
        `organization.invitation.accepted` and `organization.membership.created`.",
    params(openapi::AppAudienceQuery),
    request_body = InvitationTokenRequest,
    security(
        ("accessCookie" = [], "csrfCookie" = [], "csrfHeader" = []),
        ("accessBearer" = []),
    ),
    responses(
        (status = 200, description = "Tokens for the invitation's organization.", body = Tokens),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::InvitationForbidden),
        (status = 404, response = openapi::InvitationNotFound),
        (status = 409, response = openapi::InvitationConflict),
    ),
    extensions(
        ("x-authara-set-cookies" = json!(["authara_access", "authara_refresh"])),
        ("x-authara-availability" = json!("invitations-enabled")),
    ),
)]
pub async fn post_accept(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if audience_param(query.as_deref())? != Audience::App {
        return Err(ApiError::InvalidRequest("audience must be \"app\"."));
    }
    let req: InvitationTokenRequest = json::parse(&headers, &body)?;
    let accepted = state.invitations.accept(&req.token, auth.user.id).await?;
    let issued = match state
        .sessions
        .switch_organization(&auth, accepted.invitation.organization_id, Audience::App)
        .await
    {
        Ok(issued) => issued,
        // Accepted before and left since: there is no membership to act in.
        Err(SwitchError::NotMember) => return Err(ApiError::Forbidden),
        Err(SwitchError::Issue(e)) => return Err(ApiError::internal(e)),
    };
    let tokens = new_tokens(&issued)?;
    let mut out = HeaderMap::new();
    set_session_cookies(state.cookies, &issued, &mut out);
    Ok((out, Json(tokens)).into_response())
}

/// `POST /auth/api/v1/invitations/login?audience=app`.
#[utoipa::path(
    post,
    path = "/auth/api/v1/invitations/login",
    operation_id = "loginAndAcceptInvitation",
    tag = "Authentication",
    summary = "Log in with a password, accept an invitation, and switch organizations",
    description = "In `multi` mode (else `403`): the invited email's account proves its \
        password (the login's rules and rate limits: `401` for a wrong one), accepts the \
        invitation and gets a session in its organization. Sets both session cookies and \
        answers the tokens too.",
    params(openapi::AppAudienceQuery),
    request_body = InvitationPasswordLoginRequest,
    security(("csrfCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 200, description = "Signed in, in the invitation's organization.", body = AuthSession),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::InvitationForbidden),
        (status = 404, response = openapi::InvitationNotFound),
        (status = 409, response = openapi::InvitationConflict),
        (status = 429, response = openapi::RateLimited),
    ),
    extensions(
        ("x-authara-set-cookies" = json!(["authara_access", "authara_refresh"])),
        ("x-authara-availability" = json!("invitations-enabled")),
    ),
)]
pub async fn post_login(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if audience_param(query.as_deref())? != Audience::App {
        return Err(ApiError::InvalidRequest("audience must be \"app\"."));
    }
    let req: InvitationPasswordLoginRequest = json::parse(&headers, &body)?;
    let found = state.auth.pending_invitation(&req.token).await?;
    match invitation_login(&state, &client, &headers, &found, &req.token, &req.password).await {
        Ok((user, issued)) => signed_in(&state, StatusCode::OK, &user, &issued),
        Err(InvitationLoginRefusal::Limited(l)) => Err(l.into()),
        Err(InvitationLoginRefusal::Invited(e)) => Err(e.into()),
    }
}
