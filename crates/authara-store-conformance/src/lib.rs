//! Backend-independent conformance tests for Authara's [`Store`].
//!
//! The cases live in [`cases`], one module per aggregate, written once against `&dyn Store` (the
//! race cases against `Arc<dyn Store>`); the outbox cases, written once for both outboxes, run on
//! each ([`cases::Outbox`]) under a test name per outbox. A backend's `tests/` file runs them all
//! with one line:
//!
//! ```ignore
//! authara_store_conformance::conformance_tests!(make_store);
//! ```
//!
//! where `make_store` is a function or closure returning a future of either a [`TestStore`]
//! or an `Option<TestStore>` (`None` = skip: the factory says why on stderr). The store must be
//! a fresh, empty, *unmigrated* database; the generated tests migrate it themselves, except for
//! the cases about migrating. The test file's crate needs `tokio` (with `macros` and
//! `rt-multi-thread`) as a dev-dependency, because the tests are `#[tokio::test]`s.

#![warn(missing_docs)]
// This crate is test code compiled as a library: failing loudly is its job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: a failed expectation must fail the test"
)]

pub mod cases;

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;

use authara_core::store::Store;

type CloseFn = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;
type TeardownFn = Box<dyn FnOnce() + Send>;

/// A store under test: derefs to `dyn Store`, and cleans up after itself.
///
/// Cleanup has two halves. [`TestStore::finish`] is called by the generated tests after a case
/// passed and runs the async *close* hook (e.g. closing the pools). Dropping the guard runs the
/// synchronous *teardown* hook (e.g. deleting the temp directory, dropping the schema), also
/// when the case panicked, so a failing test leaves nothing behind either. A teardown hook runs
/// inside the test's runtime, so it must not block on that runtime: do async work on a thread
/// of its own with a runtime of its own.
pub struct TestStore {
    store: Arc<dyn Store>,
    close: Option<CloseFn>,
    teardown: Option<TeardownFn>,
}

impl TestStore {
    /// Wraps a fresh, unmigrated store with no cleanup hooks.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            close: None,
            teardown: None,
        }
    }

    /// Sets the async hook [`TestStore::finish`] runs (typically: close the pools).
    pub fn with_close<F, Fut>(mut self, close: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.close = Some(Box::new(move || Box::pin(close())));
        self
    }

    /// Sets the blocking hook run on drop, after `finish` or on a panic.
    pub fn with_teardown(mut self, teardown: impl FnOnce() + Send + 'static) -> Self {
        self.teardown = Some(Box::new(teardown));
        self
    }

    /// Another handle on the store, for cases that spawn tasks.
    pub fn shared(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Runs the close hook, then drops the guard (which runs the teardown hook).
    pub async fn finish(mut self) {
        if let Some(close) = self.close.take() {
            close().await;
        }
    }
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(teardown) = self.teardown.take() {
            teardown();
        }
    }
}

impl fmt::Debug for TestStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStore")
            .field("close", &self.close.is_some())
            .field("teardown", &self.teardown.is_some())
            .finish_non_exhaustive()
    }
}

/// Used by [`conformance_tests!`]: unwraps a factory's result (`None` = skipped) and, when
/// asked, migrates the store.
#[doc(hidden)]
pub async fn prepare(made: impl Into<Option<TestStore>>, migrate: bool) -> Option<TestStore> {
    let store = made.into()?;
    if migrate {
        store.migrate().await.expect("migrate a fresh database");
    }
    Some(store)
}

