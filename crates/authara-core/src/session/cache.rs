//! A cache of live sessions for authenticated reads, so `GET /auth/api/v1/user` does not need a
//! database round trip per request. Correctness rests on three rules:
//! - every revocation or user change made by this process evicts before it returns;
//! - changes made by other processes arrive through the store's change feed (PostgreSQL
//!   LISTEN/NOTIFY); without a feed (or while it is down) the cache is off;
//! - a lookup that raced with an eviction does not insert: entries are inserted only when no
//!   eviction happened between reading the generation and the database answering.
//!
//! Entries also expire on their own after `max_age`, and never outlive the access token that
//! filled them (whose `exp` is capped at the session's expiry).

use crate::store::{ActiveOrganization, UserRecord};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// What a cache entry remembers about one session. No `Debug`: the user record holds the
/// password hash.
#[derive(Clone)]
struct Entry {
    user: Arc<UserRecord>,
    organization: Arc<ActiveOrganization>,
    valid_until: OffsetDateTime,
}

/// The cache. Cheap to share (`Arc`), safe to use from any task. `Debug` shows counts only, never
/// the cached users.
pub struct SessionCache {
    entries: Mutex<HashMap<Uuid, Entry>>,
    generation: AtomicU64,
    enabled: AtomicBool,
    max_age: Duration,
    capacity: usize,
}

