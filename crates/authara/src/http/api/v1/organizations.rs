//! Organizations as JSON (upstream's ten routes, `UPSTREAM.md` §1.8): the capabilities document,
//! the caller's organizations and the current one, its members, switching, and the
//! organization-management routes behind `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED`.
//!
//! Every route needs a signed-in caller. The management routes accept only the organization of
//! the caller's access token and only while the caller is still a member there (else `403
//! forbidden`, never the other organization's data); with management off they are `404
//! not_found`, as if absent.

use super::session::audience_param;
use super::tokens::{new_tokens, Tokens};
use super::user::rfc3339_seconds;
use crate::http::api::{json, openapi, path};
use crate::http::error::ApiError;
use crate::http::extract::ApiUser;
use crate::http::pages::set_session_cookies;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::jwt::Audience;
use authara_core::org::{Capabilities, OrgError};
use authara_core::session::SwitchError;
use authara_core::store::{
    ActiveOrganization, MemberRecord, MembershipRecord, MembershipWithOrganization,
    OrganizationRecord,
};
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The organization routes.
pub fn routes() -> Routes {
    Routes::new()
        .get("/auth/api/v1/capabilities", get_capabilities)
        .get("/auth/api/v1/organizations", get_organizations)
        .get("/auth/api/v1/organizations/current", get_current)
        .get(
            "/auth/api/v1/organizations/current/members",
            get_current_members,
        )
        .post(
            "/auth/api/v1/organizations/{organizationID}/switch",
            post_switch,
        )
        .get(
            "/auth/api/v1/organizations/{organizationID}",
            get_organization,
        )
        .patch(
            "/auth/api/v1/organizations/{organizationID}",
            patch_organization,
        )
        .get(
            "/auth/api/v1/organizations/{organizationID}/members",
            get_members,
        )
        .get(
            "/auth/api/v1/organizations/{organizationID}/members/{userID}",
            get_member,
        )
        .get("/auth/api/v1/users/{userID}/memberships", get_memberships)
}

/// `404 organization_not_found`.
pub const ORGANIZATION_NOT_FOUND: ApiError = ApiError::Refused {
    status: StatusCode::NOT_FOUND,
    code: "organization_not_found",
    message: "Organization not found.",
};

/// `404 membership_not_found`.
pub const MEMBERSHIP_NOT_FOUND: ApiError = ApiError::Refused {
    status: StatusCode::NOT_FOUND,
    code: "membership_not_found",
    message: "Membership not found.",
};

const fn refused(status: StatusCode, code: &'static str, message: &'static str) -> ApiError {
    ApiError::Refused {
        status,
        code,
        message,
    }
}

/// Every refusal of the organization service in upstream's codes, for the public routes and
/// the internal API alike (the public routes never cause the actor and conflict ones).
impl From<OrgError> for ApiError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::Forbidden => ApiError::Forbidden,
            OrgError::OrganizationNotFound => ORGANIZATION_NOT_FOUND,
            OrgError::MembershipNotFound => MEMBERSHIP_NOT_FOUND,
            OrgError::InvalidName => ApiError::InvalidRequest(
                "name must be 1 to 255 characters, without control characters.",
            ),
            OrgError::ActorNotMember => refused(
                StatusCode::FORBIDDEN,
                "actor_not_member",
                "The actor is not a member of the organization.",
            ),
            OrgError::ActorNotAllowed => refused(
                StatusCode::FORBIDDEN,
                "actor_not_allowed",
                "The actor's role does not allow this.",
            ),
            OrgError::UserNotFound => {
                refused(StatusCode::NOT_FOUND, "user_not_found", "User not found.")
            }
            OrgError::PersonalImmutable => refused(
                StatusCode::CONFLICT,
                "personal_organization_immutable",
                "A personal organization cannot be changed this way.",
            ),
            OrgError::HasOtherMembers => refused(
                StatusCode::CONFLICT,
                "organization_has_other_members",
                "The organization has other members.",
            ),
            OrgError::LastOwner => refused(
                StatusCode::CONFLICT,
                "last_organization_owner",
                "An organization must keep an owner.",
            ),
            OrgError::LastMembership => refused(
                StatusCode::CONFLICT,
                "last_organization_member",
                "A user must keep at least one organization.",
            ),
            OrgError::LastActiveAdmin => refused(
                StatusCode::CONFLICT,
                "last_active_admin",
                "The only active administrator cannot be deleted.",
            ),
            OrgError::Store(s) => s.into(),
        }
    }
}

