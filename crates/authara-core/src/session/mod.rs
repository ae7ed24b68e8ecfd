//! Sessions: issuing tokens, refreshing with rotation and reuse detection, revoking,
//! and authenticating access tokens against live sessions (SPEC §6).

pub mod cache;
pub mod store;

use self::store::{
    EffectsFor, LiveSession, NewRefreshToken, NewSession, PurgeCounts, RefreshTokenRecord,
    Replacement, RotateIf, SessionStore, TokenHash,
};
use crate::audit::{Actor, AuditAction, NewAuditEntry, RequestContext};
use crate::auth::store::UserRecord;
use crate::clock::Clock;
use crate::jwt::{AccessClaims, Audience, JwtKeys, ADMIN_ROLE};
use crate::random::{token_256, uuid_v4, Random, SecretToken};
use crate::store::{ActiveOrganization, Effects, StoreError};
use cache::SessionCache;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Longest refresh token we hash; real ones are 43 characters.
const MAX_REFRESH_TOKEN_LEN: usize = 256;

/// When refresh tokens are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// On every refresh.
    Always,
    /// Once the presented token is older than this.
    After(Duration),
    /// Never.
    Off,
}

/// Lifetimes and the rotation policy.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub access_ttl: Duration,
    pub session_ttl: Duration,
    pub refresh_ttl: Duration,
    pub rotation: Rotation,
    pub reuse_grace: Duration,
    /// Live sessions a user may hold; a new one revokes the oldest beyond it.
    pub max_sessions_per_user: u32,
}

/// A signed access token and how long its cookie lives. `Debug` redacts the token: it is a bearer
/// credential.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    pub max_age: Duration,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &format_args!("<redacted>"))
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// A new refresh token (plaintext, for the cookie) and when it expires.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub token: SecretToken,
    pub expires_at: OffsetDateTime,
    /// Seconds from issue until `expires_at`: the cookie's `Max-Age`.
    pub max_age: Duration,
}

/// What a login, signup or refresh hands to the client.
#[derive(Debug, Clone)]
pub struct Issued {
    pub session_id: Uuid,
    pub access: AccessToken,
    pub refresh: IssuedRefresh,
    /// The organization the access token is for.
    pub organization: ActiveOrganization,
}

/// The refresh token a client holds after a login, signup or refresh.
#[derive(Debug, Clone)]
pub enum IssuedRefresh {
    /// A new token: a login or signup, or a refresh that rotated.
    New(RefreshToken),
    /// The presented token, still valid (a refresh that did not rotate), with its true remaining
    /// lifetime: the cookie is set again so that both cookies come with every success.
    Kept(RefreshToken),
    /// The presented token was consumed by a concurrent refresh a moment ago (within the reuse
    /// grace window): the client must keep the newer token it got from that refresh, so a
    /// browser's refresh cookie is left alone.
    Superseded,
}

impl IssuedRefresh {
    /// The token the client should hold from now on, when this answer knows it.
    pub fn token(&self) -> Option<&RefreshToken> {
        match self {
            Self::New(t) | Self::Kept(t) => Some(t),
            Self::Superseded => None,
        }
    }
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Invalid, expired, revoked or reused token: 401 and cleared cookies.
    #[error("refresh token is not valid")]
    Invalid,
    /// `admin` audience asked for by a non-admin: 401, nothing consumed or cleared.
    #[error("admin audience refused")]
    NotAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing failed")]
    Signing,
}

/// Why a session could not be started or a token issued: internal failures only, since the
/// caller has already decided that the user may have them.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The user is not a member of the organization asked for or, for the default, of any:
    /// no session can be started.
    #[error("no membership to start a session in")]
    NoMembership,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing failed")]
    Signing,
}

impl From<IssueError> for RefreshError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::NoMembership => Self::Invalid,
            IssueError::Store(s) => Self::Store(s),
            IssueError::Signing => Self::Signing,
        }
    }
}

/// Why an access token did not authenticate.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Bad token, expired token, or a session that is no longer live.
    #[error("not authenticated")]
    Unauthenticated,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An authenticated request: the verified claims, the user as stored now and the session's
/// organization with the user's role there now (a role changed since the token was signed shows
/// here at once). `Debug` names the user by id only: the record holds the password hash.
#[derive(Clone)]
pub struct Authenticated {
    pub claims: AccessClaims,
    pub user: Arc<UserRecord>,
    pub organization: Arc<ActiveOrganization>,
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("claims", &self.claims)
            .field("user_id", &self.user.id)
            .field("organization", &self.organization)
            .finish_non_exhaustive()
    }
}

