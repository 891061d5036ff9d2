//! Classify (ARCHITECTURE.md): which service a flow belongs to. The classifier and the compiled
//! catalogue it matches against run per packet and live in the core crate, re-exported here;
//! this crate adds the catalogue's file format ([`CatalogueFile`]: reading, validation, and
//! errors that name the file, the service and the key).

mod catalogue_file;

pub use catalogue_file::{BUILTIN, CatalogueError, CatalogueFile};
pub use throttlewatch_core::classify::*;