/// A ticket taken before a database read; the insert succeeds only if nothing was evicted since.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("entries", &self.lock().len())
            .field("generation", &self.generation.load(Ordering::SeqCst))
            .field("enabled", &self.enabled.load(Ordering::SeqCst))
            .field("max_age", &self.max_age)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl SessionCache {
    /// A cache that starts disabled; [`SessionCache::enable`] turns it on once a change feed
    /// (or the guarantee that no other process writes) exists.
    pub fn new(max_age: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            enabled: AtomicBool::new(false),
            max_age,
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Turns the cache on or off; turning it off forgets everything.
    pub fn set_enabled(&self, on: bool) {
        if !on {
            self.clear();
        }
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// Whether lookups may be answered from the cache.
    fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// The live user of `session_id` and the session's organization, if cached, fresh, and
    /// owned by `user_id`.
    pub fn get(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Option<(Arc<UserRecord>, Arc<ActiveOrganization>)> {
        if !self.is_enabled() {
            return None;
        }
        let entries = self.lock();
        let e = entries.get(&session_id)?;
        (e.valid_until > now && e.user.id == user_id)
            .then(|| (e.user.clone(), e.organization.clone()))
    }

    /// Taken before reading the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    /// Remembers a live session read from the database, unless anything was evicted since the
    /// ticket was taken. `bound` is the latest moment the entry may be used (the token's `exp`).
    pub fn insert(
        &self,
        ticket: Ticket,
        session_id: Uuid,
        user: Arc<UserRecord>,
        organization: Arc<ActiveOrganization>,
        now: OffsetDateTime,
        bound: OffsetDateTime,
    ) {
        if !self.is_enabled() {
            return;
        }
        let mut entries = self.lock();
        // Checked under the lock that evictions also take, so no eviction can slip between.
        if self.generation.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, e| e.valid_until > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        let valid_until = (now + self.max_age).min(bound);
        entries.insert(
            session_id,
            Entry {
                user,
                organization,
                valid_until,
            },
        );
    }

    /// Forgets one session.
    pub fn evict_session(&self, session_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(&session_id);
    }

    /// Forgets every session of one user (their record changed, or they were disabled).
    pub fn evict_user(&self, user_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.retain(|_, e| e.user.id != user_id);
    }

    /// Forgets every session acting in one organization (it was renamed).
    pub fn evict_organization(&self, organization_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.retain(|_, e| e.organization.id != organization_id);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

    fn user(id: Uuid) -> UserRecord {
        UserRecord {
            id,
            email: "a".into(),
            username: "a".into(),
            password_hash: None,
            is_admin: false,
            disabled: false,
            created_at: NOW,
        }
    }

    fn org() -> Arc<ActiveOrganization> {
        Arc::new(ActiveOrganization {
            id: Uuid::from_u128(7),
            name: "a".into(),
            role: crate::org::OrgRole::Owner,
        })
    }

    #[test]
    fn renaming_an_organization_forgets_its_sessions_only() {
        let c = cache();
        let far = NOW + Duration::minutes(10);
        let (s1, s2, u1, u2) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let other = Arc::new(ActiveOrganization {
            id: Uuid::from_u128(8),
            name: "b".into(),
            role: crate::org::OrgRole::Member,
        });
        c.insert(c.ticket(), s1, Arc::new(user(u1)), org(), NOW, far);
        c.insert(c.ticket(), s2, Arc::new(user(u2)), other, NOW, far);
        c.evict_organization(org().id);
        assert!(c.get(s1, u1, NOW).is_none() && c.get(s2, u2, NOW).is_some());
    }

    fn cache() -> SessionCache {
        let c = SessionCache::new(Duration::seconds(5), 3);
        c.set_enabled(true);
        c
    }

    #[test]
    fn hits_only_for_the_right_user_and_while_fresh() {
        let c = cache();
        let (sid, uid) = (Uuid::new_v4(), Uuid::new_v4());
        let t = c.ticket();
        c.insert(
            t,
            sid,
            Arc::new(user(uid)),
            org(),
            NOW,
            NOW + Duration::minutes(10),
        );
        assert!(c.get(sid, uid, NOW).is_some());
        assert!(
            c.get(sid, Uuid::new_v4(), NOW).is_none(),
            "another user's token"
        );
        assert!(
            c.get(sid, uid, NOW + Duration::seconds(5)).is_none(),
            "max age"
        );
    }

    #[test]
    fn entries_never_outlive_the_token_that_filled_them() {
        let c = cache();
        let (sid, uid) = (Uuid::new_v4(), Uuid::new_v4());
        c.insert(
            c.ticket(),
            sid,
            Arc::new(user(uid)),
            org(),
            NOW,
            NOW + Duration::seconds(1),
        );
        assert!(c.get(sid, uid, NOW + Duration::seconds(1)).is_none());
    }

    #[test]
    fn an_eviction_during_the_database_read_prevents_the_insert() {
        let c = cache();
        let (sid, uid) = (Uuid::new_v4(), Uuid::new_v4());
        let ticket = c.ticket();
        // A revocation commits and evicts while the read is in flight.
        c.evict_session(sid);
        c.insert(
            ticket,
            sid,
            Arc::new(user(uid)),
            org(),
            NOW,
            NOW + Duration::minutes(10),
        );
        assert!(c.get(sid, uid, NOW).is_none());
    }

    #[test]
    fn evictions_by_session_user_and_all() {
        let c = cache();
        let (s1, s2, s3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (u1, u2) = (Uuid::new_v4(), Uuid::new_v4());
        let far = NOW + Duration::minutes(10);
        c.insert(c.ticket(), s1, Arc::new(user(u1)), org(), NOW, far);
        c.insert(c.ticket(), s2, Arc::new(user(u1)), org(), NOW, far);
        c.insert(c.ticket(), s3, Arc::new(user(u2)), org(), NOW, far);
        c.evict_session(s1);
        assert!(c.get(s1, u1, NOW).is_none() && c.get(s2, u1, NOW).is_some());
        c.evict_user(u1);
        assert!(c.get(s2, u1, NOW).is_none() && c.get(s3, u2, NOW).is_some());
        c.clear();
        assert!(c.get(s3, u2, NOW).is_none());
    }

    #[test]
    fn a_disabled_cache_answers_nothing_and_stores_nothing() {
        let c = SessionCache::new(Duration::seconds(5), 3);
        let (sid, uid) = (Uuid::new_v4(), Uuid::new_v4());
        c.insert(
            c.ticket(),
            sid,
            Arc::new(user(uid)),
            org(),
            NOW,
            NOW + Duration::minutes(1),
        );
        c.set_enabled(true);
        assert!(c.get(sid, uid, NOW).is_none());
        c.insert(
            c.ticket(),
            sid,
            Arc::new(user(uid)),
            org(),
            NOW,
            NOW + Duration::minutes(1),
        );
        c.set_enabled(false);
        c.set_enabled(true);
        assert!(c.get(sid, uid, NOW).is_none(), "disabling forgets");
    }

    #[test]
    fn debug_shows_counts_but_no_cached_user() {
        let c = cache();
        let mut u = user(Uuid::new_v4());
        u.email = "someone@example.com".into();
        u.password_hash = Some("$argon2id$v=19$m=256,t=1,p=1$c2FsdA$aGFzaA".into());
        c.insert(
            c.ticket(),
            Uuid::new_v4(),
            Arc::new(u),
            org(),
            NOW,
            NOW + Duration::minutes(1),
        );
        let s = format!("{c:?}");
        assert!(s.contains("entries: 1"), "{s}");
        assert!(!s.contains("argon2id") && !s.contains("someone"), "{s}");
    }

    #[test]
    fn capacity_is_bounded() {
        let c = cache();
        let far = NOW + Duration::minutes(10);
        for _ in 0..10 {
            c.insert(
                c.ticket(),
                Uuid::new_v4(),
                Arc::new(user(Uuid::new_v4())),
                org(),
                NOW,
                far,
            );
        }
        assert!(c.lock().len() <= 3);
    }
}
