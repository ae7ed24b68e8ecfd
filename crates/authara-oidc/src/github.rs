//! GitHub sign-in: plain OAuth2 (GitHub issues no ID token) with PKCE, then its REST API for who
//! signed in. The subject is the numeric user id (a login can be renamed and reused, the id
//! cannot); the email is the **primary and verified** one of `GET /user/emails`, or none, never
//! the public profile email (which the user types and GitHub does not verify).
//!
//! The base URLs are settings so that GitHub Enterprise Server (`https://ghe.example` and
//! `https://ghe.example/api/v3`) and the tests' local GitHub work as github.com does.

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::code_flow::{
    bounded_body, describe, exchange, AuthorizationEndpoint, ClientAuth, ClientSettings, FlowError,
    ProviderUser,
};

/// github.com's web base.
pub const GITHUB_WEB: &str = "https://github.com";
/// github.com's API base.
pub const GITHUB_API: &str = "https://api.github.com";

/// GitHub (or a GitHub Enterprise Server) as a sign-in provider.
#[derive(Debug)]
pub struct GitHubProvider {
    settings: ClientSettings,
    authorize: Url,
    token: Url,
    api: Url,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

/// `base` with `path` appended to its path.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

impl GitHubProvider {
    /// GitHub at `web` (its sign-in pages) and `api` (its REST API), for the client `settings`.
    pub fn new(settings: ClientSettings, web: &Url, api: &Url, client: reqwest::Client) -> Self {
        Self {
            settings,
            authorize: join(web, "login/oauth/authorize"),
            token: join(web, "login/oauth/access_token"),
            api: api.clone(),
            client,
        }
    }

    /// The authorization endpoint (GitHub has no nonce: the state, bound to the browser, and
    /// PKCE carry the flow).
    pub fn authorization_endpoint(&self) -> AuthorizationEndpoint<'_> {
        AuthorizationEndpoint {
            settings: &self.settings,
            endpoint: self.authorize.clone(),
            nonce: false,
        }
    }

    /// Exchanges `code`, then reads the user and their primary verified email.
    pub async fn finish(&self, code: &str, verifier: &str) -> Result<ProviderUser, FlowError> {
        let request = self.settings.token_request(
            &self.client,
            &self.token,
            code,
            verifier,
            ClientAuth::Post,
        );
        let token = exchange(request).await?;
        let access = token
            .access_token
            .filter(|t| !t.is_empty() && t.len() <= 4096)
            .ok_or_else(|| FlowError::Refused("no access_token in the token response".into()))?;
        let user: User = self.get(&access, "user").await?;
        let emails: Vec<Email> = self.get(&access, "user/emails").await?;
        let email = emails
            .into_iter()
            .find(|e| e.primary && e.verified && e.email.len() <= crate::id_token::MAX_EMAIL)
            .map(|e| e.email);
        Ok(ProviderUser {
            subject: user.id.to_string(),
            email_verified: email.is_some(),
            email,
            name: user.name.filter(|n| n.len() <= 256),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        access: &str,
        path: &str,
    ) -> Result<T, FlowError> {
        let response = self
            .client
            .get(join(&self.api, path))
            .bearer_auth(access)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| FlowError::Unavailable(describe(&e)))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(FlowError::Refused(format!(
                "GitHub API HTTP {}",
                status.as_u16()
            )));
        }
        if status != StatusCode::OK {
            return Err(FlowError::Unavailable(format!(
                "GitHub API HTTP {}",
                status.as_u16()
            )));
        }
        let body = bounded_body(response).await?;
        serde_json::from_slice(&body).map_err(|_| {
            FlowError::Unavailable("GitHub's answer is not what its API documents".into())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_under_a_base_with_or_without_a_path() {
        let web = Url::parse("https://github.com").unwrap();
        assert_eq!(
            join(&web, "login/oauth/authorize").as_str(),
            "https://github.com/login/oauth/authorize"
        );
        let ghe = Url::parse("https://ghe.example/api/v3/").unwrap();
        assert_eq!(
            join(&ghe, "user/emails").as_str(),
            "https://ghe.example/api/v3/user/emails"
        );
    }
}
