//! Integration tests: the `dag` binary against real SQLite sources and targets, a real Iceberg
//! SQL catalog, the machine's MariaDB, a TDS test server standing in for SQL Server (validated by
//! pytds and tsql), a StarRocks test double (validated by curl, the mariadb client and Python's
//! csv module), an S3 server (moto) holding the lake, and independent readers (pyiceberg, DuckDB) of
//! what it wrote, also through a REST catalog (rustberg).

mod cli;
mod crash;
mod demo;
mod graceful;
mod incremental;
mod lakehouse;
mod mssql;
mod mssql_live;
mod mysql_target;
mod partition;
mod rest;
mod s3;
mod schedule;
mod starrocks_double;
mod starrocks_target;
mod support;
mod tds_crosscheck;

// The test doubles (tests/doubles), under the names the tests use: crate::tds, crate::starrocks.
pub use dag_doubles::{starrocks, tds};
