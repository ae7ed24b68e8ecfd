//! Organizations in the browser: the account page's organization section (in `account.rs`)
//! and `POST /auth/organizations/switch` (ours: upstream switches in JSON only), the form
//! behind its "Switch" buttons, which works without JavaScript.

use crate::http::error::PageError;
use crate::http::extract::{Htmx, SignedIn};
use crate::http::form;
use crate::http::pages::challenge::parse_id;
use crate::http::pages::set_session_cookies;
use crate::http::respond::redirect;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::jwt::Audience;
use authara_core::session::SwitchError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

/// The organization page routes.
pub fn routes() -> Routes {
    Routes::new().post("/auth/organizations/switch", post_switch)
}

/// Where a switch lands: the account page, with a notice.
const SWITCHED: &str = "/auth/account?notice=organization-switched";

#[derive(Debug, Default, serde::Deserialize)]
struct SwitchForm {
    organization_id: Option<String>,
}

/// `POST /auth/organizations/switch`: `multi` mode only; the signed-in user must be a member
/// of `organization_id`. New session cookies for that organization, then the account page.
pub async fn post_switch(
    State(state): State<AppState>,
    user: SignedIn,
    Htmx(htmx): Htmx,
    body: Bytes,
) -> Result<Response, PageError> {
    if !state.orgs.mode().allows_switching() {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Switching organizations is not available here.",
        ));
    }
    let f: SwitchForm = form::parse(&body);
    let not_member = PageError::new(
        StatusCode::FORBIDDEN,
        "You are not a member of that organization.",
    );
    let Some(id) = f.organization_id.as_deref().and_then(parse_id) else {
        return Err(not_member);
    };
    let issued = match state
        .sessions
        .switch_organization(&user.auth, id, Audience::App)
        .await
    {
        Ok(issued) => issued,
        Err(SwitchError::NotMember) => return Err(not_member),
        Err(SwitchError::Issue(e)) => return Err(PageError::internal(e)),
    };
    let mut out = user.cookies;
    set_session_cookies(state.cookies, &issued, &mut out);
    Ok(redirect(htmx, SWITCHED, out))
}