/// Why switching organizations failed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The caller is not a member there (or the session died meanwhile).
    #[error("not a member of that organization")]
    NotMember,
    #[error(transparent)]
    Issue(#[from] IssueError),
}

impl From<StoreError> for SwitchError {
    fn from(e: StoreError) -> Self {
        Self::Issue(IssueError::Store(e))
    }
}

/// What the refresh rules say of a token that is not invalid.
enum Verdict {
    /// Consumed before, `at` then: the grace window or reuse detection decides.
    Consumed { at: OffsetDateTime },
    /// Refreshes; rotates when `rotate`.
    Refresh { rotate: bool },
}

/// The session service.
#[derive(Clone)]
pub struct SessionService {
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    keys: Arc<JwtKeys>,
    policy: SessionPolicy,
    cache: Arc<SessionCache>,
}

/// SHA-256 of a refresh token, as stored.
pub fn hash_refresh_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The hash of a refresh token presented by a client; `None` for an empty or oversized one,
/// which can match nothing and is not worth hashing.
fn presented_hash(presented: &str) -> Option<TokenHash> {
    (!presented.is_empty() && presented.len() <= MAX_REFRESH_TOKEN_LEN)
        .then(|| hash_refresh_token(presented))
}

/// A user's roles: `["authara:admin"]` for administrators, else none.
pub fn role_names(user: &UserRecord) -> &'static [&'static str] {
    if user.is_admin {
        &[ADMIN_ROLE]
    } else {
        &[]
    }
}

/// The roles claim for a user.
pub fn roles_of(user: &UserRecord) -> Vec<String> {
    role_names(user).iter().map(|r| (*r).to_owned()).collect()
}

