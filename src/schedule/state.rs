//! What the scheduler remembers across restarts, one small JSON file per workflow:
//! `<state>/schedule/<workflow>.json`.
//!
//! "Catch up once after downtime" needs to know which fire times were already handled when the
//! process starts again; the run history cannot say (a skipped fire time leaves no run), and the
//! sled state database must stay free for the runs themselves (one opener at a time). The file is
//! replaced atomically (write a temporary file, then rename), so a crash leaves the old or the new
//! version, never half of one.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Every fire time up to here was handled (started, skipped, or before the scheduler first
    /// saw the workflow).
    #[serde(with = "rfc3339")]
    pub handled_until: DateTime<Utc>,
    /// The latest fire time that started a run.
    #[serde(default, with = "rfc3339_opt")]
    pub last_launch: Option<DateTime<Utc>>,
    /// Exit code of the last run the scheduler started (as `dag run`'s: 0 ok, 1 some task
    /// failed, 2 usage or configuration error), once it ended.
    #[serde(default)]
    pub last_exit: Option<u8>,
}

pub fn path(state_dir: &Path, workflow: &str) -> PathBuf {
    state_dir.join("schedule").join(format!("{workflow}.json"))
}

/// The saved state, `None` when there is none. An unreadable file is an error that names it.
pub fn load(state_dir: &Path, workflow: &str) -> Result<Option<ScheduleState>> {
    let p = path(state_dir, workflow);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::new(
                ErrorKind::State,
                format!("cannot read {}: {e}", p.display()),
            ));
        }
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::new(
            ErrorKind::State,
            format!(
                "{} is not a schedule state file ({e}); delete it to start afresh \
                 (missed fire times before now are then not caught up)",
                p.display()
            ),
        )
    })
}

pub fn save(state_dir: &Path, workflow: &str, s: &ScheduleState) -> Result<()> {
    let p = path(state_dir, workflow);
    let fail = |what: &str, e: std::io::Error| {
        Error::new(
            ErrorKind::State,
            format!("cannot {what} {}: {e}", p.display()),
        )
    };
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
    }
    let tmp = p.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(s).map_err(Error::from)?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| fail("write", e))?;
        f.write_all(&text).map_err(|e| fail("write", e))?;
        f.sync_all().map_err(|e| fail("write", e))?;
    }
    std::fs::rename(&tmp, &p).map_err(|e| fail("replace", e))
}

/// Times as RFC 3339 text, readable by people and by other tools.
mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::super::utc(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

mod rfc3339_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => DateTime::parse_from_rfc3339(&text)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}"))),
        }
    }
}
