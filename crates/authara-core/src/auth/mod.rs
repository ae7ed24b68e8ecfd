//! Accounts: signup, login, username changes, deletion and administration.

pub mod delay;
mod external;
pub mod flow;
mod invited;
pub mod link;
pub mod password;
pub mod store;

pub use external::{
    ExternalIdentity, ExternalSignInError, LinkError, UnlinkError, PASSWORD_METHOD,
};
pub use invited::InvitedError;

use self::store::{NewUser, SessionsToRevoke, UserRecord};
use crate::audit::{Actor, AuditAction, NewAuditEntry, RequestContext};
use crate::clock::Clock;
use crate::domain::{Email, EmailError, Password, PasswordError, Username, UsernameError};
use crate::events::{EventType, Publisher};
use crate::jwt::Audience;
use crate::org::{self, OrgError, OrgMode, OrgRole};
use crate::random::{uuid_v4, Random};
use crate::session::{IssueError, Issued, SessionService};
use crate::store::{Effects, Store, StoreError, UniqueKey, UserDeletion, UserDeletionEffects};
use password::{HashError, PasswordHasher, Verification};
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// How many derived usernames signup tries before giving up.
const USERNAME_ATTEMPTS: usize = 8;

/// Where a login or signup comes from; recorded on the session.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub user_agent: &'a str,
    pub client_ip: &'a str,
}

/// Why a signup failed.
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The email is taken. Shown to the user only as "Could not create account".
    #[error("could not create account")]
    Duplicate,
    /// Password hashing is saturated: answer `503` with `Retry-After`; nothing was created.
    #[error("password hashing is busy")]
    Busy,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Email or password missing.
    #[error("email and password are required")]
    Empty,
    /// Unknown email, wrong password or password-less account: one error for all three.
    #[error("invalid email or password")]
    Invalid,
    /// The password was right but the account is disabled.
    #[error("account disabled")]
    Disabled,
    /// Password hashing is saturated: answer `503` with `Retry-After`; nothing was checked.
    #[error("password hashing is busy")]
    Busy,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// Why a username change failed.
#[derive(Debug, thiserror::Error)]
pub enum UsernameChangeError {
    #[error(transparent)]
    Invalid(#[from] UsernameError),
    #[error("username is taken")]
    Taken,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// Why a password change failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The new password is not acceptable; `Display` says why, for the user.
    #[error(transparent)]
    Invalid(#[from] PasswordError),
    /// The account has a password and the current one was not given.
    #[error("the current password is required")]
    CurrentRequired,
    /// The current password given is not the account's.
    #[error("the current password is incorrect")]
    WrongCurrent,
    /// Password hashing is saturated: answer `503` with `Retry-After`.
    #[error("password hashing is busy")]
    Busy,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// Why granting or revoking `authara:admin` failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminChangeError {
    /// No user has this email.
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Failed(#[from] StoreError),
}

/// How a login proved who the user is. Password, OIDC, passkeys and MFA each produce a
/// [`LoginOutcome`]; [`AuthService::start_session`] is the one way from it to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// A new account (signup) whose password was just set.
    Signup,
    /// Email and password.
    Password,
    /// An external identity (Google, an OpenID Connect provider) linked to the account.
    External,
}

/// An identity proven, not yet a session: what every sign-in method hands over.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub user: UserRecord,
    pub method: LoginMethod,
}

impl LoginOutcome {
    /// Whether this user may have access tokens for `audience`: `admin` only for
    /// administrators (SPEC §4).
    pub fn may_have(&self, audience: Audience) -> bool {
        audience == Audience::App || self.user.is_admin
    }
}

/// An internal failure (storage, hashing, signing); the user sees only a generic message.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] password::HashError),
    #[error("token signing failed")]
    Signing,
}

impl From<IssueError> for ServiceError {
    fn from(e: IssueError) -> Self {
        match e {
            // Only when even the initial organization could not be created (see
            // `AuthService::start_session`): an inconsistent database.
            IssueError::NoMembership => Self::Store(StoreError::NotFound),
            IssueError::Store(s) => Self::Store(s),
            IssueError::Signing => Self::Signing,
        }
    }
}