impl SessionService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        keys: Arc<JwtKeys>,
        policy: SessionPolicy,
        cache: Arc<SessionCache>,
    ) -> Self {
        Self {
            store,
            clock,
            random,
            keys,
            policy,
            cache,
        }
    }

    /// Tells the live-session cache that a user changed (or is gone) in this process, before
    /// the caller returns; call it whatever the outcome of the change.
    pub(crate) fn user_changed(&self, user_id: Uuid) {
        self.cache.evict_user(user_id);
    }

    /// Tells the live-session cache that an organization changed (renamed) in this process:
    /// the cached sessions acting in it show the old name.
    pub fn organization_changed(&self, organization_id: Uuid) {
        self.cache.evict_organization(organization_id);
    }

    /// Starts a session for a user who just proved who they are, with an access token for
    /// `audience` (the caller has checked that the user may have it), acting in `organization`
    /// (`None`: the user's default organization).
    pub async fn start(
        &self,
        user: &UserRecord,
        audience: Audience,
        organization: Option<Uuid>,
        user_agent: &str,
        client_ip: &str,
    ) -> Result<Issued, IssueError> {
        let now = self.clock.now();
        let session = NewSession {
            id: uuid_v4(&*self.random),
            user_id: user.id,
            user_agent: crate::domain::sanitise(user_agent, MAX_USER_AGENT_BYTES),
            client_ip: crate::domain::sanitise(client_ip, MAX_CLIENT_IP_BYTES),
            created_at: now,
            expires_at: now + self.policy.session_ttl,
            max_live_per_user: self.policy.max_sessions_per_user.max(1),
            organization_id: organization,
        };
        let (token, plain) = self.new_refresh_token(session.id, now, session.expires_at);
        let refresh = RefreshToken {
            token: plain,
            expires_at: token.expires_at,
            max_age: token.expires_at - now,
        };
        let (session_id, session_expiry) = (session.id, session.expires_at);
        let created = self.store.create_session(session, token).await;
        // The insert may have revoked older sessions of this user (the cap): forget what this
        // process cached of them, whatever the outcome (other instances hear the revocation
        // from the change feed).
        self.cache.evict_user(user.id);
        let organization = match created {
            Ok(org) => org,
            Err(StoreError::NotFound) => return Err(IssueError::NoMembership),
            Err(e) => return Err(e.into()),
        };
        let access = self.access_token(
            user,
            &organization,
            session_id,
            audience,
            now,
            session_expiry,
        )?;
        Ok(Issued {
            session_id,
            access,
            refresh: IssuedRefresh::New(refresh),
            organization,
        })
    }

    /// Moves the caller's session to another organization where they are a member: the
    /// session's refresh tokens are replaced by a new one and a new access token is signed for
    /// `audience` (the caller has checked that the user may have it).
    pub async fn switch_organization(
        &self,
        auth: &Authenticated,
        organization_id: Uuid,
        audience: Audience,
    ) -> Result<Issued, SwitchError> {
        let now = self.clock.now();
        let session_id = auth.claims.sid;
        let (token, plain) = self.new_refresh_token(session_id, now, now + self.policy.refresh_ttl);
        let switched = self
            .store
            .switch_session_organization(session_id, auth.user.id, organization_id, token, now)
            .await;
        self.cache.evict_session(session_id);
        let switched = switched?.ok_or(SwitchError::NotMember)?;
        let access = self.access_token(
            &auth.user,
            &switched.organization,
            session_id,
            audience,
            now,
            switched.session_expires_at,
        )?;
        let expires_at = switched.token_expires_at;
        Ok(Issued {
            session_id,
            access,
            refresh: IssuedRefresh::New(RefreshToken {
                token: plain,
                expires_at,
                max_age: expires_at - now,
            }),
            organization: switched.organization,
        })
    }

    /// Refreshes a session with the presented refresh token (SPEC §6).
    pub async fn refresh(
        &self,
        presented: &str,
        audience: Audience,
    ) -> Result<Issued, RefreshError> {
        let hash = presented_hash(presented).ok_or(RefreshError::Invalid)?;
        let now = self.clock.now();
        // The rules below decide; `rotate_if` asks the store to rotate in the same round trip
        // as the lookup exactly when they will say "rotate", so the common refresh is one
        // round trip. They must agree: see the last arm of the match.
        let rotate_if = self.rotate_if(now, audience);
        let (record, rotated) = match rotate_if {
            Some(rotate_if) => {
                let plain = token_256(&*self.random);
                let replacement = Replacement {
                    id: uuid_v4(&*self.random),
                    token_hash: hash_refresh_token(plain.expose()),
                    expires_at: now + self.policy.refresh_ttl,
                };
                let found = self
                    .store
                    .rotate_refresh_token(&hash, rotate_if, replacement)
                    .await?
                    .ok_or(RefreshError::Invalid)?;
                (found.record, found.rotated.map(|exp| (plain, exp)))
            }
            None => {
                let record = self
                    .store
                    .find_refresh_token(&hash)
                    .await?
                    .ok_or(RefreshError::Invalid)?;
                (record, None)
            }
        };
        let rotation_due = match self.verdict(&record, audience, now, rotate_if)? {
            Verdict::Consumed { at } => {
                return self.refresh_consumed(&record, at, audience, now).await
            }
            Verdict::Refresh { rotate } => rotate,
        };
        let session_expiry = record.session.expires_at;
        let refresh = match (rotation_due, rotated) {
            (true, Some((token, expires_at))) => IssuedRefresh::New(RefreshToken {
                token,
                expires_at,
                max_age: expires_at - now,
            }),
            (false, None) => IssuedRefresh::Kept(RefreshToken {
                token: SecretToken::presented(presented),
                expires_at: record.expires_at,
                max_age: record.expires_at - now,
            }),
            // A concurrent request consumed the token between our read and our update: judge
            // this one as a presentation of a consumed token, which within the grace window
            // still succeeds.
            (true, None) => {
                let record = self
                    .store
                    .find_refresh_token(&hash)
                    .await?
                    .ok_or(RefreshError::Invalid)?;
                return match self.verdict(&record, audience, now, rotate_if)? {
                    Verdict::Consumed { at } => {
                        self.refresh_consumed(&record, at, audience, now).await
                    }
                    // Still unconsumed: the store refused a rotation the rules allow.
                    Verdict::Refresh { .. } => {
                        tracing::error!(
                            session_id = %record.session_id,
                            "store did not rotate a rotatable refresh token"
                        );
                        Err(RefreshError::Invalid)
                    }
                };
            }
            // The store rotated a token the rules refuse: a bug in a backend. Fail closed; the
            // replacement's plaintext is dropped here, so it can never be used.
            (false, Some(_)) => {
                tracing::error!(
                    session_id = %record.session_id,
                    "store rotated a refresh token the rules refuse"
                );
                return Err(RefreshError::Invalid);
            }
        };
        let organization = record.organization.clone().ok_or(RefreshError::Invalid)?;
        let access = self.access_token(
            &record.user,
            &organization,
            record.session_id,
            audience,
            now,
            session_expiry,
        )?;
        Ok(Issued {
            session_id: record.session_id,
            access,
            refresh,
            organization,
        })
    }

    /// What the rotation policy lets the store rotate at `now`; `None` when it never rotates.
    fn rotate_if(&self, now: OffsetDateTime, audience: Audience) -> Option<RotateIf> {
        let created_at_most = match self.policy.rotation {
            Rotation::Always => None,
            Rotation::After(age) => Some(now.checked_sub(age)?),
            Rotation::Off => return None,
        };
        Some(RotateIf {
            now,
            created_at_most,
            admin_only: audience == Audience::Admin,
        })
    }

    /// The refresh rules (SPEC §6) applied to a token as read: a dead session, a disabled user
    /// or an expired token is invalid; the `admin` audience needs an admin; a consumed token
    /// is judged by [`Self::refresh_consumed`]; otherwise the token refreshes, and rotates when
    /// `rotate_if` allows its age.
    fn verdict(
        &self,
        record: &RefreshTokenRecord,
        audience: Audience,
        now: OffsetDateTime,
        rotate_if: Option<RotateIf>,
    ) -> Result<Verdict, RefreshError> {
        // A session whose user left its organization refreshes no more (the store does not
        // rotate it either): the user signs in again, into an organization they belong to.
        let live = record.session.revoked_at.is_none()
            && record.session.expires_at > now
            && !record.user.disabled
            && record.organization.is_some();
        if !live {
            return Err(RefreshError::Invalid);
        }
        if audience == Audience::Admin && !record.user.is_admin {
            return Err(RefreshError::NotAdmin);
        }
        if let Some(at) = record.consumed_at {
            return Ok(Verdict::Consumed { at });
        }
        if record.expires_at <= now {
            return Err(RefreshError::Invalid);
        }
        let rotate = rotate_if.is_some_and(|r| {
            r.created_at_most
                .is_none_or(|most| record.created_at <= most)
        });
        Ok(Verdict::Refresh { rotate })
    }

    /// A token consumed at `consumed_at` presented again: inside the grace window, a new access
    /// token only; after it, reuse: the whole session is revoked. The revocation is its own store
    /// call, so no later failure can roll it back.
    async fn refresh_consumed(
        &self,
        record: &RefreshTokenRecord,
        consumed_at: OffsetDateTime,
        audience: Audience,
        now: OffsetDateTime,
    ) -> Result<Issued, RefreshError> {
        if now - consumed_at <= self.policy.reuse_grace && record.expires_at > consumed_at {
            let organization = record.organization.clone().ok_or(RefreshError::Invalid)?;
            let access = self.access_token(
                &record.user,
                &organization,
                record.session_id,
                audience,
                now,
                record.session.expires_at,
            )?;
            return Ok(Issued {
                session_id: record.session_id,
                access,
                refresh: IssuedRefresh::Superseded,
                organization,
            });
        }
        tracing::warn!(
            session_id = %record.session_id,
            user_id = %record.user.id,
            "refresh token reuse detected; revoking the session"
        );
        let audit = NewAuditEntry::new(
            uuid_v4(&*self.random),
            now,
            AuditAction::RefreshTokenReuse,
            Actor::System,
        )
        .about(record.user.id, &record.user.email)
        .with("session_id", record.session_id.to_string());
        self.revoke_session(record.session_id, None, now, Effects::none().audit(audit))
            .await?;
        Err(RefreshError::Invalid)
    }

    /// Logout: revokes the session of the refresh token or, without a usable one, the session
    /// named by a valid access token. Unknown tokens are not an error.
    pub async fn logout(
        &self,
        refresh: Option<&str>,
        access: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        if let Some(hash) = refresh.and_then(presented_hash) {
            if let Some(rec) = self.store.find_refresh_token(&hash).await? {
                self.revoke_session(rec.session_id, None, now, Effects::none())
                    .await?;
                return Ok(());
            }
        }
        if let Some(claims) = access.and_then(|a| self.keys.verify(a, now).ok()) {
            self.revoke_session(claims.sid, Some(claims.sub), now, Effects::none())
                .await?;
        }
        Ok(())
    }

    /// After a login from a browser that still held a refresh token: revokes that token's
    /// session (the browser's previous one, whose cookies the login replaces), unless it is
    /// `new_session` itself. Unknown or malformed tokens are not an error.
    pub async fn revoke_replaced(
        &self,
        previous_refresh: &str,
        new_session: Uuid,
    ) -> Result<(), StoreError> {
        let Some(hash) = presented_hash(previous_refresh) else {
            return Ok(());
        };
        if let Some(rec) = self.store.find_refresh_token(&hash).await? {
            if rec.session_id != new_session {
                self.revoke_session(rec.session_id, None, self.clock.now(), Effects::none())
                    .await?;
            }
        }
        Ok(())
    }

    /// Verifies an access token and checks that its session is live right now, answering from
    /// the live-session cache when it can (see [`cache`] for why that is still "right now").
    pub async fn authenticate(&self, access: &str) -> Result<Authenticated, AuthError> {
        let now = self.clock.now();
        let claims = self.verify_access(access, now)?;
        if let Some((user, organization)) = self.cache.get(claims.sid, claims.sub, now) {
            // The token must be for the organization the session acts in now (an access token
            // signed before a switch is not).
            if organization.id != claims.org_id {
                return Err(AuthError::Unauthenticated);
            }
            return Ok(Authenticated {
                claims,
                user,
                organization,
            });
        }
        let ticket = self.cache.ticket();
        let (user, organization) = self.live_user(&claims, now).await?;
        let bound = OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now);
        self.cache.insert(
            ticket,
            claims.sid,
            user.clone(),
            organization.clone(),
            now,
            bound,
        );
        if organization.id != claims.org_id {
            return Err(AuthError::Unauthenticated);
        }
        Ok(Authenticated {
            claims,
            user,
            organization,
        })
    }

    /// Like [`SessionService::authenticate`], always asking the database: for decisions that
    /// must see another process's changes at once (administrator rights).
    pub async fn authenticate_fresh(&self, access: &str) -> Result<Authenticated, AuthError> {
        let now = self.clock.now();
        let claims = self.verify_access(access, now)?;
        let (user, organization) = self.live_user(&claims, now).await?;
        if organization.id != claims.org_id {
            return Err(AuthError::Unauthenticated);
        }
        Ok(Authenticated {
            claims,
            user,
            organization,
        })
    }

    /// Whether `access` is a validly signed, unexpired access token of ours (the signature and
    /// claims only; whether its session is live is [`Self::authenticate`]'s question).
    pub fn is_signed_access_token(&self, access: &str) -> bool {
        self.verify_access(access, self.clock.now()).is_ok()
    }

    /// The claims of a valid access token.
    fn verify_access(&self, access: &str, now: OffsetDateTime) -> Result<AccessClaims, AuthError> {
        self.keys
            .verify(access, now)
            .map_err(|_| AuthError::Unauthenticated)
    }

    /// The user of the claims' session and the session's organization, read from the
    /// database, if that session is live at `now` and theirs.
    async fn live_user(
        &self,
        claims: &AccessClaims,
        now: OffsetDateTime,
    ) -> Result<(Arc<UserRecord>, Arc<ActiveOrganization>), AuthError> {
        let found = self
            .store
            .find_live_session_user(claims.sid, claims.sub, now)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        Ok((Arc::new(found.user), Arc::new(found.organization)))
    }

    /// Revokes one of `owner`'s sessions; `false` when it is not theirs (or does not exist).
    /// Audited as `user.session_revoked`, with the request's context.
    pub async fn revoke(
        &self,
        owner: &UserRecord,
        session_id: Uuid,
        context: &RequestContext,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let audit = NewAuditEntry::new(
            uuid_v4(&*self.random),
            now,
            AuditAction::SessionRevoked,
            Actor::User(owner.id),
        )
        .about(owner.id, &owner.email)
        .with("session_id", session_id.to_string())
        .from_request(context);
        self.revoke_session(
            session_id,
            Some(owner.id),
            now,
            Effects::none().audit(audit),
        )
        .await
    }

    /// Revokes every live session of `owner` but `keep` (the caller's own) in one store call,
    /// audited as `user.sessions_revoked` with the count in the metadata (no row when there was
    /// nothing to revoke). Returns the count. This process's cache forgets the user's sessions
    /// before it returns, whatever the outcome.
    pub async fn revoke_others(
        &self,
        owner: &UserRecord,
        keep: Uuid,
        context: &RequestContext,
    ) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let entry = NewAuditEntry::new(
            uuid_v4(&*self.random),
            now,
            AuditAction::SessionsRevoked,
            Actor::User(owner.id),
        )
        .about(owner.id, &owner.email)
        .with("kept_session_id", keep.to_string())
        .from_request(context);
        let effects: EffectsFor =
            Box::new(move |count| Effects::none().audit(entry.with("count", count)));
        let revoked = self
            .store
            .revoke_other_sessions(owner.id, keep, now, effects)
            .await;
        self.cache.evict_user(owner.id);
        revoked
    }

    /// Revokes a session (only if `owner`'s, when given) and evicts it from the cache before
    /// returning, also when the store failed: the revocation may have committed all the same.
    async fn revoke_session(
        &self,
        session_id: Uuid,
        owner: Option<Uuid>,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError> {
        let revoked = self
            .store
            .revoke_session(session_id, owner, now, effects)
            .await;
        self.cache.evict_session(session_id);
        revoked
    }

    /// The user's live sessions, newest first.
    pub async fn list(&self, user_id: Uuid) -> Result<Vec<LiveSession>, StoreError> {
        self.store
            .list_live_sessions(user_id, self.clock.now())
            .await
    }

    /// Removes expired sessions and tokens.
    pub async fn purge(&self) -> Result<PurgeCounts, StoreError> {
        self.store.purge_expired(self.clock.now()).await
    }

    fn new_refresh_token(
        &self,
        session_id: Uuid,
        now: OffsetDateTime,
        session_expiry: OffsetDateTime,
    ) -> (NewRefreshToken, SecretToken) {
        let plain = token_256(&*self.random);
        let token = NewRefreshToken {
            id: uuid_v4(&*self.random),
            session_id,
            token_hash: hash_refresh_token(plain.expose()),
            created_at: now,
            expires_at: (now + self.policy.refresh_ttl).min(session_expiry),
        };
        (token, plain)
    }

    fn access_token(
        &self,
        user: &UserRecord,
        organization: &ActiveOrganization,
        session_id: Uuid,
        audience: Audience,
        now: OffsetDateTime,
        session_expiry: OffsetDateTime,
    ) -> Result<AccessToken, IssueError> {
        let exp = (now + self.policy.access_ttl).min(session_expiry);
        let claims = AccessClaims {
            iss: self.keys.issuer().to_owned(),
            sub: user.id,
            aud: vec![audience.as_str().to_owned()],
            iat: now.unix_timestamp(),
            exp: exp.unix_timestamp(),
            sid: session_id,
            org_id: organization.id,
            org_role: organization.role,
            roles: roles_of(user),
        };
        let token = self.keys.sign(&claims).map_err(|_| IssueError::Signing)?;
        Ok(AccessToken {
            token,
            max_age: exp - now,
        })
    }
}

