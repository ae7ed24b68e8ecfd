//! Authara's webhooks: outbox events (`authara_core::events`) delivered to the configured
//! receiver, signed as upstream signs them plus a timestamped signature of our own, through a
//! client that refuses private addresses and redirects. The store decides which events exist;
//! this crate only claims, sends and records what happened. See the crate's README.

pub mod deliver;
pub mod guard;
pub mod settings;
pub mod sign;
pub mod worker;

pub use deliver::{Deliverer, Outcome, DELIVERY_HEADER, EVENT_HEADER, USER_AGENT};
pub use settings::{Endpoint, EndpointError, Settings};
pub use sign::{
    verify_signature, verify_signature_v2, Signatures, VerifyError, WebhookSecret,
    SIGNATURE_HEADER, SIGNATURE_V2_HEADER, TIMESTAMP_HEADER,
};
pub use worker::{StartError, WebhookWorkers};
