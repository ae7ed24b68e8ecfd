//! The invitation link's pages (upstream's routes): `GET/POST /auth/invitations/accept`, and
//! the signup and login made for an invitation, `GET/POST /auth/invitations/{signup,login}`.
//! Every page works without JavaScript.
//!
//! In `single` mode an invitation only ever creates an account (its user belongs to the
//! inviting organization only); in `multi` mode an existing account accepts it signed in, or by
//! signing in here. A token that is not a pending invitation gets "Invitation unavailable".

use super::{
    ensure_csrf, hit_ip_and_email, refuse_busy, refuse_limited, render, set_session_cookies,
    signed_in_redirect, MessagePage,
};
use crate::http::error::PageError;
use crate::http::extract::{access_user, ClientInfo, Htmx, SignedIn};
use crate::http::form;
use crate::http::respond::redirect;
use crate::http::Routes;
use crate::state::AppState;
use askama::Template;
use authara_core::auth::{InvitedError, LoginError, SignupError};
use authara_core::invitation::InvitationError;
use authara_core::jwt::Audience;
use authara_core::limits::Family;
use authara_core::org::OrgMode;
use authara_core::session::SwitchError;
use authara_core::store::StoredInvitation;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use time::format_description::well_known::Rfc2822;

/// The invitation pages.
pub fn routes() -> Routes {
    Routes::new()
        .get(ACCEPT, get_accept)
        .post(ACCEPT, post_accept)
        .get(SIGNUP, get_signup)
        .post(SIGNUP, post_signup)
        .get(LOGIN, get_login)
        .post(LOGIN, post_login)
}

const ACCEPT: &str = "/auth/invitations/accept";
const SIGNUP: &str = "/auth/invitations/signup";
const LOGIN: &str = "/auth/invitations/login";
/// Upstream's refusal of an existing account outside `multi` mode.
const NEW_ACCOUNT_ONLY: &str = "This invitation requires creating a new account.";

/// `/auth/invitations/*`.
#[derive(Template)]
#[template(path = "invitation.html")]
pub struct InvitationPage<'a> {
    pub csrf_token: &'a str,
    pub token: &'a str,
    pub organization: &'a str,
    pub email: &'a str,
    pub role: &'static str,
    pub expires_at: String,
    pub error: Option<&'a str>,
    /// `accept`, `mismatch`, `signup`, `login`, or anything else: the links.
    pub view: &'static str,
    /// Whether an existing account may accept (`multi` mode).
    pub can_login: bool,
    pub signup_href: String,
    pub login_href: String,
}

#[derive(Debug, Default, serde::Deserialize)]
struct InvitationForm {
    token: Option<String>,
    password: Option<String>,
}

/// The `token` query parameter, if any.
fn query_token(query: Option<&str>) -> String {
    match form::query_param(query, "token") {
        Ok(Some(token)) => token,
        _ => String::new(),
    }
}

/// The page of a token that is no pending invitation, by why.
fn unavailable(e: &InvitedError) -> Option<Response> {
    let (status, message) = match e {
        InvitedError::Invitation(InvitationError::InvalidRequest(_))
        | InvitedError::Invitation(InvitationError::InvitationNotFound) => (
            StatusCode::NOT_FOUND,
            "This invitation link is not valid. Ask for a new invitation.",
        ),
        InvitedError::Invitation(InvitationError::AlreadyAccepted) => (
            StatusCode::GONE,
            "This invitation has already been accepted.",
        ),
        InvitedError::Invitation(InvitationError::Revoked) => {
            (StatusCode::GONE, "This invitation has been revoked.")
        }
        InvitedError::Invitation(InvitationError::Expired) => (
            StatusCode::GONE,
            "This invitation has expired. Ask for a new invitation.",
        ),
        InvitedError::Invitation(InvitationError::Forbidden) => {
            (StatusCode::FORBIDDEN, "Invitations are not available here.")
        }
        _ => return None,
    };
    let page = MessagePage {
        title: "Invitation unavailable",
        message,
        link_href: "/auth/login",
        link_text: "Sign in",
    };
    Some(render(&page, status, HeaderMap::new()))
}

/// The answer to any other refusal of an invitation flow.
fn refused(e: InvitedError) -> Result<Response, PageError> {
    if let Some(page) = unavailable(&e) {
        return Ok(page);
    }
    Err(match e {
        InvitedError::Invitation(InvitationError::RequiresNewAccount) => {
            PageError::new(StatusCode::FORBIDDEN, NEW_ACCOUNT_ONLY)
        }
        InvitedError::Invitation(InvitationError::EmailMismatch) => PageError::new(
            StatusCode::FORBIDDEN,
            "This invitation is for another email address.",
        ),
        InvitedError::Invitation(InvitationError::MembershipConflict) => PageError::new(
            StatusCode::CONFLICT,
            "You are already a member of this organization.",
        ),
        InvitedError::Invitation(InvitationError::Store(e)) => e.into(),
        InvitedError::Signup(SignupError::Failed(e))
        | InvitedError::Login(LoginError::Failed(e)) => PageError::internal(e),
        other => PageError::internal(other),
    })
}

