//! Targets: where tables go after the lake.
//!
//! A closed enum like the sources. The load reads the data files the extract recorded (never the
//! source again), so a failed load is retried without re-extracting. Exactly-once rests on a
//! ledger the target keeps itself: each chunk's rows and its ledger row commit in one
//! transaction, and a full run loads into a staging table that is swapped in atomically at the
//! end, so readers see the old table or the new one.

pub mod sqlite;

use crate::config::TargetConfig;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(sqlite::SqliteTarget),
}

impl Target {
    pub fn build(cfg: &TargetConfig) -> Result<Target> {
        match cfg {
            TargetConfig::Sqlite { path } => {
                Ok(Target::Sqlite(sqlite::SqliteTarget { path: path.clone() }))
            }
            TargetConfig::Mysql { .. } | TargetConfig::StarRocks { .. } => Err(Error::config(
                "target.kind: only \"sqlite\" targets are part of this build yet",
            )),
        }
    }

    pub fn describe_location(&self) -> String {
        match self {
            Target::Sqlite(t) => format!("sqlite {}", t.path.display()),
        }
    }
}
