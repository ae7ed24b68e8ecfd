//! `/auth/internal/v1`: organizations managed by the application's backend on behalf of an
//! actor (upstream's routes and codes). The actor's membership and role are checked here as the
//! public routes check the caller's: a trusted backend still cannot act for a user beyond what
//! that user may do.

use super::InternalCaller;
use crate::http::api::v1::invitations::{OrganizationInvitation, OrganizationInvitationEnvelope};
use crate::http::api::v1::organizations::{Membership, Organization};
use crate::http::api::{json, path};
use crate::http::error::ApiError;
use crate::http::Routes;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /auth/internal/v1/organizations`.
pub const CREATE_PATH: &str = "/auth/internal/v1/organizations";
/// `DELETE /auth/internal/v1/organizations/{organizationID}`.
pub const DELETE_PATH: &str = "/auth/internal/v1/organizations/{organizationID}";
/// `DELETE /auth/internal/v1/organizations/{organizationID}/members/{userID}`.
pub const MEMBER_PATH: &str = "/auth/internal/v1/organizations/{organizationID}/members/{userID}";
/// `POST /auth/internal/v1/organizations/{organizationID}/ownership-transfer`.
pub const TRANSFER_PATH: &str =
    "/auth/internal/v1/organizations/{organizationID}/ownership-transfer";

/// `POST /auth/internal/v1/organizations/{organizationID}/invitations`.
pub const INVITATIONS_PATH: &str = "/auth/internal/v1/organizations/{organizationID}/invitations";
/// `POST /auth/internal/v1/organizations/{organizationID}/invitations/{invitationID}/resend`.
pub const RESEND_PATH: &str =
    "/auth/internal/v1/organizations/{organizationID}/invitations/{invitationID}/resend";

/// `DELETE /auth/internal/v1/users/{userID}`.
pub const USER_PATH: &str = "/auth/internal/v1/users/{userID}";

/// The internal routes, as `(method, pattern)`, for the CSRF exemption.
pub const ROUTES: &[(Method, &str)] = &[
    (Method::POST, CREATE_PATH),
    (Method::DELETE, DELETE_PATH),
    (Method::DELETE, MEMBER_PATH),
    (Method::POST, TRANSFER_PATH),
    (Method::POST, INVITATIONS_PATH),
    (Method::POST, RESEND_PATH),
    (Method::DELETE, USER_PATH),
];

/// The internal routes.
pub fn routes() -> Routes {
    Routes::new()
        .post(CREATE_PATH, post_organization)
        .delete(DELETE_PATH, delete_organization)
        .delete(MEMBER_PATH, delete_member)
        .post(TRANSFER_PATH, post_ownership_transfer)
        .post(INVITATIONS_PATH, post_invitation)
        .post(RESEND_PATH, post_invitation_resend)
        .delete(USER_PATH, delete_user)
}

/// Upstream's `InternalCreateOrganizationRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InternalCreateOrganizationRequest {
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    pub created_by_user_id: Uuid,
}

/// Upstream's `InternalOrganizationActorRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InternalOrganizationActorRequest {
    pub actor_user_id: Uuid,
}

/// Upstream's `InternalOwnershipTransferRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InternalOwnershipTransferRequest {
    pub actor_user_id: Uuid,
    pub new_owner_user_id: Uuid,
}

/// Upstream's `InternalCreateInvitationRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InternalCreateInvitationRequest {
    pub actor_user_id: Uuid,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// `admin` or `member` (the default); `owner` is reserved.
    #[schema(example = "member")]
    pub role: Option<String>,
    /// An opaque JSON object of at most 16 KiB, `{}` by default, echoed in webhooks.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// A body that must be empty if present (`{}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyRequest {}

/// For upstream's routes without a body: none (or whitespace), or an empty JSON object, and
/// nothing else (`400`).
fn no_body(headers: &HeaderMap, body: &Bytes) -> Result<(), ApiError> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        let _: EmptyRequest = json::parse(headers, body)?;
    }
    Ok(())
}

/// Upstream's `OrganizationWithMembership`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationWithMembership {
    pub organization: Organization,
    pub membership: Membership,
}

