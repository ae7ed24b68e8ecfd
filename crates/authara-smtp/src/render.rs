//! The outbox's templates, rendered with askama: a plain-text and an HTML part for each, the
//! HTML escaped by askama (the files under `templates/`), and upstream's subjects.
//!
//! A code email links to `{PUBLIC_URL}/auth/verify-challenge/{action}?challenge_id={id}`, the page
//! where the code is typed; the link never carries the code, so a mail scanner that follows
//! links cannot use it.

use askama::Template as _;
use authara_core::challenge::code::Code;
use authara_core::challenge::store::Purpose;
use authara_core::invitation::service::INVITATION_TEMPLATE;
use authara_core::mail::EMAIL_CHANGED_NOTICE;
use std::borrow::Cow;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

/// The templates the worker knows, by their outbox names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// A challenge's code: `signup_code`, `password_reset_code` or `email_change_code`.
    Code(Purpose),
    /// `email_changed_notice` (ours): the old address is told about an email change.
    EmailChangedNotice,
    /// `organization_invitation`: the link of an invitation to join an organization.
    Invitation,
}

impl Template {
    /// The template with this outbox name.
    pub fn parse(name: &str) -> Option<Self> {
        if name == EMAIL_CHANGED_NOTICE {
            return Some(Self::EmailChangedNotice);
        }
        if name == INVITATION_TEMPLATE {
            return Some(Self::Invitation);
        }
        Purpose::ALL
            .into_iter()
            .find(|p| p.template() == name)
            .map(Self::Code)
    }

    /// The subject of the templates whose subject is fixed (upstream's, for the code emails);
    /// an invitation's names its organization ([`invitation_subject`]). No control characters.
    pub fn subject(self) -> &'static str {
        match self {
            Self::Invitation => "You're invited",
            Self::Code(Purpose::Signup) => "Your verification code",
            Self::Code(Purpose::PasswordReset) => "Your password reset code",
            Self::Code(Purpose::EmailChange) => "Verify your new email address",
            Self::EmailChangedNotice => "Your email address was changed",
        }
    }
}

/// What a template is filled with.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    /// A challenge's code.
    Code {
        purpose: Purpose,
        challenge_id: Uuid,
        code: &'a Code,
        /// How long the code is accepted, in whole minutes (at least 1).
        valid_minutes: u64,
        /// `PUBLIC_URL`, without a trailing slash.
        public_url: &'a str,
    },
    /// An invitation's link (with its token: a secret).
    Invitation {
        organization_name: &'a str,
        invite_url: &'a str,
        /// `admin` or `member`.
        role: &'a str,
        expires_at: OffsetDateTime,
        /// The token itself, with `AUTHARA_INVITATION_EMAIL_INCLUDE_CODE=true`.
        invitation_code: Option<&'a str>,
    },
    /// The notice to the old address after an email change.
    EmailChanged {
        old_email: &'a str,
        new_email: &'a str,
        changed_at: OffsetDateTime,
        /// `PUBLIC_URL`, without a trailing slash.
        public_url: &'a str,
    },
}