/// Upstream's `OrganizationSummary`: an organization as one of its members sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationSummary {
    pub id: Uuid,
    pub name: String,
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
}

impl From<&MembershipWithOrganization> for OrganizationSummary {
    fn from(m: &MembershipWithOrganization) -> Self {
        Self {
            id: m.organization.id,
            name: m.organization.name.clone(),
            role: m.membership.role.as_str(),
        }
    }
}

impl From<&ActiveOrganization> for OrganizationSummary {
    fn from(o: &ActiveOrganization) -> Self {
        Self {
            id: o.id,
            name: o.name.clone(),
            role: o.role.as_str(),
        }
    }
}

/// The `GET /auth/api/v1/organizations` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationSummaries {
    /// The caller's organizations, oldest membership first.
    pub organizations: Vec<OrganizationSummary>,
}

/// A member of the current organization (upstream's `CurrentOrganizationMember`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrentOrganizationMember {
    pub user_id: Uuid,
    #[schema(format = Email)]
    pub email: String,
    pub username: String,
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
    /// When the membership began.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The `GET /auth/api/v1/organizations/current/members` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrentOrganizationMembers {
    pub members: Vec<CurrentOrganizationMember>,
}

/// Upstream's `Organization`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Organization {
    pub id: Uuid,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub name: String,
    /// `personal` or `team`.
    #[schema(schema_with = kind_schema)]
    pub kind: &'static str,
    /// Absent once the creator's account is deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by_user_id: Option<Uuid>,
}

impl Organization {
    pub fn new(o: &OrganizationRecord) -> Result<Self, ApiError> {
        Ok(Self {
            id: o.id,
            created_at: rfc3339_seconds(o.created_at)?,
            updated_at: rfc3339_seconds(o.updated_at)?,
            name: o.name.clone(),
            kind: o.kind.as_str(),
            created_by_user_id: o.created_by_user_id,
        })
    }
}

/// Upstream's `OrganizationEnvelope`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationEnvelope {
    pub organization: Organization,
}

/// Upstream's `Membership`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Membership {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl Membership {
    pub fn new(m: &MembershipRecord) -> Result<Self, ApiError> {
        Ok(Self {
            organization_id: m.organization_id,
            user_id: m.user_id,
            role: m.role.as_str(),
            created_at: rfc3339_seconds(m.created_at)?,
            updated_at: rfc3339_seconds(m.updated_at)?,
        })
    }
}

/// Upstream's `OrganizationMember`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationMember {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    #[schema(format = Email)]
    pub email: String,
    pub username: String,
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub disabled: bool,
}

impl OrganizationMember {
    fn new(m: &MemberRecord) -> Result<Self, ApiError> {
        Ok(Self {
            organization_id: m.membership.organization_id,
            user_id: m.membership.user_id,
            email: m.email.clone(),
            username: m.username.clone(),
            role: m.membership.role.as_str(),
            created_at: rfc3339_seconds(m.membership.created_at)?,
            updated_at: rfc3339_seconds(m.membership.updated_at)?,
            disabled: m.disabled,
        })
    }
}

/// Upstream's `OrganizationMembers`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationMembers {
    pub members: Vec<OrganizationMember>,
}

/// Upstream's `OrganizationMemberEnvelope`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationMemberEnvelope {
    pub member: OrganizationMember,
}

/// Upstream's `MembershipWithOrganization`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MembershipWithOrganization)]
pub struct MembershipWithOrganizationBody {
    pub organization: Organization,
    pub membership: Membership,
}

