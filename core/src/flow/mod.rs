//! Flow: direction-normalised keys and the bounded table that holds per-flow state.
//!
//! The table is generic over the state it stores, so this stage does not depend on the
//! measure and classify stages that define that state.

pub mod copies;
mod key;
mod table;

pub use copies::{CapturePoint, CopyFilter};
pub use key::{
    ClientBy, Direction, Endpoint, FlowKey, PerDir, Proto, is_group_address, is_local_address,
    source_is_client,
};
pub use table::{
    FlowEntry, FlowTable, INDEX_BUCKET_BYTES, MIN_IDLE_TO_EVICT_US, Removal, TableStats, Timeouts,
};
