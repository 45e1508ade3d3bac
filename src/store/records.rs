//! The records the store keeps, as types: statuses and outcomes are enums, moments are
//! [`Timestamp`]s. Their JSON is what the store has always written (snake_case names, RFC 3339
//! text in UTC with milliseconds), so existing state databases and mirrors read as before.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::VerifyMode;
use crate::model::fingerprint::Digest128;
use crate::model::{ChunkRange, Stage, TableInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub workflow: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub status: RunStatus,
    /// Hash of the workflow file: a resumed run must use the configuration it started with.
    pub config_hash: String,
    pub lake_only: bool,
    pub memory_budget: u64,
    pub tables: Vec<String>,
    /// How many times a process picked this run up (1 = never resumed).
    pub sessions: u32,
    /// Peak resident memory of the last process that worked on the run.
    #[serde(default)]
    pub peak_rss: Option<u64>,
    /// Most of that process's resident memory that was file-backed: the program's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_code: Option<u64>,
    /// Most memory the scheduler had reserved at once in that process.
    #[serde(default)]
    pub peak_reserved: Option<u64>,
    /// The run loads the target from the lake's published snapshots (`--from load`): its
    /// extract and write_iceberg records were taken from the lake, and it never contacts the
    /// source.
    #[serde(default)]
    pub from_lake: bool,
}

/// The outputs a task records; which fields are set depends on the stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outputs {
    /// extract: the table as the source described it when extraction started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<TableInfo>,
    /// extract: the chunk plan, fixed at the first attempt so a resume reuses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_plan: Vec<ChunkRange>,
    /// extract: rows and fingerprint of what the source returned; load: of what was loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest128>,
    /// extract: data files written (all chunks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_files: Option<usize>,
    /// write_iceberg: the snapshot that holds this run's rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<i64>,
    /// write_iceberg: snapshots in the lake table's history after the commit and retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<usize>,
    /// write_iceberg: whether the commit was found already made (resumed after a crash).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub commit_found: bool,
    /// verify: what each side holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lake: Option<Digest128>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Digest128>,
    /// verify: how much it compared ("full" or "count" in the JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_mode: Option<VerifyMode>,
    /// verify: keys whose rows differ between lake and target (a sample), with how.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differing_keys: Vec<String>,
    /// load: Stream Load requests done so far, in order (StarRocks); a resumed load skips them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<LoadRequestRecord>,
    /// verify: the source's row count when verifying (it may have moved on since extraction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_rows_now: Option<u64>,
    /// load: chunks loaded by this attempt vs. found already loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_loaded: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_already_loaded: Option<u32>,
    /// extract: chunks extracted by earlier attempts and reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_reused: Option<u32>,
    /// extract: values converted with a loss of precision, by column (e.g. datetime2(7) to
    /// microseconds).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lossy: BTreeMap<String, u64>,
    /// Anything worth telling the user about the result (e.g. source drift seen by verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub run_id: String,
    pub table: String,
    pub stage: Stage,
    pub status: TaskStatus,
    pub attempts: u32,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Memory the scheduler reserved for the task (bytes).
    pub mem_estimate: u64,
    /// The whole process's highest RSS while the task's last attempt ran (bytes); tasks
    /// overlap, so it is what the process held, not the task alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss: Option<u64>,
    pub outputs: Outputs,
}

impl TaskRecord {
    pub fn new(run_id: &str, table: &str, stage: Stage) -> Self {
        TaskRecord {
            run_id: run_id.to_string(),
            table: table.to_string(),
            stage,
            status: TaskStatus::Pending,
            attempts: 0,
            started_at: None,
            ended_at: None,
            last_error: None,
            mem_estimate: 0,
            peak_rss: None,
            outputs: Outputs::default(),
        }
    }

    pub fn duration_secs(&self) -> Option<f64> {
        Some(self.ended_at?.secs_since(self.started_at?))
    }
}