/// Renders the invitation page for `found`.
#[allow(clippy::too_many_arguments)]
fn page(
    state: &AppState,
    headers: &HeaderMap,
    out: HeaderMap,
    status: StatusCode,
    found: &StoredInvitation,
    token: &str,
    view: &'static str,
    error: Option<&str>,
) -> Response {
    let mut out = out;
    let csrf = ensure_csrf(state, headers, &mut out);
    let expires_at = found
        .invitation
        .expires_at
        .format(&Rfc2822)
        .unwrap_or_default();
    let with_token = |path: &str| format!("{path}?token={token}");
    let view = InvitationPage {
        csrf_token: &csrf,
        token,
        organization: &found.organization.name,
        email: &found.invitation.email,
        role: found.invitation.role.as_str(),
        expires_at,
        error,
        view,
        can_login: state.orgs.mode() == OrgMode::Multi,
        signup_href: with_token(SIGNUP),
        login_href: with_token(LOGIN),
    };
    render(&view, status, out)
}

/// `GET /auth/invitations/accept?token=`: what the invitation is, and the way to accept it
/// for this visitor (signed in with the invited email: a button; with another: sign out
/// first; not signed in: sign up, or in `multi` mode sign in).
pub async fn get_accept(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let token = query_token(query.as_deref());
    let found = match state.auth.pending_invitation(&token).await {
        Ok(found) => found,
        Err(e) => return refused(e),
    };
    let view = if state.orgs.mode() != OrgMode::Multi {
        "links"
    } else {
        match access_user(&state, &headers).await? {
            Some(auth) if auth.user.email == found.invitation.email => "accept",
            Some(_) => "mismatch",
            None => "links",
        }
    };
    Ok(page(
        &state,
        &headers,
        HeaderMap::new(),
        StatusCode::OK,
        &found,
        &token,
        view,
        None,
    ))
}

/// `POST /auth/invitations/accept`: the signed-in user whose email is the invitation's joins
/// its organization and the session moves there; then `/`. `multi` mode only.
pub async fn post_accept(
    State(state): State<AppState>,
    user: SignedIn,
    Htmx(htmx): Htmx,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: InvitationForm = form::parse(&body);
    let token = f.token.unwrap_or_default();
    let accepted = match state.invitations.accept(&token, user.auth.user.id).await {
        Ok(accepted) => accepted,
        Err(e) => return refused(e.into()),
    };
    let issued = match state
        .sessions
        .switch_organization(
            &user.auth,
            accepted.invitation.organization_id,
            Audience::App,
        )
        .await
    {
        Ok(issued) => issued,
        Err(SwitchError::NotMember) => {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "You are no longer a member of that organization.",
            ))
        }
        Err(SwitchError::Issue(e)) => return Err(PageError::internal(e)),
    };
    let mut out = user.cookies;
    set_session_cookies(state.cookies, &issued, &mut out);
    Ok(redirect(htmx, "/", out))
}

/// `GET /auth/invitations/signup?token=`: a password for an account with the invited email.
pub async fn get_signup(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let token = query_token(query.as_deref());
    match state.auth.pending_invitation(&token).await {
        Ok(found) => Ok(page(
            &state,
            &headers,
            HeaderMap::new(),
            StatusCode::OK,
            &found,
            &token,
            "signup",
            None,
        )),
        Err(e) => refused(e),
    }
}

/// `POST /auth/invitations/signup`: the account, the invitation accepted, and a session in
/// its organization; then `/`. The signup rate limits apply (per IP and per invited email).
/// With `AUTHARA_CHALLENGE_ENABLED`, the emailed code first: a `303` to the verify page (a
/// taken email gets an opaque challenge there, as at `/auth/signup`).
pub async fn post_signup(
    State(state): State<AppState>,
    client: ClientInfo,
    Htmx(htmx): Htmx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: InvitationForm = form::parse(&body);
    let token = f.token.unwrap_or_default();
    let password = f.password.unwrap_or_default();
    let found = match state.auth.pending_invitation(&token).await {
        Ok(found) => found,
        Err(e) => return refused(e),
    };
    let show = |status: StatusCode, error: &str| {
        page(
            &state,
            &headers,
            HeaderMap::new(),
            status,
            &found,
            &token,
            "signup",
            Some(error),
        )
    };
    let email = found.invitation.email.as_str();
    if let Err(limited) = hit_ip_and_email(
        &state,
        Family::SignupIp,
        Family::SignupEmail,
        &client.ip,
        email,
    )
    .await
    {
        return Ok(refuse_limited(show, limited));
    }
    // With verified signup on, the account exists only once the emailed code is verified
    // (upstream's flow); the verify page then signs it in to the invitation's organization.
    if state.challenges.settings().enabled {
        return match state
            .challenges
            .start_invited_signup(&found, &password)
            .await
        {
            Ok(started) => {
                let to = super::challenge::verify_href(
                    authara_core::challenge::store::Purpose::Signup,
                    started.challenge_id,
                    None,
                    None,
                );
                Ok(redirect(htmx, &to, HeaderMap::new()))
            }
            Err(e) => super::password_reset::start_refused(e, show),
        };
    }
    match state
        .auth
        .signup_with_invitation(&token, &password, client.origin())
        .await
    {
        Ok((_, issued)) => Ok(signed_in_redirect(&state, htmx, &issued, None)),
        Err(InvitedError::Signup(SignupError::Password(e))) => {
            Ok(show(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))
        }
        Err(InvitedError::Signup(SignupError::Duplicate)) => Ok(show(
            StatusCode::UNPROCESSABLE_ENTITY,
            super::signup::COULD_NOT_CREATE,
        )),
        Err(InvitedError::Signup(SignupError::Busy)) => Ok(refuse_busy(show)),
        Err(e) => refused(e),
    }
}