/// `POST /auth/internal/v1/organizations`: a team organization with `created_by_user_id` as
/// its owner; `multi` mode only. `201`.
#[utoipa::path(
    post,
    path = "/auth/internal/v1/organizations",
    operation_id = "createInternalOrganization",
    tag = "Internal",
    summary = "Create a team organization",
    description = "In `multi` mode only (else `403 forbidden`): a team organization owned by \
        `created_by_user_id` (`404 user_not_found` for an unknown user). Emits \
        `organization.created` and `organization.membership.created`.",
    request_body = InternalCreateOrganizationRequest,
    security(("internalBearer" = [])),
    responses(
        (status = 201, description = "The organization and the owner's membership.", body = OrganizationWithMembership),
        (status = 400, response = crate::http::api::openapi::InvalidRequest),
        (status = 401, response = crate::http::api::openapi::Unauthorized),
        (status = 403, response = crate::http::api::openapi::Forbidden),
        (status = 404, response = crate::http::api::openapi::UserNotFound),
    ),
)]
pub async fn post_organization(
    State(state): State<AppState>,
    _caller: InternalCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: InternalCreateOrganizationRequest = json::parse(&headers, &body)?;
    let created = state
        .orgs
        .create_team(&req.name, req.created_by_user_id)
        .await?;
    let body = OrganizationWithMembership {
        organization: Organization::new(&created.organization)?,
        membership: Membership::new(&created.membership)?,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /auth/internal/v1/organizations/{organizationID}`.
#[utoipa::path(
    delete,
    path = "/auth/internal/v1/organizations/{organizationID}",
    operation_id = "deleteInternalOrganization",
    tag = "Internal",
    summary = "Delete a team organization",
    description = "Its owner (`actor_user_id`) deletes a team organization of which they are the \
        only member, and which is not their only organization. Sessions acting in it stop \
        being live. Emits `organization.membership.deleted` and `organization.deleted`.",
    params(("organizationID" = Uuid, Path, description = "The organization.")),
    request_body = InternalOrganizationActorRequest,
    security(("internalBearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = crate::http::api::openapi::InvalidRequest),
        (status = 401, response = crate::http::api::openapi::Unauthorized),
        (status = 403, response = crate::http::api::openapi::ActorRefused),
        (status = 404, response = crate::http::api::openapi::OrganizationNotFound),
        (status = 409, response = crate::http::api::openapi::OrganizationConflict),
    ),
)]
pub async fn delete_organization(
    State(state): State<AppState>,
    _caller: InternalCaller,
    id: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let organization_id = path::ids(id)?;
    let req: InternalOrganizationActorRequest = json::parse(&headers, &body)?;
    state
        .orgs
        .delete(organization_id, req.actor_user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /auth/internal/v1/organizations/{organizationID}/members/{userID}`.
#[utoipa::path(
    delete,
    path = "/auth/internal/v1/organizations/{organizationID}/members/{userID}",
    operation_id = "removeInternalOrganizationMember",
    tag = "Internal",
    summary = "Remove an organization member",
    description = "An owner removes anyone, an admin removes admins and members; the actor \
        being the member is a voluntary leave. The last owner and a user's last organization \
        cannot go. The member's sessions acting in the organization stop being live at once. \
        Emits `organization.membership.deleted`.",
    params(
        ("organizationID" = Uuid, Path, description = "The organization."),
        ("userID" = Uuid, Path, description = "The member."),
    ),
    request_body = InternalOrganizationActorRequest,
    security(("internalBearer" = [])),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, response = crate::http::api::openapi::InvalidRequest),
        (status = 401, response = crate::http::api::openapi::Unauthorized),
        (status = 403, response = crate::http::api::openapi::ActorRefused),
        (status = 404, response = crate::http::api::openapi::OrganizationOrMembershipNotFound),
        (status = 409, response = crate::http::api::openapi::MembershipConflict),
    ),
)]
pub async fn delete_member(
    State(state): State<AppState>,
    _caller: InternalCaller,
    ids: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (organization_id, user_id) = path::ids(ids)?;
    let req: InternalOrganizationActorRequest = json::parse(&headers, &body)?;
    state
        .orgs
        .remove_member(organization_id, user_id, req.actor_user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /auth/internal/v1/organizations/{organizationID}/ownership-transfer`.
#[utoipa::path(
    post,
    path = "/auth/internal/v1/organizations/{organizationID}/ownership-transfer",
    operation_id = "transferInternalOrganizationOwnership",
    tag = "Internal",
    summary = "Transfer organization ownership",
    description = "The owner (`actor_user_id`) makes a member the owner and becomes an admin, \
        atomically. Emits `organization.membership.updated` for both.",
    params(("organizationID" = Uuid, Path, description = "The organization.")),
    request_body = InternalOwnershipTransferRequest,
    security(("internalBearer" = [])),
    responses(
        (status = 204, description = "Transferred."),
        (status = 400, response = crate::http::api::openapi::InvalidRequest),
        (status = 401, response = crate::http::api::openapi::Unauthorized),
        (status = 403, response = crate::http::api::openapi::ActorRefused),
        (status = 404, response = crate::http::api::openapi::OrganizationOrMembershipNotFound),
        (status = 409, response = crate::http::api::openapi::PersonalImmutable),
    ),
)]
pub async fn post_ownership_transfer(
    State(state): State<AppState>,
    _caller: InternalCaller,
    id: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let organization_id = path::ids(id)?;
    let req: InternalOwnershipTransferRequest = json::parse(&headers, &body)?;
    state
        .orgs
        .transfer_ownership(organization_id, req.actor_user_id, req.new_owner_user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /auth/internal/v1/organizations/{organizationID}/invitations`.
#[utoipa::path(
    post,
    path = "/auth/internal/v1/organizations/{organizationID}/invitations",
    operation_id = "createInternalOrganizationInvitation",
    tag = "Internal",
    summary = "Create an organization invitation",
    description = "An owner or admin (`actor_user_id`) of a team organization invites an email \
        as `admin` or `member`. The invitation email is queued; the link (`invite_url`, with the \
        token) is in this answer only. One pending invitation per email: `409 \
        invitation_already_pending`; an email of a member is `409 already_member`. `403` in \
        `personal` mode. Emits `organization.invitation.created`.",
    params(("organizationID" = Uuid, Path, description = "The organization.")),
    request_body = InternalCreateInvitationRequest,
    security(("internalBearer" = [])),
    responses(
        (status = 201, description = "The invitation, with its link.", body = OrganizationInvitationEnvelope),
        (status = 400, response = crate::http::api::openapi::InvalidRequest),
        (status = 401, response = crate::http::api::openapi::Unauthorized),
        (status = 403, response = crate::http::api::openapi::ActorRefused),
        (status = 404, response = crate::http::api::openapi::OrganizationNotFound),
        (status = 409, response = crate::http::api::openapi::InvitationCreateConflict),
    ),
)]
pub async fn post_invitation(
    State(state): State<AppState>,
    _caller: InternalCaller,
    id: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let organization_id = path::ids(id)?;
    let req: InternalCreateInvitationRequest = json::parse(&headers, &body)?;
    let issued = state
        .invitations
        .create(
            organization_id,
            req.actor_user_id,
            &req.email,
            req.role.as_deref(),
            req.metadata,
        )
        .await?;
    created(&state, issued)
}

