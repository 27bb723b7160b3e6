//! The read path's tiers, fastest first: each HTTP worker's own copies, the in-process cache, then (one coalesced
//! lookup per code) Redis, a read replica and the primary, and what decides when the primary is asked. Everything
//! here answers "what is this code's link?"; nothing here knows HTTP.
//!
//! - [`resolver`]: the whole read path for one code (local cache, single flight, lower tiers).
//! - [`front`]: each HTTP worker's own copies of the links it answered lately, in front of [`local`].
//! - [`local`]: the in-process cache shared by the workers.
//! - [`lookup`]: the tiers below the local cache, and how each failure degrades.
//! - [`fresh`]: which codes a replica may be missing only because it lags (confirmed on the primary).
//! - [`confirm`]: the per-process budget of those confirmations.

pub mod confirm;
pub mod fresh;
pub mod front;
pub mod local;
pub mod lookup;
pub mod resolver;
