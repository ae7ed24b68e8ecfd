//! Which domain events are written to the outbox at all.
//!
//! With no webhook receiver configured nothing would ever consume the outbox, so no event is
//! written (the table would only grow). With one, `AUTHARA_WEBHOOK_ENABLED_EVENTS` narrows the
//! types, as upstream filters at publish time.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{EventType, NewEvent};
use crate::random::{uuid_v4, Random};

/// The set of event types that are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPolicy {
    enabled: BTreeSet<EventType>,
}

impl EventPolicy {
    /// Nothing is published (no webhook receiver).
    pub fn off() -> Self {
        Self {
            enabled: BTreeSet::new(),
        }
    }

    /// Every type is published.
    pub fn all() -> Self {
        Self::only(EventType::ALL)
    }

    /// Exactly these types are published.
    pub fn only(types: impl IntoIterator<Item = EventType>) -> Self {
        Self {
            enabled: types.into_iter().collect(),
        }
    }

    /// Whether events of this type are written.
    pub fn wants(&self, event_type: EventType) -> bool {
        self.enabled.contains(&event_type)
    }
}

/// Builds the events a change causes, under a policy, with ids from the injected RNG.
#[derive(Clone)]
pub struct Publisher {
    policy: Arc<EventPolicy>,
    random: Arc<dyn Random>,
}

impl Publisher {
    /// A publisher for `policy`.
    pub fn new(policy: EventPolicy, random: Arc<dyn Random>) -> Self {
        Self {
            policy: Arc::new(policy),
            random,
        }
    }

    /// A publisher that writes nothing (tests, tools).
    pub fn off(random: Arc<dyn Random>) -> Self {
        Self::new(EventPolicy::off(), random)
    }

    /// An event of `event_type` with `data`, or `None` when the type is not published.
    pub fn event(
        &self,
        event_type: EventType,
        data: serde_json::Value,
        at: OffsetDateTime,
    ) -> Option<NewEvent> {
        self.policy
            .wants(event_type)
            .then(|| NewEvent::new(uuid_v4(&*self.random), event_type, at, data))
    }

    /// The [`Effects`] of one event of `event_type` with `data`: none when the type is not
    /// published.
    pub fn effects(
        &self,
        event_type: EventType,
        data: serde_json::Value,
        at: OffsetDateTime,
    ) -> crate::store::Effects {
        let effects = crate::store::Effects::none();
        match self.event(event_type, data, at) {
            Some(e) => effects.event(e),
            None => effects,
        }
    }

    /// `user.*` with upstream's data `{user_id}`, or `None` when the type is not published.
    pub fn user(
        &self,
        event_type: EventType,
        user_id: Uuid,
        at: OffsetDateTime,
    ) -> Option<NewEvent> {
        self.policy
            .wants(event_type)
            .then(|| NewEvent::user(uuid_v4(&*self.random), event_type, user_id, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    #[test]
    fn off_publishes_nothing_and_only_publishes_the_listed_types() {
        let random: Arc<dyn Random> = Arc::new(OsRandom);
        let at = OffsetDateTime::UNIX_EPOCH;
        let user = Uuid::from_u128(1);
        let off = Publisher::off(random.clone());
        assert!(EventType::ALL
            .into_iter()
            .all(|t| off.user(t, user, at).is_none()));
        let some = Publisher::new(EventPolicy::only([EventType::UserDeleted]), random.clone());
        assert!(some.user(EventType::UserCreated, user, at).is_none());
        let deleted = some.user(EventType::UserDeleted, user, at);
        assert_eq!(deleted.map(|e| e.event_type), Some(EventType::UserDeleted));
        let all = Publisher::new(EventPolicy::all(), random);
        let a = all.user(EventType::UserCreated, user, at).map(|e| e.id);
        let b = all.user(EventType::UserCreated, user, at).map(|e| e.id);
        assert!(a.is_some() && a != b, "every event has its own id");
    }
}
