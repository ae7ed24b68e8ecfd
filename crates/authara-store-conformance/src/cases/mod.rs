//! The conformance cases. Each takes a fresh store (an outbox case also the [`Outbox`] it runs
//! on); all but the migration cases expect it migrated. Times are fixed (no clock) and carry
//! microseconds, the precision both backends keep, so records read back compare equal to what
//! was written.
//!
//! One module per aggregate: `schema`, `user`, `session`, `audit`, `challenge` (emailed-code
//! challenges), `outbox` (the two outboxes, webhook events and email jobs: one life cycle, each
//! case run on either), `effects` (what a write commits with its change), `revocation` (many
//! sessions of a user at once), `org` (organizations, memberships, the organization a session
//! acts in), `invitation` (invitations to join an organization) and `identity` (external
//! sign-in identities); `fixtures` holds what they
//! share. Every case is re-exported here, where
//! `conformance_tests!` finds it.

mod audit;
mod challenge;
mod effects;
mod fixtures;
mod identity;
mod invitation;
mod org;
mod outbox;
mod revocation;
mod schema;
mod session;
mod user;

pub use audit::*;
pub use challenge::*;
pub use effects::*;
pub use identity::*;
pub use invitation::*;
pub use org::*;
pub use outbox::*;
pub use revocation::*;
pub use schema::*;
pub use session::*;
pub use user::*;

/// How many tasks race for one refresh token in [`rotate_refresh_token_race`], and for one
/// challenge in [`begin_challenge_attempt_race_counts_exactly_the_maximum`] and
/// [`complete_challenge_race_has_one_winner`], to pin the organization mode in
/// [`pin_organization_mode_race_has_one_winner`], and to create one invitation in
/// [`create_invitation_race_has_one_winner`].
pub const RACERS: usize = 8;