/// A rendered message, ready for a [`crate::Email`].
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: Cow<'static, str>,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Rendered {
    /// The bodies may hold a code: only the subject is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a message could not be rendered; retrying cannot help.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The job's `template_data` is not what its template needs.
    #[error("the template data is invalid: {0}")]
    Data(&'static str),
    /// askama failed (a bug in a template).
    #[error("the template failed to render")]
    Template(#[from] askama::Error),
}

/// `template_data` of `email_changed_notice`.
#[derive(Debug, serde::Deserialize)]
struct NoticeData {
    old_email: String,
    new_email: String,
    changed_at: String,
}

/// The parts of an `email_changed_notice` job's `template_data` (a JSON object with
/// `old_email`, `new_email` and `changed_at` as RFC 3339).
pub fn notice_data(json: &str) -> Result<(String, String, OffsetDateTime), RenderError> {
    let data: NoticeData = serde_json::from_str(json).map_err(|_| {
        RenderError::Data("expected a JSON object with old_email, new_email and changed_at")
    })?;
    let changed_at = OffsetDateTime::parse(&data.changed_at, &Rfc3339)
        .map_err(|_| RenderError::Data("changed_at is not an RFC 3339 time"))?;
    Ok((data.old_email, data.new_email, changed_at))
}

/// The page a code email links to (without the code).
pub fn verify_link(public_url: &str, purpose: Purpose, challenge_id: Uuid) -> String {
    format!(
        "{}/auth/verify-challenge/{}?challenge_id={challenge_id}",
        public_url.trim_end_matches('/'),
        purpose.action()
    )
}

fn minutes(n: u64) -> String {
    if n == 1 {
        "1 minute".to_owned()
    } else {
        format!("{n} minutes")
    }
}

/// `2026-01-01 09:30 UTC`.
fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Renders `content`: its subject, text and HTML.
pub fn render(content: &Content<'_>) -> Result<Rendered, RenderError> {
    match *content {
        Content::Code {
            purpose,
            challenge_id,
            code,
            valid_minutes,
            public_url,
        } => {
            let link = verify_link(public_url, purpose, challenge_id);
            let v = CodeView {
                code: code.expose(),
                validity: minutes(valid_minutes.max(1)),
                link: &link,
            };
            let (text, html) = match purpose {
                Purpose::Signup => (
                    SignupCodeText { v: &v }.render()?,
                    SignupCodeHtml { v: &v }.render()?,
                ),
                Purpose::PasswordReset => (
                    PasswordResetCodeText { v: &v }.render()?,
                    PasswordResetCodeHtml { v: &v }.render()?,
                ),
                Purpose::EmailChange => (
                    EmailChangeCodeText { v: &v }.render()?,
                    EmailChangeCodeHtml { v: &v }.render()?,
                ),
            };
            Ok(Rendered {
                subject: Cow::Borrowed(Template::Code(purpose).subject()),
                text,
                html,
            })
        }
        Content::Invitation {
            organization_name,
            invite_url,
            role,
            expires_at,
            invitation_code,
        } => {
            let v = InvitationView {
                organization: organization_name,
                link: invite_url,
                role,
                expires_at: when(expires_at),
                code: invitation_code,
            };
            Ok(Rendered {
                subject: Cow::Owned(invitation_subject(organization_name)),
                text: InvitationText { v: &v }.render()?,
                html: InvitationHtml { v: &v }.render()?,
            })
        }
        Content::EmailChanged {
            old_email,
            new_email,
            changed_at,
            public_url,
        } => {
            let v = NoticeView {
                old_email,
                new_email,
                changed_at: when(changed_at),
                site: public_url.trim_end_matches('/'),
            };
            Ok(Rendered {
                subject: Cow::Borrowed(Template::EmailChangedNotice.subject()),
                text: NoticeText { v: &v }.render()?,
                html: NoticeHtml { v: &v }.render()?,
            })
        }
    }
}

/// Upstream's subject of an invitation, `You're invited to <organization>`, with the name's
/// control characters (which names refuse anyway) replaced and its length bounded, so that no
/// header can be injected and no subject runs on.
pub fn invitation_subject(organization_name: &str) -> String {
    const MAX_NAME_CHARS: usize = 200;
    let name: String = organization_name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_NAME_CHARS)
        .collect();
    format!("You're invited to {}", name.trim())
}

/// `template_data` of `organization_invitation`.
#[derive(Debug, serde::Deserialize)]
struct InvitationData {
    invitation_id: Uuid,
}

/// The invitation an `organization_invitation` job announces (its `template_data` is a JSON
/// object with `invitation_id`; the rest is read from the invitation itself when sending).
pub fn invitation_data(json: &str) -> Result<Uuid, RenderError> {
    if json.len() > 64 * 1024 {
        return Err(RenderError::Data("the template data is too large"));
    }
    let data: InvitationData = serde_json::from_str(json)
        .map_err(|_| RenderError::Data("expected a JSON object with invitation_id"))?;
    Ok(data.invitation_id)
}