/// `GET /auth/invitations/login?token=`: the password of the invited account. `multi` only.
pub async fn get_login(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if state.orgs.mode() != OrgMode::Multi {
        return Err(PageError::new(StatusCode::FORBIDDEN, NEW_ACCOUNT_ONLY));
    }
    let token = query_token(query.as_deref());
    match state.auth.pending_invitation(&token).await {
        Ok(found) => Ok(page(
            &state,
            &headers,
            HeaderMap::new(),
            StatusCode::OK,
            &found,
            &token,
            "login",
            None,
        )),
        Err(e) => refused(e),
    }
}

/// `POST /auth/invitations/login`: the invited account's password, the invitation accepted,
/// and a session in its organization; then `/`. `multi` only. The login rate limits apply.
pub async fn post_login(
    State(state): State<AppState>,
    client: ClientInfo,
    Htmx(htmx): Htmx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if state.orgs.mode() != OrgMode::Multi {
        return Err(PageError::new(StatusCode::FORBIDDEN, NEW_ACCOUNT_ONLY));
    }
    let f: InvitationForm = form::parse(&body);
    let token = f.token.unwrap_or_default();
    let password = f.password.unwrap_or_default();
    let found = match state.auth.pending_invitation(&token).await {
        Ok(found) => found,
        Err(e) => return refused(e),
    };
    let show = |status: StatusCode, error: &str| {
        page(
            &state,
            &headers,
            HeaderMap::new(),
            status,
            &found,
            &token,
            "login",
            Some(error),
        )
    };
    match invitation_login(&state, &client, &headers, &found, &token, &password).await {
        Ok((_, issued)) => Ok(signed_in_redirect(&state, htmx, &issued, None)),
        Err(InvitationLoginRefusal::Limited(limited)) => Ok(refuse_limited(show, limited)),
        Err(InvitationLoginRefusal::Invited(e)) => match e {
            InvitedError::Login(LoginError::Empty | LoginError::Invalid) => Ok(show(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid email or password.",
            )),
            InvitedError::Login(LoginError::Disabled) => Ok(show(
                StatusCode::FORBIDDEN,
                "This account has been disabled.",
            )),
            InvitedError::Login(LoginError::Busy) => Ok(refuse_busy(show)),
            e => refused(e),
        },
    }
}

/// Why [`invitation_login`] started no session.
#[derive(Debug)]
pub enum InvitationLoginRefusal {
    /// Over a rate limit: nothing was checked.
    Limited(authara_core::limits::Limited),
    /// What the account service said.
    Invited(InvitedError),
}

/// A login through an invitation, behind `POST /auth/invitations/login` and
/// `POST /auth/api/v1/invitations/login`: the login's rate limits (per IP, and per invited
/// email given back unless the password was wrong), the password, the acceptance, a session in
/// the organization, and the browser's previous session replaced.
pub async fn invitation_login(
    state: &AppState,
    client: &ClientInfo,
    headers: &HeaderMap,
    found: &StoredInvitation,
    token: &str,
    password: &str,
) -> Result<
    (
        authara_core::store::UserRecord,
        authara_core::session::Issued,
    ),
    InvitationLoginRefusal,
> {
    use super::{ask_limiter, email_limit_key, refund, Ask};
    use authara_core::limits::LimitKey;
    let email_key = email_limit_key(&found.invitation.email);
    let per_ip = LimitKey::new(Family::LoginIp, &client.ip);
    let per_email = LimitKey::new(Family::LoginEmail, &email_key);
    ask_limiter(state, &[Ask::Hit(per_ip), Ask::Hit(per_email)])
        .await
        .map_err(InvitationLoginRefusal::Limited)?;
    let outcome = state
        .auth
        .login_with_invitation(token, password, client.origin())
        .await;
    if !matches!(outcome, Err(InvitedError::Login(LoginError::Invalid))) {
        refund(state, &[per_email]).await;
    }
    let (user, issued) = outcome.map_err(InvitationLoginRefusal::Invited)?;
    super::login::replace_previous_session(state, headers, &issued).await;
    Ok((user, issued))
}