/// Expands into one `#[tokio::test]` per conformance case, each on a fresh store from `$make`.
///
/// `$make` is called with no arguments and its future awaited; it yields a [`TestStore`] or an
/// `Option<TestStore>` (`None` skips the test, which then passes).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr $(,)?) => {
        $crate::conformance_tests!(@fresh $make;
            schema_state_behind_then_up_to_date,
            migrate_twice_is_idempotent,
        );
        $crate::conformance_tests!(@migrated $make;
            ping_answers,
            create_and_find_user,
            user_without_password,
            create_user_email_conflict,
            create_user_username_conflict,
            email_is_compared_exactly,
            set_password_hash_replaces_hash,
            set_password_hash_unknown_user,
            set_username_renames,
            set_username_conflict,
            set_username_unknown_user,
            set_admin_by_email_grants_and_revokes,
            set_disabled_revokes_sessions,
            enable_again_keeps_old_sessions_revoked,
            set_disabled_unknown_user,
            delete_user_cascades,
            create_session_and_find_refresh_token,
            create_session_unknown_user,
            create_session_duplicate_token_hash,
            create_session_caps_live_sessions_per_user,
            find_live_session_user_filters,
            list_live_sessions_order_and_filter,
            list_live_sessions_reports_the_last_rotation,
            revoke_session_owner_check,
            revoke_session_keeps_first_revocation,
            rotate_refresh_token_outcomes,
            rotate_refresh_token_reports_the_stored_expiry,
            rotate_refresh_token_conditions,
            rotate_refresh_token_replacement_conflict,
            purge_expired_counts,
            watch_changes_reports_revocations_and_user_changes,
            watch_changes_reports_what_disabling_revokes,
            effects_commit_with_create_user,
            effects_commit_several_at_once,
            effects_absent_when_the_write_conflicts,
            effects_absent_when_the_user_is_not_found,
            effects_commit_with_every_user_write,
            effects_follow_revoke_session_result,
            effects_that_fail_roll_the_change_back,
            list_audit_filters_newest_first,
            purge_audit_batches,
            set_password_hash_revokes_all_sessions_but_the_kept_one,
            set_password_hash_revokes_all_or_none,
            set_password_hash_with_revocation_commits_effects_once,
            revoke_other_sessions_keeps_only_the_kept_one,
            revoke_other_sessions_unknown_user_and_foreign_keep,
            watch_changes_reports_what_mass_revocations_revoke,
            create_and_find_challenge_round_trips_every_pending_action,
            create_challenge_refuses_a_mismatched_action_or_a_taken_id,
            begin_challenge_attempt_counts_up_to_the_maximum,
            begin_challenge_attempt_is_gone_for_expired_consumed_or_unknown,
            complete_signup_creates_the_user_with_the_pending_hash,
            complete_password_reset_sets_the_hash_and_revokes_every_live_session,
            complete_email_change_sets_the_email_and_keeps_the_asking_session,
            complete_email_change_without_an_asking_session_revokes_them_all,
            complete_opaque_challenge_is_not_found_and_changes_nothing,
            complete_signup_with_a_taken_email_or_username_conflicts_and_keeps_the_challenge,
            complete_email_change_to_a_taken_email_conflicts_and_changes_nothing,
            complete_email_change_after_the_email_moved_is_not_found,
            complete_challenge_for_a_gone_user_or_an_expired_challenge_is_not_found,
            resend_challenge_follows_the_interval_and_the_maximum,
            resend_of_an_opaque_challenge_counts_alike_and_queues_no_email,
            set_challenge_code_replaces_the_code_and_caps_its_expiry,
            purge_challenges_deletes_expired_and_consumed_ones_in_batches,
            watch_changes_reports_what_challenge_completions_revoke,
            create_user_creates_the_initial_organization_and_owner_membership,
            create_user_conflict_leaves_no_organization,
            complete_signup_creates_the_initial_organization,
            create_session_acts_in_the_default_or_the_given_organization,
            create_session_outside_the_users_organizations_is_not_found,
            find_live_session_user_reads_the_organization,
            refresh_token_record_carries_the_organization,
            switch_session_organization_replaces_every_token,
            switch_session_organization_refusals_change_nothing,
            pin_organization_mode_keeps_the_first,
            pin_organization_mode_personal_reads_back,
            backfill_organizations_finds_nothing_to_do,
            ensure_initial_organization_writes_nothing_for_a_member,
            organization_reads_join_memberships_and_members,
            rename_organization_updates_and_commits_effects,
            delete_user_keeps_created_organizations_without_creator,
            watch_changes_reports_organization_renames,
            create_team_organization_creates_it_with_its_owner,
            add_membership_adds_once_and_refuses_unknowns,
            set_membership_role_changes_the_role_read_by_sessions,
            transfer_ownership_demotes_every_other_owner,
            remove_membership_ends_the_sessions_acting_there,
            remove_membership_refusals_keep_an_owner_and_a_membership,
            delete_organization_ends_the_sessions_acting_in_it,
            create_session_in_a_team_organization_acts_there,
            create_session_default_organization_with_several_memberships,
            organization_lists_order_several_rows,
            organization_writes_whose_effects_fail_change_nothing,
            watch_changes_reports_membership_changes_and_organization_deletes,
            users_left_without_membership_get_an_initial_organization_again,
            delete_user_checked_keeps_every_organization_owned,
            delete_user_checked_keeps_an_active_admin,
            create_user_with_identity_round_trips,
            identity_conflicts_change_nothing,
            unlink_identity_keeps_a_way_to_sign_in,
            sign_in_flows_are_taken_once,
            pending_links_are_found_and_taken_once,
            create_invitation_round_trips_and_queues_its_email,
            create_invitation_refusals_come_in_order_and_change_nothing,
            create_invitation_revokes_an_expired_one_and_ignores_closed_ones,
            revoke_invitation_revokes_a_pending_one_only,
            resend_invitation_replaces_the_invitation,
            accept_invitation_adds_the_membership_with_the_invitations_role,
            signup_with_invitation_creates_the_account_and_accepts,
            signup_with_invitation_refusals_change_nothing,
            an_invited_signup_challenge_creates_the_account_and_accepts,
            an_invited_signup_challenge_needs_a_pending_invitation,
            accept_invitation_refusals_come_in_order_and_change_nothing,
            deleting_an_organization_or_a_user_keeps_invitations_consistent,
        );
        $crate::conformance_tests!(@shared $make;
            rotate_refresh_token_race,
            create_session_cap_holds_under_concurrency,
            begin_challenge_attempt_race_counts_exactly_the_maximum,
            complete_challenge_race_has_one_winner,
            pin_organization_mode_race_has_one_winner,
            remove_membership_races_keep_an_owner_and_a_membership,
            create_invitation_race_has_one_winner,
            accept_invitation_race_accepts_once,
            revoke_and_accept_race_has_one_winner,
            invited_signup_completion_and_revocation_race_has_one_winner,
            delete_user_checked_races_keep_the_invariants,
            identity_races_keep_the_rules,
            sign_in_flow_take_race_has_one_winner,
            remove_password_keeps_a_way_to_sign_in,
        );
        // The outboxes' life cycle, each case once per outbox: `case: webhook test, email test;`.
        $crate::conformance_tests!(@outbox $make, borrowed;
            claim_order_and_due_time:
                claim_due_events_order_and_due_time,
                claim_due_emails_order_and_due_time;
            claim_twice_gives_nothing_the_second_time:
                claim_twice_gives_nothing_the_second_time,
                claim_email_twice_gives_nothing_the_second_time;
            mark_done_retry_and_final_failure:
                mark_event_delivered_retry_and_final_failure,
                mark_email_sent_retry_and_final_failure;
            requeue_stale_batches: requeue_stale_events_batches, requeue_stale_emails_batches;
            purge_batches: purge_events_batches, purge_emails_batches;
        );
        $crate::conformance_tests!(@outbox $make, shared;
            claim_race: claim_due_events_race, claim_due_emails_race;
        );
    };
    (@fresh $make:expr; $($case:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let Some(store) = $crate::prepare(($make)().await, false).await else {
                return;
            };
            $crate::cases::$case(&*store).await;
            store.finish().await;
        }
    )*};
    (@migrated $make:expr; $($case:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let Some(store) = $crate::prepare(($make)().await, true).await else {
                return;
            };
            $crate::cases::$case(&*store).await;
            store.finish().await;
        }
    )*};
    (@shared $make:expr; $($case:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let Some(store) = $crate::prepare(($make)().await, true).await else {
                return;
            };
            $crate::cases::$case(store.shared()).await;
            store.finish().await;
        }
    )*};
    (@outbox $make:expr, $access:ident; $($case:ident: $webhook:ident, $email:ident;)*) => {$(
        $crate::conformance_tests!(@on_outbox $make, $access; $case, $webhook, Webhook);
        $crate::conformance_tests!(@on_outbox $make, $access; $case, $email, Email);
    )*};
    (@on_outbox $make:expr, $access:ident; $case:ident, $test:ident, $outbox:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let Some(store) = $crate::prepare(($make)().await, true).await else {
                return;
            };
            let outbox = $crate::cases::Outbox::$outbox;
            $crate::cases::$case($crate::conformance_tests!(@store $access store), outbox).await;
            store.finish().await;
        }
    };
    // How an outbox case gets the store: `borrowed` as `&dyn Store`, `shared` as `Arc<dyn Store>`.
    (@store borrowed $store:ident) => {
        &*$store
    };
    (@store shared $store:ident) => {
        $store.shared()
    };
}