impl MembershipWithOrganizationBody {
    fn new(m: &MembershipWithOrganization) -> Result<Self, ApiError> {
        Ok(Self {
            organization: Organization::new(&m.organization)?,
            membership: Membership::new(&m.membership)?,
        })
    }
}

/// Upstream's `UserMemberships`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserMemberships {
    pub memberships: Vec<MembershipWithOrganizationBody>,
}

/// Upstream's `UpdateOrganizationRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganizationRequest {
    /// 1 to 255 characters after trimming, no control characters.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
}

/// The capabilities document (upstream's `Capabilities`), documented here: the core type
/// serialises it.
#[derive(utoipa::ToSchema)]
#[schema(as = Capabilities)]
#[allow(dead_code, reason = "the schema of `authara_core::org::Capabilities`")]
pub struct CapabilitiesBody {
    #[schema(schema_with = mode_schema)]
    organization_mode: String,
    has_visible_organizations: bool,
    allows_invitations: bool,
    allows_public_organization_management: bool,
    allows_org_switching: bool,
    allows_user_created_team_orgs: bool,
    allows_organization_leave: bool,
}

fn enum_schema(values: &[&'static str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

fn role_schema() -> utoipa::openapi::Object {
    enum_schema(&["owner", "admin", "member"])
}

fn kind_schema() -> utoipa::openapi::Object {
    enum_schema(&["personal", "team"])
}

fn mode_schema() -> utoipa::openapi::Object {
    enum_schema(&["personal", "single", "multi"])
}

/// The management routes answer `404` while `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED`
/// is off, before anything else is looked at.
fn management_on(state: &AppState) -> Result<(), ApiError> {
    if state.orgs.public_management() {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// `GET /auth/api/v1/capabilities`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/capabilities",
    operation_id = "getPublicCapabilities",
    tag = "Organizations",
    summary = "Get organization capabilities",
    description = "What this server's organization mode allows (upstream's values by mode), and \
        whether the public management routes are open.",
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The capabilities.", body = CapabilitiesBody),
        (status = 401, response = openapi::Unauthorized),
    ),
)]
pub async fn get_capabilities(
    State(state): State<AppState>,
    ApiUser(_auth): ApiUser,
) -> Json<Capabilities> {
    Json(state.orgs.capabilities())
}

/// `GET /auth/api/v1/organizations`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/organizations",
    operation_id = "listCurrentUserOrganizations",
    tag = "Organizations",
    summary = "List the caller's organizations",
    description = "Every organization the caller is a member of, with their role there, oldest \
        membership first.",
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The organizations.", body = OrganizationSummaries),
        (status = 401, response = openapi::Unauthorized),
    ),
)]
pub async fn get_organizations(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
) -> Result<Response, ApiError> {
    let organizations = state
        .orgs
        .memberships(auth.user.id)
        .await?
        .iter()
        .map(OrganizationSummary::from)
        .collect();
    Ok(Json(OrganizationSummaries { organizations }).into_response())
}

/// `GET /auth/api/v1/organizations/current`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/organizations/current",
    operation_id = "getCurrentOrganization",
    tag = "Organizations",
    summary = "Get the organization of the access token",
    description = "The organization the caller's session acts in, with the caller's role there \
        now (a role changed since the token was signed shows at once).",
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The current organization.", body = OrganizationSummary),
        (status = 401, response = openapi::Unauthorized),
    ),
)]
pub async fn get_current(ApiUser(auth): ApiUser) -> Json<OrganizationSummary> {
    Json(OrganizationSummary::from(&*auth.organization))
}

