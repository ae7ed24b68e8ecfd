//! The webhook outbox (`webhook_events`). Rows are appended by the writes that cause them
//! (`effects`); they are claimed, settled, re-queued and purged by the life cycle of `outbox`.

use authara_core::store::{ClaimedEvent, EventRecord, EventStatus, EventStore, StoreError};
use sqlx::FromRow;

use crate::outbox::{impl_outbox_store, outbox_claimed, outbox_record, Claimed, Listed, Outbox};

/// A delivered row ends `delivered`, stamped `delivered_at`.
const EVENTS: Outbox = Outbox::new(
    "webhook_events",
    "delivered",
    "delivered_at",
    "event_type, payload",
);

/// The columns of `webhook_events` besides the life cycle's: the delivery itself.
#[derive(FromRow)]
struct Delivery {
    event_type: String,
    payload: String,
}

fn claimed_event(claim: Claimed<Delivery>) -> Result<ClaimedEvent, StoreError> {
    Ok(outbox_claimed!(ClaimedEvent from claim; event_type, payload))
}

fn event_record(row: Listed<EventStatus, Delivery>) -> Result<EventRecord, StoreError> {
    Ok(outbox_record!(EventRecord from row, delivered_at; event_type, payload))
}

impl_outbox_store!(
    EventStore, EVENTS, claim_due_events -> ClaimedEvent = claimed_event,
    mark_event_delivered, mark_event_attempt_failed, requeue_stale_events, purge_events,
    list_events -> EventRecord = event_record, EventStatus,
);
