//! Integration tests: the `dag` binary against real SQLite sources and targets, a real Iceberg
//! SQL catalog, a TDS test server standing in for SQL Server (validated by pytds and tsql), and
//! independent readers (pyiceberg, DuckDB) of what it wrote.

mod cli;
mod crash;
mod demo;
mod mssql;
mod mssql_live;
mod mysql_target;
mod support;
mod tds_crosscheck;

#[path = "../support/tds/mod.rs"]
pub mod tds;