/// What a test that needs an outside service (PostgreSQL, Redis, a browser) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceCheck {
    /// The service is there: run the test.
    Run,
    /// Not there, on a developer's machine: say so and pass.
    Skip,
    /// Not there under CI (`CI=true`): fail, since CI must prove what it claims.
    Fail,
}

/// Decides [`ServiceCheck`] from whether the service is `available` and the value of the `CI`
/// variable (`true`, `1` or `yes`, in any case, turns CI on; unset, empty or anything else is
/// off). Pure, so both answers can be tested without touching the environment.
pub fn service_check(available: bool, ci: Option<&str>) -> ServiceCheck {
    let ci = ci.is_some_and(|v| {
        let v = v.trim();
        v.eq_ignore_ascii_case("true") || v == "1" || v.eq_ignore_ascii_case("yes")
    });
    match (available, ci) {
        (true, _) => ServiceCheck::Run,
        (false, false) => ServiceCheck::Skip,
        (false, true) => ServiceCheck::Fail,
    }
}

/// Whether a test that needs `what` (e.g. "PostgreSQL: AUTHARA_TEST_POSTGRES_URL not set
/// (conformance)") should run. When the service is unavailable it prints `skipped: <what>` on
/// the process's stderr (not captured by the test harness, so it is seen) and returns `false`;
/// with `CI=true` it panics instead.
pub fn require_service(what: &str, available: bool) -> bool {
    match service_check(available, std::env::var("CI").ok().as_deref()) {
        ServiceCheck::Run => true,
        ServiceCheck::Skip => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "skipped: {what}");
            false
        }
        ServiceCheck::Fail => panic!("CI=true but a service this test needs is missing: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{service_check, ServiceCheck};

    #[test]
    fn a_missing_service_skips_on_a_laptop_and_fails_under_ci() {
        for ci in [None, Some(""), Some("false"), Some("0"), Some("no")] {
            assert_eq!(service_check(false, ci), ServiceCheck::Skip, "CI={ci:?}");
            assert_eq!(service_check(true, ci), ServiceCheck::Run, "CI={ci:?}");
        }
        for ci in ["true", "TRUE", "True", "1", "yes", " true "] {
            assert_eq!(
                service_check(false, Some(ci)),
                ServiceCheck::Fail,
                "CI={ci:?}"
            );
            assert_eq!(
                service_check(true, Some(ci)),
                ServiceCheck::Run,
                "CI={ci:?}"
            );
        }
    }
}
