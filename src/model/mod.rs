//! The vocabulary every room shares: what a table and its columns are, how a table is cut into
//! chunks, the stages of its task DAG, the text forms of values, Arrow cell readers and
//! builders, and the content fingerprint.
//!
//! This floor imports no source, target, lake or store, so each of them can speak of tables
//! and values without knowing the others.

pub mod builders;
pub mod calendar;
pub mod cells;
pub mod chunk;
pub mod codec;
pub mod fingerprint;
pub mod stage;
pub mod table;

pub use chunk::ChunkRange;
pub use stage::Stage;
pub use table::*;
