//! StarRocks: DDL from the type mapping, Stream Load of CSV read from the lake (or StarRocks
//! pulling from its own Iceberg catalog), staging tables swapped in at the end, and read-back for
//! verification. `target/` holds the orchestration (its `requests.rs` the ledger of labelled
//! requests); the other modules are its building blocks, `stream_load/` the HTTP client.

pub mod csv;
pub mod ddl;
pub mod names;
pub mod stream_load;
mod target;

pub use crate::targets::{LoadJob, LoadSummary};
pub use target::StarRocksTarget;