/// `POST /auth/internal/v1/organizations/{organizationID}/invitations/{invitationID}/resend`.
#[utoipa::path(
    post,
    path = "/auth/internal/v1/organizations/{organizationID}/invitations/{invitationID}/resend",
    operation_id = "resendInternalOrganizationInvitation",
    tag = "Internal",
    summary = "Replace an organization invitation with a fresh invitation",
    description = "Revokes the invitation (pending or expired) and creates a fresh one with the \
        same email, role and metadata, a new token and a new lifetime; its email is queued. \
        Emits `organization.invitation.revoked` then `organization.invitation.created`.",
    params(
        ("organizationID" = Uuid, Path, description = "The organization."),
        ("invitationID" = Uuid, Path, description = "The invitation."),
    ),
    security(("internalBearer" = [])),
    responses(
        (status = 201, description = "The fresh invitation, with its link.", body = OrganizationInvitationEnvelope),
        (status = 400, response = crate::http::api::openapi::InvalidRequest),
        (status = 401, response = crate::http::api::openapi::Unauthorized),
        (status = 403, response = crate::http::api::openapi::Forbidden),
        (status = 404, response = crate::http::api::openapi::OrganizationOrInvitationNotFound),
        (status = 409, response = crate::http::api::openapi::InvitationResendConflict),
    ),
)]
pub async fn post_invitation_resend(
    State(state): State<AppState>,
    _caller: InternalCaller,
    ids: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (organization_id, invitation_id) = path::ids(ids)?;
    no_body(&headers, &body)?;
    let issued = state
        .invitations
        .resend(organization_id, invitation_id)
        .await?;
    created(&state, issued)
}

/// `201` with the invitation and its link.
fn created(
    state: &AppState,
    issued: authara_core::invitation::service::IssuedInvitation,
) -> Result<Response, ApiError> {
    let invitation = OrganizationInvitation::new(
        &issued.invitation,
        state.invitations.now(),
        Some(issued.invite_url),
    )?;
    Ok((
        StatusCode::CREATED,
        Json(OrganizationInvitationEnvelope { invitation }),
    )
        .into_response())
}

/// `DELETE /auth/internal/v1/users/{userID}`: the application's backend deletes a user once it
/// has settled what it keeps about them (upstream's `deleteInternalUser`). No body.
#[utoipa::path(
    delete,
    path = "/auth/internal/v1/users/{userID}",
    operation_id = "deleteInternalUser",
    tag = "Internal",
    summary = "Delete a user",
    description = "Deletes the user with their sessions (which stop being live at once) and the \
        organizations of which they are the only member. Refused with `409 last_active_admin` \
        for the only enabled admin and `409 last_organization_owner` for the only owner of an \
        organization that has other members (transfer it first). Emits `user.deleted`, \
        `organization.membership.deleted` for each membership and `organization.deleted` for \
        each organization deleted.",
    params(("userID" = Uuid, Path, description = "The user.")),
    security(("internalBearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = crate::http::api::openapi::InvalidRequest),
        (status = 401, response = crate::http::api::openapi::Unauthorized),
        (status = 404, response = crate::http::api::openapi::UserNotFound),
        (status = 409, response = crate::http::api::openapi::UserDeletionConflict),
    ),
)]
pub async fn delete_user(
    State(state): State<AppState>,
    _caller: InternalCaller,
    id: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user_id = path::ids(id)?;
    no_body(&headers, &body)?;
    state.auth.delete_user_by_id(user_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
