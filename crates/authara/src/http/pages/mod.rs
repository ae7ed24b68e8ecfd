//! HTML pages and form actions, one module per feature, each with its `routes()`. Every page
//! works without JavaScript; htmx gets `HX-Redirect`. What the pages share (templates, the CSRF
//! cookie, session cookies, the rate-limit questions) lives here.

pub mod account;
pub mod admin;
pub mod challenge;
pub mod code_flow;
pub mod email_change;
pub mod invitations;
pub mod login;
pub mod oauth;
pub mod organizations;
pub mod password;
pub mod password_reset;
pub mod provider_links;
pub mod providers;
pub mod session;
pub mod signup;

use super::cookies::{self, CookieWriter};
use super::error::set_retry_after;
use super::respond::html;
use crate::state::AppState;
use askama::Template;
use authara_core::domain::{Email, MAX_EMAIL_LEN};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

/// `/auth/login`.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub csrf_token: &'a str,
    pub return_to: Option<&'a str>,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub signup_href: String,
    pub reset_href: String,
    /// The Google button, when Google sign-in is on.
    pub google: Option<GoogleButton>,
    /// "Continue with …" links of the code-flow providers.
    pub providers: Vec<code_flow::ProviderButton>,
}

/// What the Google Identity Services button needs (redirect mode: no JavaScript of ours).
pub struct GoogleButton {
    pub client_id: String,
    /// Absolute: Google's page posts there (`PUBLIC_URL` + the callback, with `return_to`).
    pub login_uri: String,
    /// The button's wording: `signin_with` or `signup_with`.
    pub text: &'static str,
}

/// The Google button for a page whose `return_to` is `rt`, when Google sign-in is on; with
/// it, `out` gets the Content-Security-Policy that lets Google's script run.
pub fn google_button(
    state: &AppState,
    rt: Option<&str>,
    text: &'static str,
    out: &mut HeaderMap,
) -> Option<GoogleButton> {
    let google = state.google.as_ref()?;
    out.insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(oauth::GOOGLE_CSP),
    );
    let callback = format!("{}{}", state.public_origin, oauth::CALLBACK);
    Some(GoogleButton {
        client_id: google.client_id.clone(),
        login_uri: super::respond::with_return_to(&callback, rt),
        text,
    })
}

/// `/auth/signup`.
#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage<'a> {
    pub csrf_token: &'a str,
    pub return_to: Option<&'a str>,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub login_href: String,
    /// The Google button, when Google sign-in is on.
    pub google: Option<GoogleButton>,
    /// "Continue with …" links of the code-flow providers.
    pub providers: Vec<code_flow::ProviderButton>,
}

/// One sign-in method on the account page.
pub struct MethodRow {
    /// `password` or the provider's name (the unlink route's segment).
    pub method: String,
    pub label: String,
    /// The email the provider gave, if any.
    pub detail: String,
}

/// A provider the account page offers to link.
pub struct LinkableRow {
    pub name: String,
    pub label: String,
}

/// One row of the session list on the account page.
pub struct SessionRow {
    pub id: String,
    pub user_agent: String,
    pub client_ip: String,
    pub created_at: String,
    pub last_used_at: String,
    pub current: bool,
}

/// One of the user's organizations on the account page.
pub struct OrganizationRow {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    /// The one the session acts in.
    pub current: bool,
}

/// `/auth/account`.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub csrf_token: &'a str,
    pub email: &'a str,
    pub username: &'a str,
    /// Whether the account has a password ("Change password") or not ("Set a password").
    pub has_password: bool,
    pub sessions: Vec<SessionRow>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// Whether the email-change form is offered (`AUTHARA_CHALLENGE_ENABLED`).
    pub email_change: bool,
    /// The organization the session acts in, and the user's role there.
    pub organization: &'a str,
    pub organization_role: &'static str,
    /// Every organization of the user (shown unless the mode is `personal`).
    pub organizations: Vec<OrganizationRow>,
    /// Whether "Switch" buttons are offered (`multi` mode).
    pub can_switch: bool,
    /// The sign-in methods: the password (if set) and each linked identity.
    pub methods: Vec<MethodRow>,
    /// The enabled code-flow providers not linked yet.
    pub linkable: Vec<LinkableRow>,
}

/// A page with a title, one message and one link (errors, deletion).
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub link_href: &'a str,
    pub link_text: &'a str,
}

