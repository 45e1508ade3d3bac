//! Integration tests: the `dag` binary against real SQLite sources and targets, a real Iceberg
//! SQL catalog, and independent readers (pyiceberg, DuckDB) of what it wrote.

mod cli;
mod crash;
mod demo;
mod support;
mod tds_crosscheck;

#[path = "../support/tds/mod.rs"]
pub mod tds;