/// Most bytes of a user agent recorded on a session; control and bidi characters are replaced
/// by U+FFFD first.
pub const MAX_USER_AGENT_BYTES: usize = 512;
/// Most bytes of a client address recorded on a session.
pub const MAX_CLIENT_IP_BYTES: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_presented_tokens_of_a_plausible_length_are_hashed() {
        assert_eq!(presented_hash(""), None);
        assert_eq!(presented_hash(&"a".repeat(MAX_REFRESH_TOKEN_LEN + 1)), None);
        let longest = "a".repeat(MAX_REFRESH_TOKEN_LEN);
        assert_eq!(presented_hash(&longest), Some(hash_refresh_token(&longest)));
        assert_eq!(presented_hash("x"), Some(hash_refresh_token("x")));
    }

    #[test]
    fn debug_shows_neither_the_access_token_nor_the_password_hash() {
        let access = AccessToken {
            token: "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl".into(),
            max_age: Duration::minutes(10),
        };
        let s = format!("{access:?}");
        assert!(s.contains("<redacted>") && !s.contains("eyJ"), "{s}");

        let user = UserRecord {
            id: Uuid::nil(),
            email: "someone@example.com".into(),
            username: "someone".into(),
            password_hash: Some("$argon2id$v=19$m=256,t=1,p=1$c2FsdA$aGFzaA".into()),
            is_admin: false,
            disabled: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let auth = Authenticated {
            claims: AccessClaims {
                iss: "authara".into(),
                sub: user.id,
                aud: vec!["app".into()],
                iat: 0,
                exp: 600,
                sid: Uuid::nil(),
                org_id: Uuid::from_u128(1),
                org_role: crate::org::OrgRole::Owner,
                roles: vec![],
            },
            user: Arc::new(user),
            organization: Arc::new(ActiveOrganization {
                id: Uuid::from_u128(1),
                name: "someone".into(),
                role: crate::org::OrgRole::Owner,
            }),
        };
        let s = format!("{auth:?}");
        assert!(!s.contains("argon2id") && !s.contains("someone@"), "{s}");
    }
}