/// One finished Stream Load request: which rows it carried and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadRequestRecord {
    pub label: String,
    /// Index of the first data file (in sorted order) and the row within it where the request
    /// started; it ended where the next one starts.
    pub file: u32,
    pub row: u64,
    /// Where the next request starts.
    pub next_file: u32,
    pub next_row: u64,
    pub rows: u64,
    pub bytes: u64,
    pub outcome: RequestOutcome,
}

/// How a Stream Load request ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    /// Recorded before it was sent; a resumed load asks StarRocks what became of its label.
    Pending,
    /// Loaded by this request.
    Loaded,
    /// The label was already loaded (by an earlier attempt).
    Found,
    /// Loaded (or found) but only COMMITTED (Publish Timeout): the rows become visible shortly,
    /// and the staging table is not swapped in before they are.
    Committed,
}

/// A finished chunk of an extract: its rows are in `files` and nowhere else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub index: u32,
    pub digest: Digest128,
    /// Iceberg DataFile descriptions (JSON), ready to be committed.
    pub files: Vec<String>,
    /// Paths of those files, for the loader and for clean-up.
    pub paths: Vec<String>,
    pub attempt: u32,
    pub bytes: u64,
    /// Values converted with a loss of precision, by column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lossy: BTreeMap<String, u64>,
}

/// Where an incremental table stands: rows up to `value` are in the lake and in the target,
/// verified. Written only after the run's verify succeeded (see `task::verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub table: String,
    pub cursor: String,
    /// `None` when the table had no row with a cursor value yet.
    pub value: Option<crate::model::CursorValue>,
    /// The run that moved the rows up to `value`.
    pub run_id: String,
    pub updated_at: Timestamp,
    /// When the table was last fully refreshed (by run `full_refresh_run`).
    pub full_refresh_at: Timestamp,
    pub full_refresh_run: String,
}

/// The current moment, as records keep it.
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// A moment in a record. The JSON is RFC 3339 text in UTC with milliseconds
/// (`2026-12-07T05:27:23.123Z`), as the store has always written it; any RFC 3339 text is read
/// (and kept as the same instant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(chrono::DateTime<chrono::Utc>);

impl Timestamp {
    /// Now, to the millisecond the JSON keeps, so a record reads back equal to what was written.
    pub fn now() -> Timestamp {
        Timestamp::at(chrono::Utc::now())
    }

    /// `t` to the millisecond.
    pub fn at(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
        use chrono::SubsecRound;
        Timestamp(t.trunc_subsecs(3))
    }

    pub fn time(&self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }

    /// Seconds from `earlier` to this moment (negative if `earlier` is later).
    pub fn secs_since(&self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0).num_milliseconds() as f64 / 1000.0
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Timestamp, String> {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Timestamp::at(t.to_utc()))
            .map_err(|e| format!("{s:?} is not an RFC 3339 timestamp: {e}"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Timestamp, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A status snapshot written beside the database for readers while a run holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mirror {
    pub run: RunRecord,
    pub tasks: Vec<TaskRecord>,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watermarks: Vec<Watermark>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records as the store wrote them before its fields were typed (strings for moments, the
    /// verify mode and request outcomes), field for field.
    const OLD_RUN: &str = r#"{"id":"20261201020304_ab12","workflow":"worldzone","started_at":"2026-12-01T02:03:04.567Z","ended_at":"2026-12-01T02:09:10.001Z","status":"succeeded","config_hash":"9f2c","lake_only":false,"memory_budget":50331648,"tables":["AGENTSVES","CITIES"],"sessions":2,"peak_rss":130023424,"peak_reserved":41943040,"from_lake":false}"#;
    const OLD_TASK: &str = r#"{"run_id":"20261201020304_ab12","table":"AGENTSVES","stage":"verify","status":"succeeded","attempts":1,"started_at":"2026-12-01T02:08:00.000Z","ended_at":"2026-12-01T02:08:01.250Z","last_error":null,"mem_estimate":1048576,"outputs":{"digest":{"rows":9066,"sum":"0000000000000000000000000000abcd"},"lake":{"rows":9066,"sum":"0000000000000000000000000000abcd"},"target":{"rows":9066,"sum":"0000000000000000000000000000abcd"},"verify_mode":"count","requests":[{"label":"dag_w_r_T_0","file":0,"row":0,"next_file":1,"next_row":0,"rows":9000,"bytes":123456,"outcome":"loaded"},{"label":"dag_w_r_T_1","file":1,"row":0,"next_file":1,"next_row":66,"rows":66,"bytes":999,"outcome":"committed"},{"label":"dag_w_r_T_2","file":1,"row":66,"next_file":1,"next_row":66,"rows":0,"bytes":0,"outcome":"pending"},{"label":"dag_w_r_T_3","file":1,"row":66,"next_file":1,"next_row":66,"rows":0,"bytes":0,"outcome":"found"}]}}"#;
    const OLD_WATERMARK: &str = r#"{"table":"ORDERS","cursor":"UpdatedAt","value":{"kind":"micros","value":1764554584567000},"run_id":"20261201020304_ab12","updated_at":"2026-12-01T02:09:10.001Z","full_refresh_at":"2026-11-30T23:00:00.000Z","full_refresh_run":"20261130230000_cd34"}"#;

    fn same_json<T: Serialize + serde::de::DeserializeOwned>(old: &str) -> T {
        let typed: T = serde_json::from_str(old).unwrap();
        let again: serde_json::Value = serde_json::to_value(&typed).unwrap();
        let before: serde_json::Value = serde_json::from_str(old).unwrap();
        assert_eq!(again, before, "the JSON changed");
        typed
    }

    #[test]
    fn records_written_before_typing_read_typed_and_write_back_the_same_json() {
        let run: RunRecord = same_json(OLD_RUN);
        assert_eq!(run.status, RunStatus::Succeeded);
        let ended = run.ended_at.unwrap();
        assert_eq!(ended.secs_since(run.started_at), 365.434);
        assert_eq!(run.started_at.to_string(), "2026-12-01T02:03:04.567Z");

        let task: TaskRecord = same_json(OLD_TASK);
        assert_eq!(task.stage, Stage::Verify);
        assert_eq!(task.duration_secs(), Some(1.25));
        assert_eq!(task.outputs.verify_mode, Some(VerifyMode::Count));
        let outcomes: Vec<RequestOutcome> =
            task.outputs.requests.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            [
                RequestOutcome::Loaded,
                RequestOutcome::Committed,
                RequestOutcome::Pending,
                RequestOutcome::Found
            ]
        );

        let w: Watermark = same_json(OLD_WATERMARK);
        assert!(w.full_refresh_at < w.updated_at);
    }

    #[test]
    fn a_new_moment_reads_back_equal_and_in_the_stores_text_form() {
        let t = Timestamp::now();
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text.len(), "\"2026-12-01T02:03:04.567Z\"".len(), "{text}");
        assert!(text.ends_with("Z\""), "{text}");
        assert_eq!(serde_json::from_str::<Timestamp>(&text).unwrap(), t);
        // Column alignment in `dag status` pads it like text.
        assert_eq!(format!("{t:<26}|").len(), 27);
    }

    #[test]
    fn other_offsets_read_as_the_same_instant_and_bad_text_is_named() {
        let t: Timestamp = serde_json::from_str("\"2026-12-01T04:03:04.567+02:00\"").unwrap();
        assert_eq!(t.to_string(), "2026-12-01T02:03:04.567Z");
        let e = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(
            e.to_string().contains("\"yesterday\" is not an RFC 3339"),
            "{e}"
        );
        let e = serde_json::from_str::<VerifyMode>("\"sometimes\"").unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
    }
}
