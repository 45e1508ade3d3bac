//! Protocol-faithful stand-ins for SQL Server and StarRocks, so that dag's SQL Server source and
//! StarRocks target can be tested and benchmarked on machines where neither can run.
//!
//! - [`tds`]: a TDS 7.4 server serving generated tables, standing in for SQL Server.
//! - [`starrocks`]: a StarRocks double (FE and BE HTTP for Stream Load, the FE's MySQL port).
//!
//! A double is only worth trusting if its bytes are what the real server would send, so each is
//! validated by clients dag did not write: pytds and FreeTDS `tsql` for the TDS server, curl and
//! the mariadb client for the StarRocks double (`tests/it/tds_crosscheck.rs`,
//! `tests/it/starrocks_double.rs`), never only by dag's own client.
//!
//! The binaries `tds_server` and `starrocks_server` run them as their own processes, for the
//! benchmarks in `tests/bench` and manual checks with those clients.

pub mod starrocks;
pub mod tds;