/// What the invitation templates show.
struct InvitationView<'a> {
    organization: &'a str,
    link: &'a str,
    role: &'a str,
    expires_at: String,
    code: Option<&'a str>,
}

/// What every code template shows.
struct CodeView<'a> {
    code: &'a str,
    validity: String,
    link: &'a str,
}

struct NoticeView<'a> {
    old_email: &'a str,
    new_email: &'a str,
    changed_at: String,
    site: &'a str,
}

/// One askama template per file; each sees its view's fields directly.
macro_rules! template {
    ($name:ident, $path:literal, $view:ident) => {
        #[derive(askama::Template)]
        #[template(path = $path)]
        struct $name<'a> {
            v: &'a $view<'a>,
        }

        impl<'a> std::ops::Deref for $name<'a> {
            type Target = $view<'a>;
            fn deref(&self) -> &Self::Target {
                self.v
            }
        }
    };
}

template!(SignupCodeText, "signup_code.txt", CodeView);
template!(SignupCodeHtml, "signup_code.html", CodeView);
template!(PasswordResetCodeText, "password_reset_code.txt", CodeView);
template!(PasswordResetCodeHtml, "password_reset_code.html", CodeView);
template!(EmailChangeCodeText, "email_change_code.txt", CodeView);
template!(EmailChangeCodeHtml, "email_change_code.html", CodeView);
template!(NoticeText, "email_changed_notice.txt", NoticeView);
template!(NoticeHtml, "email_changed_notice.html", NoticeView);
template!(
    InvitationText,
    "organization_invitation.txt",
    InvitationView
);
template!(
    InvitationHtml,
    "organization_invitation.html",
    InvitationView
);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn code() -> Code {
        Code::parse("042917").unwrap()
    }

    fn id() -> Uuid {
        Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
    }

    fn code_content(purpose: Purpose, code: &Code, minutes: u64) -> Content<'_> {
        Content::Code {
            purpose,
            challenge_id: id(),
            code,
            valid_minutes: minutes,
            public_url: "https://auth.example.org/",
        }
    }

    #[test]
    fn template_names_are_upstreams_and_ours() {
        assert_eq!(
            Template::parse("signup_code"),
            Some(Template::Code(Purpose::Signup))
        );
        assert_eq!(
            Template::parse("password_reset_code"),
            Some(Template::Code(Purpose::PasswordReset))
        );
        assert_eq!(
            Template::parse("email_change_code"),
            Some(Template::Code(Purpose::EmailChange))
        );
        assert_eq!(
            Template::parse("email_changed_notice"),
            Some(Template::EmailChangedNotice)
        );
        assert_eq!(
            Template::parse("organization_invitation"),
            Some(Template::Invitation)
        );
        for unknown in ["", "Organization_invitation", "Signup_code", "signup_code "] {
            assert_eq!(Template::parse(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn an_invitation_subject_names_the_organization_on_one_bounded_line() {
        assert_eq!(invitation_subject("Acme"), "You're invited to Acme");
        let s = invitation_subject("Evil\r\nBcc: x@y.z");
        assert!(!s.chars().any(char::is_control), "{s:?}");
        assert!(invitation_subject(&"a".repeat(1000)).chars().count() < 250);
    }

    #[test]
    fn each_code_email_has_upstreams_subject_the_code_its_validity_and_a_link_without_the_code() {
        let code = code();
        for (purpose, subject, action) in [
            (Purpose::Signup, "Your verification code", "signup"),
            (
                Purpose::PasswordReset,
                "Your password reset code",
                "password-reset",
            ),
            (
                Purpose::EmailChange,
                "Verify your new email address",
                "email-change",
            ),
        ] {
            let r = render(&code_content(purpose, &code, 10)).unwrap();
            assert_eq!(r.subject, subject);
            assert!(!r.subject.chars().any(char::is_control));
            let link = format!(
                "https://auth.example.org/auth/verify-challenge/{action}?challenge_id={}",
                id()
            );
            for body in [&r.text, &r.html] {
                assert!(body.contains("042917"), "{body}");
                assert!(body.contains("10 minutes"), "{body}");
                assert!(body.contains(&link), "{body}");
                // The code appears once in each part, and never in a URL.
                assert_eq!(body.matches("042917").count(), 1, "{body}");
            }
            assert!(r.html.contains(&format!("href=\"{link}\"")), "{}", r.html);
            assert!(r.html.starts_with("<!DOCTYPE html>"));
            assert!(r.html.contains(&format!("<title>{subject}</title>")));
            assert!(!r.text.contains('<'), "{}", r.text);
            assert!(!format!("{r:?}").contains("042917"));
        }
    }

    #[test]
    fn validity_is_worded_in_minutes_and_never_zero() {
        let code = code();
        let r = render(&code_content(Purpose::Signup, &code, 1)).unwrap();
        assert!(r.text.contains("valid for 1 minute."), "{}", r.text);
        let r = render(&code_content(Purpose::Signup, &code, 0)).unwrap();
        assert!(r.text.contains("valid for 1 minute."), "{}", r.text);
        let r = render(&code_content(Purpose::Signup, &code, 30)).unwrap();
        assert!(r.html.contains("valid for 30 minutes."), "{}", r.html);
    }

    #[test]
    fn the_notice_names_both_addresses_and_escapes_them_in_html() {
        let changed_at = OffsetDateTime::from_unix_timestamp(1_767_259_800).unwrap();
        let r = render(&Content::EmailChanged {
            old_email: "ada@example.com",
            new_email: "<script>alert(1)</script>\"@evil.example",
            changed_at,
            public_url: "https://auth.example.org",
        })
        .unwrap();
        assert_eq!(r.subject, "Your email address was changed");
        assert!(r.text.contains("ada@example.com"));
        assert!(r.text.contains("<script>alert(1)</script>\"@evil.example"));
        assert!(r.text.contains("2026-01-01 09:30 UTC"), "{}", r.text);
        assert!(r.text.contains("https://auth.example.org"));
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(
            r.html
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;&#34;@evil.example"),
            "{}",
            r.html
        );
        assert!(r.html.contains("<strong>ada@example.com</strong>"));
        assert!(r.html.contains("2026-01-01 09:30 UTC"));
    }

    #[test]
    fn html_parts_escape_what_they_are_given() {
        let code = code();
        let r = render(&Content::Code {
            purpose: Purpose::Signup,
            challenge_id: id(),
            code: &code,
            valid_minutes: 5,
            public_url: "https://auth.example.org/a\"b<c>&d",
        })
        .unwrap();
        assert!(
            r.html.contains(
                "https://auth.example.org/a&#34;b&#60;c&#62;&#38;d/auth/verify-challenge/signup"
            ),
            "{}",
            r.html
        );
        assert!(!r.html.contains("a\"b<c>"), "{}", r.html);
        assert!(r
            .text
            .contains("https://auth.example.org/a\"b<c>&d/auth/verify-challenge/signup"));
    }

    #[test]
    fn notice_data_is_read_from_the_stored_json() {
        let (old, new, at) = notice_data(
            r#"{"old_email":"a@example.com","new_email":"b@example.com","changed_at":"2026-01-01T09:30:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            (old.as_str(), new.as_str()),
            ("a@example.com", "b@example.com")
        );
        assert_eq!(at.unix_timestamp(), 1_767_259_800);
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"old_email":"a@example.com","new_email":"b@example.com"}"#,
            r#"{"old_email":"a@example.com","new_email":"b@example.com","changed_at":"yesterday"}"#,
        ] {
            assert!(
                matches!(notice_data(bad), Err(RenderError::Data(_))),
                "{bad:?}"
            );
        }
    }
}