/// `GET /auth/api/v1/organizations/current/members`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/organizations/current/members",
    operation_id = "listCurrentOrganizationMembers",
    tag = "Organizations",
    summary = "List the members of the current organization",
    description = "The members of the organization the caller's session acts in, oldest first. \
        `403` in `personal` mode.",
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The members.", body = CurrentOrganizationMembers),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
    ),
)]
pub async fn get_current_members(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
) -> Result<Response, ApiError> {
    let members = state
        .orgs
        .current_members(auth.organization.id)
        .await?
        .iter()
        .map(|m| {
            Ok(CurrentOrganizationMember {
                user_id: m.membership.user_id,
                email: m.email.clone(),
                username: m.username.clone(),
                role: m.membership.role.as_str(),
                created_at: rfc3339_seconds(m.membership.created_at)?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(CurrentOrganizationMembers { members }).into_response())
}

/// `POST /auth/api/v1/organizations/{organizationID}/switch?audience=`.
#[utoipa::path(
    post,
    path = "/auth/api/v1/organizations/{organizationID}/switch",
    operation_id = "switchOrganization",
    tag = "Organizations",
    summary = "Switch the session to another organization",
    description = "In `multi` mode only (else `403`): moves the caller's session to an \
        organization where they are a member (else `403`). Every refresh token of the session \
        is replaced by a new one; both tokens come back in the body and as cookies. An access \
        token signed for the previous organization no longer authenticates.",
    params(
        ("organizationID" = Uuid, Path, description = "The organization to act in."),
        openapi::AudienceQuery,
    ),
    security(
        ("accessCookie" = [], "csrfCookie" = [], "csrfHeader" = []),
        ("accessBearer" = []),
    ),
    responses(
        (status = 200, description = "Tokens for the organization.", body = Tokens),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::CsrfInvalidOrForbidden),
    ),
    extensions(("x-authara-set-cookies" = json!(["authara_access", "authara_refresh"]))),
)]
pub async fn post_switch(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    RawQuery(query): RawQuery,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    let organization_id = path::ids(id)?;
    let audience = audience_param(query.as_deref())?;
    if !state.orgs.mode().allows_switching() {
        return Err(ApiError::Forbidden);
    }
    if audience == Audience::Admin && !auth.user.is_admin {
        return Err(ApiError::AudienceRefused);
    }
    let issued = match state
        .sessions
        .switch_organization(&auth, organization_id, audience)
        .await
    {
        Ok(issued) => issued,
        Err(SwitchError::NotMember) => return Err(ApiError::Forbidden),
        Err(SwitchError::Issue(e)) => return Err(ApiError::internal(e)),
    };
    let tokens = new_tokens(&issued)?;
    let mut out = HeaderMap::new();
    set_session_cookies(state.cookies, &issued, &mut out);
    Ok((out, Json(tokens)).into_response())
}

/// `GET /auth/api/v1/organizations/{organizationID}`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/organizations/{organizationID}",
    operation_id = "getPublicOrganization",
    tag = "Organizations",
    summary = "Get an organization",
    description = "The organization of the caller's access token, for its members. Another \
        organization's id is `403` (its data is never shown). `404` unless \
        `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`.",
    params(("organizationID" = Uuid, Path, description = "The organization.")),
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The organization.", body = OrganizationEnvelope),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 404, response = openapi::NotFound),
    ),
    extensions(("x-authara-availability" = json!("public-organization-management-enabled"))),
)]
pub async fn get_organization(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    management_on(&state)?;
    let id = path::ids(id)?;
    let org = state
        .orgs
        .organization(auth.user.id, auth.claims.org_id, id)
        .await?;
    Ok(Json(OrganizationEnvelope {
        organization: Organization::new(&org)?,
    })
    .into_response())
}

