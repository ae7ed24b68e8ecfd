//! Domain events: what changed, written to the outbox (`webhook_events`) in the same transaction
//! as the change, and delivered later by workers (webhooks). Nothing in a request sends them.

pub mod policy;
pub mod store;

pub use policy::{EventPolicy, Publisher};
pub use store::{ClaimedEvent, EventRecord, EventStatus, EventStore};

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

/// Upstream's twelve webhook event types (`contract/webhooks.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    UserCreated,
    UserUpdated,
    UserDeleted,
    OrganizationCreated,
    OrganizationUpdated,
    OrganizationDeleted,
    MembershipCreated,
    MembershipUpdated,
    MembershipDeleted,
    InvitationCreated,
    InvitationAccepted,
    InvitationRevoked,
}

impl EventType {
    /// Every type, in upstream's order.
    pub const ALL: [EventType; 12] = [
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::OrganizationCreated,
        Self::OrganizationUpdated,
        Self::OrganizationDeleted,
        Self::MembershipCreated,
        Self::MembershipUpdated,
        Self::MembershipDeleted,
        Self::InvitationCreated,
        Self::InvitationAccepted,
        Self::InvitationRevoked,
    ];

    /// The wire name (`X-Authara-Event`, the envelope's `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::OrganizationCreated => "organization.created",
            Self::OrganizationUpdated => "organization.updated",
            Self::OrganizationDeleted => "organization.deleted",
            Self::MembershipCreated => "organization.membership.created",
            Self::MembershipUpdated => "organization.membership.updated",
            Self::MembershipDeleted => "organization.membership.deleted",
            Self::InvitationCreated => "organization.invitation.created",
            Self::InvitationAccepted => "organization.invitation.accepted",
            Self::InvitationRevoked => "organization.invitation.revoked",
        }
    }

    /// The type with this wire name; exact match only.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to append to the outbox. `payload` is the whole envelope
/// `{"id","type","created_at","data"}` serialised once, here: the stored text is the exact body
/// sent (and signed) on every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The envelope id, also `X-Authara-Delivery`.
    pub id: Uuid,
    pub event_type: EventType,
    pub created_at: OffsetDateTime,
    /// The serialised envelope.
    pub payload: String,
}

impl NewEvent {
    /// Builds the envelope for `data`. `created_at` is written in RFC 3339 UTC with whole
    /// microseconds at most, as the stores keep it.
    pub fn new(
        id: Uuid,
        event_type: EventType,
        created_at: OffsetDateTime,
        data: serde_json::Value,
    ) -> Self {
        let at = created_at.to_offset(time::UtcOffset::UTC);
        let at = at
            .replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
            .unwrap_or(at);
        let stamp = at.format(&Rfc3339).unwrap_or_default();
        let payload = json!({
            "id": id.to_string(),
            "type": event_type.as_str(),
            "created_at": stamp,
            "data": data,
        })
        .to_string();
        Self {
            id,
            event_type,
            created_at: at,
            payload,
        }
    }

    /// `user.created`, `user.updated` or `user.deleted` with upstream's data `{user_id}`.
    pub fn user(id: Uuid, event_type: EventType, user_id: Uuid, at: OffsetDateTime) -> Self {
        Self::new(
            id,
            event_type,
            at,
            json!({ "user_id": user_id.to_string() }),
        )
    }
}

impl crate::outbox::Claimed for ClaimedEvent {
    fn key(&self) -> (Uuid, u32) {
        (self.id, self.attempt_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_wire_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("User.Created"), None);
        assert_eq!(EventType::parse("user.created "), None);
        assert_eq!(EventType::parse(""), None);
    }

    #[test]
    fn the_envelope_has_upstreams_four_fields() {
        let id = Uuid::from_u128(7);
        let user = Uuid::from_u128(9);
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let event = NewEvent::user(id, EventType::UserCreated, user, at);
        let v: serde_json::Value = serde_json::from_str(&event.payload).unwrap_or_default();
        assert_eq!(v["id"], id.to_string());
        assert_eq!(v["type"], "user.created");
        assert_eq!(v["created_at"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(v["data"], json!({ "user_id": user.to_string() }));
        assert_eq!(v.as_object().map(|o| o.len()), Some(4));
        assert_eq!(event.created_at.nanosecond(), 123_456_000);
    }
}
