//! `dag`: moves whole databases into an Apache Iceberg lakehouse and on into a target, as a
//! workflow of small per-table task DAGs that survive crashes exactly, under a memory budget,
//! and proves with verification what it moved. The binary's commands live in [`commands`].

#[cfg(feature = "jemalloc")]
pub mod allocator;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod error;
pub mod exit;
pub mod fault;
pub mod lake;
pub mod model;
pub mod plan;
pub mod progress;
pub mod sched;
pub mod schedule;
pub mod session;
pub mod shutdown;
pub mod sources;
pub mod sqlite;
pub mod store;
pub mod sysmem;
pub mod targets;
pub mod task;
