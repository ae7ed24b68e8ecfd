//! The account: `GET /auth/account`, its form actions (username, deletion) and the page shown
//! after deletion.

use super::{
    ensure_csrf, render, AccountPage, LinkableRow, MessagePage, MethodRow, OrganizationRow,
    SessionRow,
};
use crate::http::error::PageError;
use crate::http::extract::{Htmx, RequestCtx, SignedIn};
use crate::http::form;
use crate::http::respond::redirect;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::UsernameChangeError;
use authara_core::org::OrgError;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

const ACCOUNT: &str = "/auth/account";

/// The account's routes.
pub fn routes() -> Routes {
    Routes::new()
        .get(ACCOUNT, get_account)
        .get("/auth/successful-deletion", get_successful_deletion)
        .post("/auth/user/username", post_username)
        .post("/auth/user/delete", post_delete)
}

/// How session start times are shown.
const SINCE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");

/// `GET /auth/account`.
pub async fn get_account(
    State(state): State<AppState>,
    user: SignedIn,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let notice = match form::query_param(query.as_deref(), "notice") {
        Ok(Some(n)) if n == "email-changed" => Some(EMAIL_CHANGED),
        Ok(Some(n)) if n == "organization-switched" => Some(ORGANIZATION_SWITCHED),
        Ok(Some(n)) if n == "method-linked" => Some(super::providers::METHOD_LINKED),
        Ok(Some(n)) if n == "method-removed" => Some(super::providers::METHOD_REMOVED),
        _ => None,
    };
    account_page(&state, &headers, user, StatusCode::OK, None, notice).await
}

/// Shown on the account page after an email change.
pub const EMAIL_CHANGED: &str =
    "Your email address was changed. Every other device was signed out.";

/// Shown on the account page after switching organizations.
pub const ORGANIZATION_SWITCHED: &str = "You are now working in another organization.";

/// The account page, with an error or a notice.
pub async fn account_page(
    state: &AppState,
    headers: &HeaderMap,
    user: SignedIn,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    let SignedIn {
        auth,
        cookies: mut out,
    } = user;
    let csrf = ensure_csrf(state, headers, &mut out);
    let sessions = state
        .sessions
        .list(auth.user.id)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id.to_string(),
            user_agent: if s.user_agent.is_empty() {
                "Unknown browser".to_owned()
            } else {
                s.user_agent
            },
            client_ip: s.client_ip,
            created_at: s.created_at.format(SINCE).unwrap_or_default(),
            last_used_at: s.last_used_at.format(SINCE).unwrap_or_default(),
            current: s.id == auth.claims.sid,
        })
        .collect();
    let mode = state.orgs.mode();
    let organizations = if mode.has_visible_organizations() {
        state
            .orgs
            .memberships(auth.user.id)
            .await
            .map_err(PageError::internal)?
            .into_iter()
            .map(|m| OrganizationRow {
                id: m.organization.id.to_string(),
                current: m.organization.id == auth.organization.id,
                name: m.organization.name,
                role: m.membership.role.as_str(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let identities = state.auth.identities(auth.user.id).await?;
    let label = |name: &str| {
        if name == "google" {
            "Google".to_owned()
        } else {
            state
                .provider(name)
                .map_or_else(|| name.to_owned(), |p| p.display_name.clone())
        }
    };
    let mut methods = Vec::new();
    if auth.user.password_hash.is_some() {
        methods.push(MethodRow {
            method: authara_core::auth::PASSWORD_METHOD.to_owned(),
            label: "Password".to_owned(),
            detail: String::new(),
        });
    }
    methods.extend(identities.iter().map(|i| MethodRow {
        method: i.provider.clone(),
        label: label(&i.provider),
        detail: i.email.clone().unwrap_or_default(),
    }));
    let linkable = state
        .providers
        .iter()
        .filter(|p| !identities.iter().any(|i| i.provider == p.name))
        .map(|p| LinkableRow {
            name: p.name.clone(),
            label: format!("Link {}", p.display_name),
        })
        .collect();
    let page = AccountPage {
        csrf_token: &csrf,
        email: &auth.user.email,
        username: &auth.user.username,
        has_password: auth.user.password_hash.is_some(),
        sessions,
        error,
        notice,
        email_change: state.challenges.settings().enabled,
        organization: &auth.organization.name,
        organization_role: auth.organization.role.as_str(),
        organizations,
        can_switch: mode.allows_switching(),
        methods,
        linkable,
    };
    Ok(render(&page, status, out))
}

#[derive(Debug, Default, serde::Deserialize)]
struct UsernameForm {
    username: Option<String>,
}

/// `POST /auth/user/username`.
pub async fn post_username(
    State(state): State<AppState>,
    user: SignedIn,
    Htmx(htmx): Htmx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: UsernameForm = form::parse(&body);
    let raw = f.username.unwrap_or_default();
    match state.auth.change_username(user.auth.user.id, &raw).await {
        Ok(_) => Ok(redirect(htmx, ACCOUNT, user.cookies)),
        Err(UsernameChangeError::Invalid(e)) => {
            let msg = e.to_string();
            account_page(
                &state,
                &headers,
                user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&msg),
                None,
            )
            .await
        }
        Err(UsernameChangeError::Taken) => {
            let msg = "That username is taken.";
            account_page(
                &state,
                &headers,
                user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(msg),
                None,
            )
            .await
        }
        Err(UsernameChangeError::Failed(e)) => Err(PageError::internal(e)),
    }
}

/// `POST /auth/user/delete`.
pub async fn post_delete(
    State(state): State<AppState>,
    user: SignedIn,
    Htmx(htmx): Htmx,
    RequestCtx(context): RequestCtx,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let refusal = match state.auth.delete_account(&user.auth.user, &context).await {
        Ok(()) => None,
        Err(OrgError::LastActiveAdmin) => Some(
            "You are the only administrator: make someone else an administrator before \
             deleting your account.",
        ),
        Err(OrgError::LastOwner) => Some(
            "You are the only owner of an organization that has other members: transfer it \
             before deleting your account.",
        ),
        Err(e) => return Err(e.into()),
    };
    if let Some(message) = refusal {
        return account_page(
            &state,
            &headers,
            user,
            StatusCode::CONFLICT,
            Some(message),
            None,
        )
        .await;
    }
    tracing::info!(user_id = %user.auth.user.id, "account deleted");
    let mut out = HeaderMap::new();
    state.cookies.clear_session(&mut out);
    Ok(redirect(htmx, "/auth/successful-deletion", out))
}

/// `GET /auth/successful-deletion`.
pub async fn get_successful_deletion(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let mut out = HeaderMap::new();
    ensure_csrf(&state, &headers, &mut out);
    let page = MessagePage {
        title: "Account deleted",
        message: "Your account and all its sessions have been deleted.",
        link_href: "/",
        link_text: "Back to the application",
    };
    render(&page, StatusCode::OK, out)
}