/// The account service.
#[derive(Clone)]
pub struct AuthService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    hasher: Arc<PasswordHasher>,
    sessions: SessionService,
    events: Publisher,
    mode: OrgMode,
}

impl AuthService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        hasher: Arc<PasswordHasher>,
        sessions: SessionService,
        mode: OrgMode,
    ) -> Self {
        let events = Publisher::off(random.clone());
        Self {
            store,
            clock,
            random,
            hasher,
            sessions,
            events,
            mode,
        }
    }

    /// Publishes the `user.*` domain events this service causes through `events` (by default
    /// none are written).
    pub fn with_events(mut self, events: Publisher) -> Self {
        self.events = events;
        self
    }

    /// Starts a session for an identity a sign-in method has proven, with an access token for
    /// `audience`. Disabled accounts are refused by the methods themselves, after their proof (so
    /// that a disabled account's answer reveals nothing before the password is right); so is an
    /// `admin` audience for a user who is no administrator ([`LoginOutcome::may_have`]).
    pub async fn start_session(
        &self,
        outcome: LoginOutcome,
        audience: Audience,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued), ServiceError> {
        self.start_session_in(outcome, audience, origin, None).await
    }

    /// [`Self::start_session`] acting in `organization` (a membership of the user's), or by
    /// default in the oldest personal organization, else the oldest one.
    pub async fn start_session_in(
        &self,
        outcome: LoginOutcome,
        audience: Audience,
        origin: Origin<'_>,
        organization: Option<Uuid>,
    ) -> Result<(UserRecord, Issued), ServiceError> {
        let start = || {
            self.sessions.start(
                &outcome.user,
                audience,
                organization,
                origin.user_agent,
                origin.client_ip,
            )
        };
        let issued = match start().await {
            Err(IssueError::NoMembership) => {
                // A user without any membership: created by an older version after this
                // database was upgraded (the start-up backfill gave everyone before it theirs).
                // Give them their initial organization now, once, and start again.
                self.ensure_initial_organization(&outcome.user).await?;
                start().await?
            }
            other => other?,
        };
        Ok((outcome.user, issued))
    }

    /// Creates `user`'s initial organization if they have no membership at all.
    async fn ensure_initial_organization(&self, user: &UserRecord) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let org = org::initial_organization(self.mode, &*self.random, &user.username, &user.email);
        let effects = org::creation_events(&self.events, &org, user.id, now);
        let created = self
            .store
            .ensure_initial_organization(user.id, org, now, effects)
            .await?;
        if created {
            tracing::info!(user_id = %user.id, "initial organization created at sign-in");
        }
        Ok(())
    }

    fn audit(&self, action: AuditAction, actor: Actor, user: &UserRecord) -> NewAuditEntry {
        NewAuditEntry::new(uuid_v4(&*self.random), self.clock.now(), action, actor)
            .about(user.id, &user.email)
    }

    fn user_event(&self, event_type: EventType, user_id: Uuid) -> Effects {
        match self.events.user(event_type, user_id, self.clock.now()) {
            Some(event) => Effects::none().event(event),
            None => Effects::none(),
        }
    }

    /// Creates an account with a password and starts its first session.
    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued), SignupError> {
        let email = Email::parse(email)?;
        let password = Password::parse_new(password)?;
        let hash = match self.hasher.hash(&password).await {
            Ok(hash) => hash,
            Err(HashError::Busy) => return Err(SignupError::Busy),
            Err(e) => return Err(ServiceError::from(e).into()),
        };
        let user = self.create_user(&email, Some(hash)).await?;
        let outcome = LoginOutcome {
            user,
            method: LoginMethod::Signup,
        };
        Ok(self.start_session(outcome, Audience::App, origin).await?)
    }

    /// Creates a user with a derived, unique username. `Duplicate` when the email is taken.
    pub async fn create_user(
        &self,
        email: &Email,
        password_hash: Option<String>,
    ) -> Result<UserRecord, SignupError> {
        let now = self.clock.now();
        let id = uuid_v4(&*self.random);
        for _ in 0..USERNAME_ATTEMPTS {
            let username = Username::derive(email.local_part(), &*self.random);
            let organization = org::initial_organization(
                self.mode,
                &*self.random,
                username.as_str(),
                email.as_str(),
            );
            let effects = self.user_event(EventType::UserCreated, id);
            let effects = effects.and(org::creation_events(&self.events, &organization, id, now));
            let new = NewUser {
                id,
                email: email.as_str().to_owned(),
                username: username.as_str().to_owned(),
                password_hash: password_hash.clone(),
                created_at: now,
                organization,
            };
            match self.store.create_user(new, effects).await {
                Ok(()) => {
                    return Ok(UserRecord {
                        id,
                        email: email.as_str().to_owned(),
                        username: username.as_str().to_owned(),
                        password_hash,
                        is_admin: false,
                        disabled: false,
                        created_at: now,
                    })
                }
                Err(StoreError::Conflict(UniqueKey::Username)) => continue,
                Err(StoreError::Conflict(UniqueKey::Email)) => return Err(SignupError::Duplicate),
                Err(e) => return Err(ServiceError::from(e).into()),
            }
        }
        Err(ServiceError::Store(StoreError::Conflict(UniqueKey::Username)).into())
    }

    /// Checks a password and starts a session. Every failure before the password is verified
    /// costs one Argon2 verification, and every `Invalid` is held back to a fixed target measured
    /// at start-up ([`delay::LoginDelay`]), so timing tells neither whether the email exists nor
    /// whether its hash is in the legacy format.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued), LoginError> {
        let outcome = self.verify_password(email, password).await?;
        Ok(self.start_session(outcome, Audience::App, origin).await?)
    }

    /// Proves an identity with email and password (see [`Self::login`] for the timing rules);
    /// no session yet.
    pub async fn verify_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<LoginOutcome, LoginError> {
        if Email::normalise(email).is_empty() || password.is_empty() {
            return Err(LoginError::Empty);
        }
        let start = Instant::now();
        let attempt = Password::attempt(password);
        // No account can have an overlong address or one with a control character: such input
        // never reaches the database, and still costs one (decoy) verification like any
        // unknown email.
        let user = match Email::lookup(email) {
            None => None,
            Some(email) => self
                .store
                .find_user_by_email(&email)
                .await
                .map_err(ServiceError::from)?,
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let checked = match self.hasher.verify(attempt.as_ref(), stored).await {
            Ok(checked) => checked,
            Err(HashError::Busy) => return Err(LoginError::Busy),
            Err(e) => return Err(ServiceError::from(e).into()),
        };
        let (Some(user), Verification::Valid { rehash }) = (user, checked.verification) else {
            let delay = self.hasher.login_delay().await;
            tokio::time::sleep(delay.hold_back(start.elapsed())).await;
            return Err(LoginError::Invalid);
        };
        if user.disabled {
            return Err(LoginError::Disabled);
        }
        if rehash {
            self.rehash(&user, attempt.as_ref()).await;
        }
        Ok(LoginOutcome {
            user,
            method: LoginMethod::Password,
        })
    }

    /// Upgrades a hash in an old format or with old parameters; a failure only logs, since the
    /// login itself is valid.
    async fn rehash(&self, user: &UserRecord, password: Option<&Password>) {
        let Some(password) = password else { return };
        match self.hasher.hash(password).await {
            Ok(hash) => {
                if let Err(e) = self
                    .store
                    .set_password_hash(
                        user.id,
                        &hash,
                        SessionsToRevoke::None,
                        self.clock.now(),
                        Effects::none(),
                    )
                    .await
                {
                    tracing::warn!(user_id = %user.id, error = ?e, "could not store re-hashed password");
                }
            }
            Err(e) => tracing::warn!(user_id = %user.id, error = ?e, "could not re-hash password"),
        }
    }

    /// Sets or replaces a user's password, never trimmed, and revokes every other session of
    /// theirs (`keep_session`, the caller's, survives), in one transaction with `user.updated`
    /// and a `user.password_changed` audit row. An account that has a password must prove it
    /// with `current` (missing or empty: [`PasswordChangeError::CurrentRequired`]; wrong:
    /// [`PasswordChangeError::WrongCurrent`]); one without may set a password with none. The
    /// new password is checked first, so an unacceptable one costs no hashing. Returns how many
    /// sessions were revoked.
    pub async fn change_password(
        &self,
        user: &UserRecord,
        current: Option<&str>,
        new: &str,
        keep_session: Uuid,
        context: &RequestContext,
    ) -> Result<u64, PasswordChangeError> {
        let new = Password::parse_new(new)?;
        // The stored hash as it is now, not as a cached record of the session remembers it.
        let user = self
            .store
            .find_user_by_id(user.id)
            .await
            .map_err(ServiceError::from)?
            .ok_or(ServiceError::Store(StoreError::NotFound))?;
        if let Some(stored) = user.password_hash.as_deref() {
            let current = current
                .filter(|c| !c.is_empty())
                .ok_or(PasswordChangeError::CurrentRequired)?;
            let attempt = Password::attempt(current);
            let checked = match self.hasher.verify(attempt.as_ref(), Some(stored)).await {
                Ok(checked) => checked,
                Err(HashError::Busy) => return Err(PasswordChangeError::Busy),
                Err(e) => return Err(ServiceError::from(e).into()),
            };
            if !matches!(checked.verification, Verification::Valid { .. }) {
                return Err(PasswordChangeError::WrongCurrent);
            }
        }
        let hash = match self.hasher.hash(&new).await {
            Ok(hash) => hash,
            Err(HashError::Busy) => return Err(PasswordChangeError::Busy),
            Err(e) => return Err(ServiceError::from(e).into()),
        };
        let effects = self.user_event(EventType::UserUpdated, user.id).audit(
            self.audit(AuditAction::PasswordChanged, Actor::User(user.id), &user)
                .with("sessions_revoked", "others")
                .from_request(context),
        );
        let result = self
            .store
            .set_password_hash(
                user.id,
                &hash,
                SessionsToRevoke::AllExcept(keep_session),
                self.clock.now(),
                effects,
            )
            .await;
        self.sessions.user_changed(user.id);
        Ok(result.map_err(ServiceError::from)?)
    }

    /// Changes a user's username.
    pub async fn change_username(
        &self,
        user_id: Uuid,
        raw: &str,
    ) -> Result<Username, UsernameChangeError> {
        let username = Username::parse(raw)?;
        let result = self
            .store
            .set_username(
                user_id,
                username.as_str(),
                self.clock.now(),
                self.user_event(EventType::UserUpdated, user_id),
            )
            .await;
        self.sessions.user_changed(user_id);
        match result {
            Ok(()) => Ok(username),
            Err(StoreError::Conflict(_)) => Err(UsernameChangeError::Taken),
            Err(e) => Err(ServiceError::from(e).into()),
        }
    }

    /// The account page's deletion of the signed-in user's own account; see
    /// [`Self::delete_user`].
    pub async fn delete_account(
        &self,
        user: &UserRecord,
        context: &RequestContext,
    ) -> Result<(), OrgError> {
        self.delete_user(user, Actor::User(user.id), Some(context))
            .await
    }

    /// `DELETE /auth/internal/v1/users/{userID}`: the application's backend deletes a user.
    /// `UserNotFound` for an unknown id.
    pub async fn delete_user_by_id(&self, user_id: Uuid) -> Result<(), OrgError> {
        let user = self
            .store
            .find_user_by_id(user_id)
            .await?
            .ok_or(OrgError::UserNotFound)?;
        self.delete_user(&user, Actor::System, None).await
    }

    /// Deletes a user with all their sessions, unless they are the only enabled admin
    /// (`LastActiveAdmin`) or the only owner of an organization that has other members
    /// (`LastOwner`: transfer it first); the store checks both under its locks. The
    /// organizations of which they were the only member go with them. In one transaction:
    /// `user.deleted`, `organization.membership.deleted` for every membership, and
    /// `organization.deleted` for every organization deleted; an audit row (which keeps the
    /// email).
    async fn delete_user(
        &self,
        user: &UserRecord,
        actor: Actor,
        context: Option<&RequestContext>,
    ) -> Result<(), OrgError> {
        let mut audit = self.audit(AuditAction::AccountDeleted, actor, user);
        if let Some(context) = context {
            audit = audit.from_request(context);
        }
        let user_events = self
            .user_event(EventType::UserDeleted, user.id)
            .audit(audit);
        let (events, now, user_id) = (self.events.clone(), self.clock.now(), user.id);
        let effects: UserDeletionEffects = Box::new(move |organizations, memberships| {
            let mut effects = user_events;
            for m in memberships {
                let data = org::membership_data(m.organization_id, user_id, m.role);
                effects = effects.and(events.effects(EventType::MembershipDeleted, data, now));
            }
            for o in organizations {
                // An organization keeps an owner: its only member is it.
                let data = org::membership_data(o.id, user_id, OrgRole::Owner);
                effects = effects
                    .and(events.effects(EventType::MembershipDeleted, data, now))
                    .and(events.effects(
                        EventType::OrganizationDeleted,
                        org::organization_data(o.id, &o.name, o.kind, o.created_by_user_id),
                        now,
                    ));
            }
            effects
        });
        let result = self.store.delete_user_checked(user.id, effects).await;
        self.sessions.user_changed(user.id);
        match result {
            Ok(UserDeletion::Deleted { .. }) => Ok(()),
            Ok(UserDeletion::LastActiveAdmin) => Err(OrgError::LastActiveAdmin),
            Ok(UserDeletion::LastOwner(_)) => Err(OrgError::LastOwner),
            Err(StoreError::NotFound) => Err(OrgError::UserNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// An administrator disables (revoking every session) or enables a user: `user.updated`
    /// and an audit row, in the same transaction. `NotFound` for an unknown user.
    pub async fn set_disabled(
        &self,
        admin: Uuid,
        user_id: Uuid,
        disabled: bool,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        let Some(user) = self.store.find_user_by_id(user_id).await? else {
            return Err(StoreError::NotFound);
        };
        let action = if disabled {
            AuditAction::UserDisabled
        } else {
            AuditAction::UserEnabled
        };
        let mut entry = self
            .audit(action, Actor::User(admin), &user)
            .from_request(context);
        if disabled {
            entry = entry.with("sessions_revoked", "all");
        }
        let effects = self
            .user_event(EventType::UserUpdated, user_id)
            .audit(entry);
        let result = self
            .store
            .set_disabled(user_id, disabled, self.clock.now(), effects)
            .await;
        self.sessions.user_changed(user_id);
        result
    }

    /// Grants or revokes `authara:admin` (the CLI, later the admin console), audited as
    /// `user.admin_granted` / `user.admin_revoked`. `email` must be normalised.
    pub async fn set_admin_by_email(
        &self,
        actor: &Actor,
        email: &str,
        grant: bool,
    ) -> Result<(), AdminChangeError> {
        let Some(user) = self.store.find_user_by_email(email).await? else {
            return Err(AdminChangeError::NotFound);
        };
        let action = if grant {
            AuditAction::AdminGranted
        } else {
            AuditAction::AdminRevoked
        };
        let effects = Effects::none().audit(self.audit(action, *actor, &user));
        let result = self
            .store
            .set_admin_by_email(email, grant, self.clock.now(), effects)
            .await;
        self.sessions.user_changed(user.id);
        match result {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(AdminChangeError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}