/// Renders a template, or a plain 500 if rendering fails (it cannot for these templates).
pub fn render(t: &impl Template, status: StatusCode, extra: HeaderMap) -> Response {
    match t.render() {
        Ok(body) => html(status, body, extra),
        Err(e) => {
            tracing::error!(error = ?e, "template rendering failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An error page.
pub fn render_error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let page = MessagePage {
        title,
        message,
        link_href: "/auth/login",
        link_text: "Go to sign in",
    };
    render(&page, status, HeaderMap::new())
}

/// The CSRF token for a page: the cookie's value when it has one that looks like ours, else a
/// fresh token that is also set as the cookie in `out`.
pub fn ensure_csrf(state: &AppState, request: &HeaderMap, out: &mut HeaderMap) -> String {
    if let Some(v) = cookies::read(request, cookies::CSRF).filter(|v| looks_like_token(v)) {
        return v.to_owned();
    }
    let token = authara_core::csrf::generate(&*state.random);
    state.cookies.set_csrf(out, token.expose());
    token.expose().to_owned()
}

fn looks_like_token(v: &str) -> bool {
    (32..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Sets the cookies of a freshly issued session (or refresh) into `out`: both cookies on every
/// success, the refresh cookie with the true remaining lifetime of its token, except within the
/// reuse grace window, where the browser keeps the newer refresh cookie it already got
/// ([`IssuedRefresh::Superseded`](authara_core::session::IssuedRefresh)).
pub fn set_session_cookies(
    writer: CookieWriter,
    issued: &authara_core::session::Issued,
    out: &mut HeaderMap,
) {
    writer.set_access(out, &issued.access.token, issued.access.max_age);
    if let Some(r) = issued.refresh.token() {
        writer.set_refresh(out, r.token.expose(), r.max_age);
    }
}

/// Shown when a login or signup is rate limited.
pub const TOO_MANY: &str = "Too many attempts. Please wait and try again.";

/// One question to the rate limiter before a login or signup.
#[derive(Debug, Clone, Copy)]
pub enum Ask<'a> {
    /// Count this attempt, refuse beyond the limit. Login per email counts too, before the
    /// password is verified, and refunds what was not a failed guess (see [`refund`]).
    Hit(authara_core::limits::LimitKey<'a>),
}

/// Gives back the attempts counted under `keys` (a successful login per email; every key of a
/// login or signup refused for busy hashing, which never got an answer).
pub async fn refund(state: &AppState, keys: &[authara_core::limits::LimitKey<'_>]) {
    for key in keys {
        state.limiter.refund(*key).await;
    }
}

/// Asks the rate limiter each question in turn, before anything else happens (no password is
/// hashed, nothing is written). At the first refusal, the page `show` renders with
/// [`TOO_MANY`] is the answer: `429` with `Retry-After` (SPEC §7).
pub async fn refuse_over_limit(
    state: &AppState,
    asks: &[Ask<'_>],
    show: impl Fn(StatusCode, &str) -> Response,
) -> Option<Response> {
    let limited = ask_limiter(state, asks).await.err()?;
    Some(refuse_limited(show, limited))
}

/// The answer to a request the rate limiter refused: the page `show` renders with
/// [`TOO_MANY`], `429` with `Retry-After`.
pub fn refuse_limited(
    show: impl Fn(StatusCode, &str) -> Response,
    limited: authara_core::limits::Limited,
) -> Response {
    let mut res = show(StatusCode::TOO_MANY_REQUESTS, TOO_MANY);
    set_retry_after(&mut res, limited.retry_after);
    res
}

/// Asks the rate limiter each question in turn and stops at the first refusal. JSON routes
/// use it with `?`: a refusal becomes the `rate_limited` envelope with `Retry-After`.
pub async fn ask_limiter(
    state: &AppState,
    asks: &[Ask<'_>],
) -> Result<(), authara_core::limits::Limited> {
    for ask in asks {
        match *ask {
            Ask::Hit(key) => state.limiter.hit(key).await?,
        }
    }
    Ok(())
}

/// Counts one attempt per client IP under `per_ip` and one per email (its limiter key,
/// [`email_limit_key`]) under `per_email`, before anything else happens: how signup, verified
/// signup and password reset are limited.
pub async fn hit_ip_and_email(
    state: &AppState,
    per_ip: authara_core::limits::Family,
    per_email: authara_core::limits::Family,
    client_ip: &str,
    email: &str,
) -> Result<(), authara_core::limits::Limited> {
    use authara_core::limits::LimitKey;
    let email_key = email_limit_key(email);
    let asks = [
        Ask::Hit(LimitKey::new(per_ip, client_ip)),
        Ask::Hit(LimitKey::new(per_email, &email_key)),
    ];
    ask_limiter(state, &asks).await
}

/// Shown when password hashing is saturated.
pub const BUSY: &str = "The server is busy. Please try again in a moment.";

/// How soon a client refused for busy hashing may try again: the queue drains in well under
/// a second at the default parameters.
pub const BUSY_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The answer when password hashing is saturated: the page `show` renders with [`BUSY`],
/// `503` with `Retry-After`, at once.
pub fn refuse_busy(show: impl Fn(StatusCode, &str) -> Response) -> Response {
    let mut res = show(StatusCode::SERVICE_UNAVAILABLE, BUSY);
    set_retry_after(&mut res, BUSY_RETRY_AFTER);
    res
}

/// The rate-limit key for a login or signup email field (up to the 64 KiB body): the
/// normalised address, or [`UNUSABLE_EMAIL_KEY`] for anything no account can have (too long, or
/// with a control or bidi character). The length is checked before normalising, so a huge field is
/// never lowercased or stored as a limiter key.
pub fn email_limit_key(raw: &str) -> Cow<'static, str> {
    let trimmed = raw.trim();
    if trimmed.len() > MAX_EMAIL_LEN || authara_core::domain::has_forbidden_char(trimmed) {
        return Cow::Borrowed(UNUSABLE_EMAIL_KEY);
    }
    let normalised = Email::normalise(trimmed);
    // Lowercasing can lengthen a few characters; the bound holds for the key itself too.
    if normalised.len() > MAX_EMAIL_LEN {
        return Cow::Borrowed(UNUSABLE_EMAIL_KEY);
    }
    Cow::Owned(normalised)
}

/// The one rate-limit key shared by every email field no account can have: longer than an
/// address can be, or holding a control or bidi character (which never reach the database, nor
/// a Redis key). They need no separate counts; and without `@` this key is itself no valid
/// address, so no account's count can be shared with them.
pub const UNUSABLE_EMAIL_KEY: &str = "(unusable email)";

/// The email field as shown back in a form: trimmed and cut to [`MAX_EMAIL_LEN`] bytes (on a
/// character boundary), so a huge field is not echoed into the page; empty when it holds a
/// control or bidi character, which no address has.
pub fn echoed_email(raw: &str) -> &str {
    let s = raw.trim();
    if authara_core::domain::has_forbidden_char(s) {
        return "";
    }
    let mut end = s.len().min(MAX_EMAIL_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// After a successful login or signup: the session cookies and a redirect to `return_to`.
pub fn signed_in_redirect(
    state: &AppState,
    htmx: bool,
    issued: &authara_core::session::Issued,
    return_to: Option<authara_core::domain::ReturnTo>,
) -> Response {
    let mut out = HeaderMap::new();
    set_session_cookies(state.cookies, issued, &mut out);
    let to = return_to.unwrap_or_else(authara_core::domain::ReturnTo::root);
    super::respond::redirect(htmx, to.as_str(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_limit_keys_are_bounded() {
        assert_eq!(email_limit_key("  Ada@Example.COM "), "ada@example.com");
        let longest = format!("{}@example.com", "a".repeat(MAX_EMAIL_LEN - 12));
        assert_eq!(email_limit_key(&longest), longest);
        let huge = format!("{}@example.com", "a".repeat(64 * 1024));
        assert_eq!(email_limit_key(&huge), UNUSABLE_EMAIL_KEY);
        assert_eq!(email_limit_key(&format!("a{longest}")), UNUSABLE_EMAIL_KEY);
        // Lowercasing 'İ' (2 bytes) gives 3 bytes: the key is bounded after normalising too.
        assert_eq!(email_limit_key(&"İ".repeat(100)), UNUSABLE_EMAIL_KEY);
        for hostile in [
            "ada\0@example.com",
            "ada@exa\nmple.com",
            "ada\u{202e}@example.com",
        ] {
            assert_eq!(email_limit_key(hostile), UNUSABLE_EMAIL_KEY, "{hostile:?}");
        }
    }

    #[test]
    fn echoed_emails_are_trimmed_and_cut_on_a_character_boundary() {
        assert_eq!(echoed_email("  Ada@example.com "), "Ada@example.com");
        assert_eq!(echoed_email(&"a".repeat(1000)).len(), MAX_EMAIL_LEN);
        // 254 is not a multiple of 3: the cut falls back to 252.
        let wide = "€".repeat(100);
        let echoed = echoed_email(&wide);
        assert_eq!(echoed.len(), 252);
        assert!(wide.starts_with(echoed));
        assert_eq!(echoed_email("a\0b@x.y"), "");
        assert_eq!(echoed_email("a\u{202E}b@x.y"), "");
    }
}