/// `PATCH /auth/api/v1/organizations/{organizationID}`.
#[utoipa::path(
    patch,
    path = "/auth/api/v1/organizations/{organizationID}",
    operation_id = "updatePublicOrganization",
    tag = "Organizations",
    summary = "Rename an organization",
    description = "Owners and admins of the organization of their access token only (else \
        `403`). Emits `organization.updated`. `404` unless \
        `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`.",
    params(("organizationID" = Uuid, Path, description = "The organization.")),
    request_body = UpdateOrganizationRequest,
    security(
        ("accessCookie" = [], "csrfCookie" = [], "csrfHeader" = []),
        ("accessBearer" = []),
    ),
    responses(
        (status = 200, description = "The renamed organization.", body = OrganizationEnvelope),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::CsrfInvalidOrForbidden),
        (status = 404, response = openapi::NotFoundOrOrganizationNotFound),
    ),
    extensions(("x-authara-availability" = json!("public-organization-management-enabled"))),
)]
pub async fn patch_organization(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    id: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    management_on(&state)?;
    let id = path::ids(id)?;
    let req: UpdateOrganizationRequest = json::parse(&headers, &body)?;
    let org = state
        .orgs
        .rename(auth.user.id, auth.claims.org_id, id, &req.name)
        .await?;
    Ok(Json(OrganizationEnvelope {
        organization: Organization::new(&org)?,
    })
    .into_response())
}

/// `GET /auth/api/v1/organizations/{organizationID}/members`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/organizations/{organizationID}/members",
    operation_id = "listPublicOrganizationMembers",
    tag = "Organizations",
    summary = "List an organization's members",
    description = "The members of the organization of the caller's access token, oldest first. \
        `403` for another organization and in `personal` mode. `404` unless \
        `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`.",
    params(("organizationID" = Uuid, Path, description = "The organization.")),
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The members.", body = OrganizationMembers),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 404, response = openapi::NotFound),
    ),
    extensions(("x-authara-availability" = json!("public-organization-management-enabled"))),
)]
pub async fn get_members(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    management_on(&state)?;
    let id = path::ids(id)?;
    let members = state
        .orgs
        .members(auth.user.id, auth.claims.org_id, id)
        .await?
        .iter()
        .map(OrganizationMember::new)
        .collect::<Result<_, _>>()?;
    Ok(Json(OrganizationMembers { members }).into_response())
}

/// `GET /auth/api/v1/organizations/{organizationID}/members/{userID}`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/organizations/{organizationID}/members/{userID}",
    operation_id = "getPublicOrganizationMember",
    tag = "Organizations",
    summary = "Get an organization member",
    description = "One member of the organization of the caller's access token; `404 \
        membership_not_found` for a user who is not a member. `403` for another organization. \
        `404 not_found` unless `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`.",
    params(
        ("organizationID" = Uuid, Path, description = "The organization."),
        ("userID" = Uuid, Path, description = "The member."),
    ),
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The member.", body = OrganizationMemberEnvelope),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 404, response = openapi::NotFoundOrMembershipNotFound),
    ),
    extensions(("x-authara-availability" = json!("public-organization-management-enabled"))),
)]
pub async fn get_member(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    ids: Result<Path<(Uuid, Uuid)>, PathRejection>,
) -> Result<Response, ApiError> {
    management_on(&state)?;
    let (organization_id, user_id) = path::ids(ids)?;
    let member = state
        .orgs
        .member(auth.user.id, auth.claims.org_id, organization_id, user_id)
        .await?;
    Ok(Json(OrganizationMemberEnvelope {
        member: OrganizationMember::new(&member)?,
    })
    .into_response())
}

/// `GET /auth/api/v1/users/{userID}/memberships`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/users/{userID}/memberships",
    operation_id = "listPublicUserMemberships",
    tag = "Organizations",
    summary = "List the caller's memberships",
    description = "Every membership of the caller with its organization; any other user's id \
        is `403`. `404` unless `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`.",
    params(("userID" = Uuid, Path, description = "The caller's own id.")),
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The memberships.", body = UserMemberships),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 404, response = openapi::NotFound),
    ),
    extensions(("x-authara-availability" = json!("public-organization-management-enabled"))),
)]
pub async fn get_memberships(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    management_on(&state)?;
    let user_id = path::ids(id)?;
    let memberships = state
        .orgs
        .user_memberships(auth.user.id, user_id)
        .await?
        .iter()
        .map(MembershipWithOrganizationBody::new)
        .collect::<Result<_, _>>()?;
    Ok(Json(UserMemberships { memberships }).into_response())
}
