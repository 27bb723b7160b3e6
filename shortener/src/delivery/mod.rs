//! Delivering events to webhooks: every shortener reads the queue in the consumer group (so delivery scales out
//! with the shortener), sends each event to every webhook of its owner that wants it, and acknowledges the entry
//! once each has it or has a retry scheduled ([`worker`]); failed deliveries come back with exponential backoff
//! and jitter until they succeed or a retention period (24 h) has passed; a webhook failing that long is paused.
//! Which webhooks there are is a table every shortener holds in memory ([`hooks`]). Link events are put on the
//! same queue by the API handlers ([`emit`]).

pub mod emit;
pub mod hooks;
pub mod policy;
pub mod worker;

pub use emit::Emitter;
pub use hooks::Hooks;
pub use policy::RetryPolicy;
