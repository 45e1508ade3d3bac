//! A Stream Load client with exactly-once retries.
//!
//! Exactly-once rests on labels (see `docs/reference/starrocks.md`): a label is used by at most
//! one committed load per database, so every retry of a part re-sends the same label, and an
//! unclear outcome (lost response, timeout, `Label Already Exists`) is settled by asking
//! `GET /api/{db}/get_load_state?label=` before anything is sent again. [`StreamLoadClient::load`]
//! implements that protocol; [`StreamLoadClient::put`] is one request. The HTTP exchange under
//! it (why it is written by hand, the `100 Continue` and 307 dance) is in `http.rs`.
//!
//! The password only ever leaves this module inside the `Authorization` header: it is not in
//! `Debug` output, errors or logs.

mod body;
mod http;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
pub use body::RequestBody;
use http::{redact, shown};

/// Characters kept as they are in a path segment or query value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Headers this client sets itself.
const RESERVED: &[&str] = &[
    "label",
    "expect",
    "authorization",
    "content-length",
    "host",
    "connection",
    "transfer-encoding",
];

/// The answer to one Stream Load request (HTTP 200 with a JSON body, success or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadResponse {
    /// `Success`, `Publish Timeout`, `Label Already Exists`, `Fail` (the FE's own refusals say
    /// `FAILED`).
    pub status: String,
    pub message: String,
    pub label: String,
    pub txn_id: Option<i64>,
    pub total: u64,
    pub loaded: u64,
    pub filtered: u64,
    pub unselected: u64,
    /// Where StarRocks lists the rejected rows.
    pub error_url: Option<String>,
    /// `RUNNING` or `FINISHED` when the label was already taken.
    pub existing_job_status: Option<String>,
    /// The JSON as received.
    pub raw: String,
}

/// A label's transaction state, as `get_load_state` reports it (StarRocks' `TransactionStatus`
/// names, plus `PREPARED` for two-phase loads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelState {
    Prepare,
    Prepared,
    Committed,
    Visible,
    Aborted,
    /// No such label (never used, or forgotten after `label_keep_max_second`).
    Unknown,
}

impl fmt::Display for LabelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelState::Prepare => "PREPARE",
            LabelState::Prepared => "PREPARED",
            LabelState::Committed => "COMMITTED",
            LabelState::Visible => "VISIBLE",
            LabelState::Aborted => "ABORTED",
            LabelState::Unknown => "UNKNOWN",
        })
    }
}

/// How a [`StreamLoadClient::load`] ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// A request of this call loaded the rows: `Success` (visible), or `Publish Timeout`
    /// (committed, visible shortly; never load it again).
    Loaded {
        response: LoadResponse,
        visible: bool,
        /// Requests sent, this one included.
        attempts: u32,
    },
    /// The label was already COMMITTED or VISIBLE: an earlier request with this label loaded the
    /// rows (a previous run, or a request of this call whose answer was lost). This call loaded
    /// nothing; how many rows that request loaded is not known here.
    AlreadyLoaded {
        state: LabelState,
        /// The `Label Already Exists` answer, when that is how it was learned.
        response: Option<LoadResponse>,
        attempts: u32,
    },
}

impl LoadOutcome {
    /// Whether this call's own request loaded the rows.
    pub fn loaded_now(&self) -> bool {
        matches!(self, LoadOutcome::Loaded { .. })
    }

    /// Rows this call loaded, when known.
    pub fn rows_loaded(&self) -> Option<u64> {
        match self {
            LoadOutcome::Loaded { response, .. } => Some(response.loaded),
            LoadOutcome::AlreadyLoaded { .. } => None,
        }
    }

    /// Whether the rows are already visible to queries (else committed, visible shortly).
    pub fn visible(&self) -> bool {
        match self {
            LoadOutcome::Loaded { visible, .. } => *visible,
            LoadOutcome::AlreadyLoaded { state, .. } => *state == LabelState::Visible,
        }
    }

    pub fn attempts(&self) -> u32 {
        match self {
            LoadOutcome::Loaded { attempts, .. } | LoadOutcome::AlreadyLoaded { attempts, .. } => {
                *attempts
            }
        }
    }
}

/// Talks Stream Load to one StarRocks FE.
#[derive(Clone)]
pub struct StreamLoadClient {
    /// `http://host:port/`, nothing else.
    base: Url,
    user: String,
    /// `Basic base64(user:password)`: a secret.
    auth: String,
    timeout: Duration,
    continue_wait: Duration,
    backoff_base: Duration,
    backoff_max: Duration,
    label_wait: Duration,
}

impl fmt::Debug for StreamLoadClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamLoadClient")
            .field("base", &self.base.as_str())
            .field("user", &self.user)
            .field("password", &"***")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Parses a Stream Load answer. StarRocks' BE answers `{"TxnId":..,"Label":..,"Status":..,
/// "Message":..,"NumberTotalRows":..,...}`; the FE's own refusals are `{"Status":"FAILED",
/// "Message":..}` (`TransactionResult`) or `{"status":"FAILED","msg":..}` (`RestBaseResult`).
fn parse_load_response(text: &str, sent_label: &str) -> Result<LoadResponse> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        Error::unavailable(format!(
            "unreadable Stream Load answer ({e}): {}",
            text.chars().take(300).collect::<String>()
        ))
    })?;
    let obj = v.as_object().ok_or_else(|| {
        Error::unavailable(format!("Stream Load answer is not a JSON object: {text}"))
    })?;
    let s = |keys: &[&str]| {
        keys.iter().find_map(|k| obj.get(*k)).and_then(|x| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let n = |k: &str| {
        obj.get(k)
            .and_then(|x| {
                x.as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0)
    };
    let status = s(&["Status", "status"])
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::unavailable(format!("Stream Load answer without a Status: {text}"))
        })?;
    Ok(LoadResponse {
        status,
        message: s(&["Message", "msg", "message"]).unwrap_or_default(),
        label: s(&["Label"]).unwrap_or_else(|| sent_label.to_string()),
        txn_id: obj.get("TxnId").and_then(|x| {
            x.as_i64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        }),
        total: n("NumberTotalRows"),
        loaded: n("NumberLoadedRows"),
        filtered: n("NumberFilteredRows"),
        unselected: n("NumberUnselectedRows"),
        error_url: s(&["ErrorURL"]).filter(|u| !u.is_empty()),
        existing_job_status: s(&["ExistingJobStatus"]).filter(|u| !u.is_empty()),
        raw: text.to_string(),
    })
}

/// Parses a `get_load_state` answer.
///
/// The shape is StarRocks' `GetStreamLoadState` (fe/fe-core/.../http/rest/GetStreamLoadState.java):
/// a `RestBaseResult` (`status` "OK"/"FAILED", `code`, `msg`, `message`) plus `state`, the
/// label's `TransactionStatus` name, and `reason`, e.g.
/// `{"state":"VISIBLE","reason":"","status":"OK","code":"0","msg":"Success","message":"OK"}`.
/// The StarRocks Flink connector's `LabelStateService` (starrocks-stream-load-sdk,
/// `mergecommit/fe/LabelStateService.java`) reads the same fields and requires `status` OK.
fn parse_label_state(text: &str) -> Result<LabelState> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        Error::unavailable(format!("unreadable get_load_state answer ({e}): {text}"))
    })?;
    let field = |k: &str| v.get(k).and_then(Value::as_str);
    if let Some(status) = field("status")
        && !status.eq_ignore_ascii_case("OK")
    {
        let msg = field("msg").or(field("message")).unwrap_or("");
        return Err(Error::unavailable(format!(
            "get_load_state answered {status}: {msg}"
        )));
    }
    let state = field("state").ok_or_else(|| {
        Error::unavailable(format!("get_load_state answer without a state: {text}"))
    })?;
    Ok(match state.to_ascii_uppercase().as_str() {
        "PREPARE" => LabelState::Prepare,
        "PREPARED" => LabelState::Prepared,
        "COMMITTED" => LabelState::Committed,
        "VISIBLE" => LabelState::Visible,
        "ABORTED" => LabelState::Aborted,
        "UNKNOWN" => LabelState::Unknown,
        other => {
            return Err(Error::unavailable(format!(
                "get_load_state answered an unknown state {other:?}"
            )));
        }
    })
}

/// What a Stream Load status means for the protocol.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Visible,
    Committed,
    LabelTaken,
    Failed,
    Unclear,
}

fn verdict(status: &str) -> Verdict {
    match status.trim().to_ascii_lowercase().as_str() {
        "success" => Verdict::Visible,
        "publish timeout" => Verdict::Committed,
        "label already exists" => Verdict::LabelTaken,
        "fail" | "failed" => Verdict::Failed,
        _ => Verdict::Unclear,
    }
}

/// How a label's state settles.
enum Settled {
    /// COMMITTED or VISIBLE: loaded.
    Done(LabelState),
    /// ABORTED or UNKNOWN: load it (again) with the same label.
    Again(LabelState),
}

fn check_headers(headers: &[(String, String)]) -> Result<()> {
    for (k, v) in headers {
        let token = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(Error::config(format!(
                "invalid Stream Load header {k:?} (names are HTTP tokens; values have no line \
                 breaks)"
            )));
        }
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(k)) {
            return Err(Error::config(format!(
                "Stream Load header {k:?} is set by the client itself"
            )));
        }
    }
    Ok(())
}

impl StreamLoadClient {
    /// A client for the FE at `http_url` (`http://fe:8030`; a path is ignored).
    ///
    /// `timeout` bounds one HTTP exchange: connecting, sending, and StarRocks' processing until
    /// it answers, which for a large load takes as long as the load. Pass at least the load's
    /// `timeout` header plus a margin. Waiting for a label stuck in PREPARE is bounded by the same
    /// duration (see [`StreamLoadClient::with_label_wait`]).
    pub fn new(http_url: &str, user: &str, password: &str, timeout: Duration) -> Result<Self> {
        let url = Url::parse(http_url).map_err(|e| {
            Error::config(format!("http_url {} is not a URL: {e}", redact(http_url)))
        })?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(Error::config(format!(
                    "http_url {}: https is not supported for Stream Load; use the FE's plain \
                     http:// port (8030 by default)",
                    shown(&url)
                )));
            }
            other => {
                return Err(Error::config(format!(
                    "http_url {}: scheme {other} is not supported; use http://fe:8030",
                    shown(&url)
                )));
            }
        }
        if url.host().is_none() {
            return Err(Error::config(format!(
                "http_url {} has no host",
                shown(&url)
            )));
        }
        let mut base = url.clone();
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);
        let mut auth = b"Basic ".to_vec();
        super::csv::base64_into(format!("{user}:{password}").as_bytes(), &mut auth);
        Ok(StreamLoadClient {
            base,
            user: user.to_string(),
            auth: String::from_utf8_lossy(&auth).into_owned(),
            timeout,
            continue_wait: Duration::from_secs(1),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            label_wait: timeout.max(Duration::from_secs(60)),
        })
    }

    /// Delay before the n-th retry: `base * 2^(n-1)`, at most `max`, with jitter (defaults 1 s
    /// and 30 s).
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// Longest wait for a label in PREPARE/PREPARED (a load with it still running) to settle
    /// (default: the larger of the timeout and 60 s).
    pub fn with_label_wait(mut self, wait: Duration) -> Self {
        self.label_wait = wait;
        self
    }

    /// How long to wait for `100 Continue` before sending the body anyway (default 1 s).
    pub fn with_continue_wait(mut self, wait: Duration) -> Self {
        self.continue_wait = wait;
        self
    }

    /// The FE's address, for messages.
    pub fn address(&self) -> String {
        shown(&self.base)
    }

    fn delay(&self, n: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << n.saturating_sub(1).min(16));
        exp.min(self.backoff_max)
            .mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    fn url(&self, segments: &[&str], query: Option<(&str, &str)>) -> Url {
        let mut u = self.base.clone();
        let path: String = segments
            .iter()
            .map(|s| format!("/{}", utf8_percent_encode(s, SEGMENT)))
            .collect();
        u.set_path(&path);
        if let Some((k, v)) = query {
            u.query_pairs_mut().append_pair(k, v);
        }
        u
    }

    /// One PUT of `body` to `/api/{db}/{table}/_stream_load` with `label` and `headers`,
    /// redirects followed. Errors of kind `Unavailable` mean the outcome is unknown (the request
    /// may or may not have been loaded); `Config` errors will not go away by retrying.
    pub async fn put(
        &self,
        db: &str,
        table: &str,
        label: &str,
        headers: &[(String, String)],
        body: &(impl RequestBody + ?Sized),
    ) -> Result<LoadResponse> {
        check_headers(headers)?;
        if label.is_empty() {
            return Err(Error::internal(
                "a Stream Load needs a label: without one StarRocks cannot deduplicate retries",
            ));
        }
        check_headers(&[("x-label".to_string(), label.to_string())])?;
        let mut all = Vec::with_capacity(headers.len() + 1);
        all.push(("label".to_string(), label.to_string()));
        all.extend(headers.iter().cloned());
        let url = self.url(&["api", db, table, "_stream_load"], None);
        let resp = self.request("PUT", url, &all, Some(body)).await?;
        let where_ = format!("Stream Load of {db}.{table} (label {label})");
        match resp.head.status {
            200 => {
                let r = parse_load_response(&resp.text(), label)
                    .map_err(|e| e.context(where_.clone()))?;
                tracing::debug!(
                    db,
                    table,
                    label,
                    status = %r.status,
                    loaded = r.loaded,
                    filtered = r.filtered,
                    "stream load answered"
                );
                Ok(r)
            }
            401 | 403 => Err(Error::config(format!(
                "{where_}: StarRocks refused user {} (HTTP {}): {}",
                self.user,
                resp.head.status,
                resp.snippet()
            ))),
            404 => Err(Error::config(format!(
                "{where_}: HTTP 404 from {}; is http_url the FE's HTTP port? {}",
                self.address(),
                resp.snippet()
            ))),
            s => Err(Error::unavailable(format!(
                "{where_}: HTTP {s}: {}",
                resp.snippet()
            ))),
        }
    }

    /// The state of `label` in `db`: `GET /api/{db}/get_load_state?label=` (redirects to the
    /// leader FE followed). See [`parse_label_state`] for the answer's shape and its source.
    pub async fn label_state(&self, db: &str, label: &str) -> Result<LabelState> {
        let url = self.url(&["api", db, "get_load_state"], Some(("label", label)));
        let resp = self.request::<[u8]>("GET", url, &[], None).await?;
        match resp.head.status {
            200 => parse_label_state(&resp.text()),
            401 | 403 => Err(Error::config(format!(
                "get_load_state of label {label} in {db}: StarRocks refused user {} (HTTP {}): {}",
                self.user,
                resp.head.status,
                resp.snippet()
            ))),
            s => Err(Error::unavailable(format!(
                "get_load_state of label {label} in {db}: HTTP {s}: {}",
                resp.snippet()
            ))),
        }
    }

    /// Loads `body` into `db`.`table` under `label`, exactly once, per the status table of
    /// `docs/reference/starrocks.md`:
    ///
    /// * `Success` / `Publish Timeout`: done ([`LoadOutcome::Loaded`]); never loaded again.
    /// * `Label Already Exists`: the label's state is polled with backoff: VISIBLE or COMMITTED
    ///   is done ([`LoadOutcome::AlreadyLoaded`]), PREPARE/PREPARED is waited for, ABORTED or
    ///   UNKNOWN is loaded again with the same label.
    /// * `Fail`: loaded again with the same label, unless rows were filtered as bad data
    ///   (`NumberFilteredRows` > 0 or an `ErrorURL`): that is a non-retryable [`Error::data`]
    ///   naming the table, the counts and the ErrorURL.
    /// * No answer (network error, timeout, connection closed before the answer) or an
    ///   unexpected one: the label's state is checked first, as above, then the same label is
    ///   sent again.
    ///
    /// At most `retries` requests follow the first, `base * 2^(n-1)` (jittered) apart. When they
    /// are used up, the last error is returned (kind `Unavailable`, retryable: a later try with
    /// the same label stays exactly-once).
    pub async fn load(
        &self,
        db: &str,
        table: &str,
        label: &str,
        headers: &[(String, String)],
        body: &(impl RequestBody + ?Sized),
        retries: u32,
    ) -> Result<LoadOutcome> {
        let mut attempts = 0u32;
        let mut last: Option<Error> = None;
        while attempts <= retries {
            if attempts > 0 {
                tokio::time::sleep(self.delay(attempts)).await;
            }
            attempts += 1;
            let resp = match self.put(db, table, label, headers, body).await {
                Ok(r) => r,
                Err(e) if e.kind == ErrorKind::Unavailable => {
                    tracing::warn!(db, table, label, attempt = attempts, error = %e,
                        "stream load outcome unknown; checking the label");
                    match self.settle(db, label).await {
                        Ok(Settled::Done(state)) => {
                            return Ok(LoadOutcome::AlreadyLoaded {
                                state,
                                response: None,
                                attempts,
                            });
                        }
                        Ok(Settled::Again(_)) => {}
                        Err(ce) => tracing::warn!(db, label, error = %ce,
                            "label state unknown; sending again with the same label"),
                    }
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match verdict(&resp.status) {
                v @ (Verdict::Visible | Verdict::Committed) => {
                    tracing::info!(db, table, label, loaded = resp.loaded, status = %resp.status,
                        "stream load done");
                    return Ok(LoadOutcome::Loaded {
                        response: resp,
                        visible: v == Verdict::Visible,
                        attempts,
                    });
                }
                Verdict::Failed if resp.filtered > 0 || resp.error_url.is_some() => {
                    return Err(Error::data(format!(
                        "Stream Load of {db}.{table} (label {label}) failed: {} of {} rows were \
                         rejected as bad data ({} loaded, {} unselected): {}; rejected rows: {}",
                        resp.filtered,
                        resp.total,
                        resp.loaded,
                        resp.unselected,
                        resp.message,
                        resp.error_url.as_deref().unwrap_or("(no ErrorURL)")
                    )));
                }
                Verdict::Failed => {
                    tracing::warn!(db, table, label, attempt = attempts, message = %resp.message,
                        "stream load failed; retrying with the same label");
                    last = Some(Error::unavailable(format!(
                        "Stream Load of {db}.{table} (label {label}) failed: {}",
                        resp.message
                    )));
                }
                other @ (Verdict::LabelTaken | Verdict::Unclear) => {
                    if other == Verdict::Unclear {
                        tracing::warn!(db, table, label, status = %resp.status,
                            "unexpected stream load status; checking the label");
                    }
                    match self.settle(db, label).await {
                        Ok(Settled::Done(state)) => {
                            return Ok(LoadOutcome::AlreadyLoaded {
                                state,
                                response: Some(resp),
                                attempts,
                            });
                        }
                        Ok(Settled::Again(state)) => {
                            last = Some(Error::unavailable(format!(
                                "Stream Load of {db}.{table}: label {label} answered {} and \
                                 its state is {state}; loading again with the same label",
                                resp.status
                            )));
                        }
                        Err(e) => last = Some(e),
                    }
                }
            }
        }
        let e = last.unwrap_or_else(|| Error::internal("no Stream Load attempt was made"));
        Err(e.context(format!("after {attempts} Stream Load attempts")))
    }

    /// Polls the label until it settles; PREPARE/PREPARED is waited out for at most
    /// `label_wait`.
    async fn settle(&self, db: &str, label: &str) -> Result<Settled> {
        let start = tokio::time::Instant::now();
        let mut polls = 0u32;
        loop {
            let state = self.label_state(db, label).await?;
            match state {
                LabelState::Visible | LabelState::Committed => return Ok(Settled::Done(state)),
                LabelState::Aborted | LabelState::Unknown => return Ok(Settled::Again(state)),
                LabelState::Prepare | LabelState::Prepared => {
                    let waited = start.elapsed();
                    if waited >= self.label_wait {
                        return Err(Error::unavailable(format!(
                            "label {label} in {db} is still {state} after {waited:?}: a load \
                             with it is still running; try again later"
                        )));
                    }
                    polls += 1;
                    tokio::time::sleep(self.delay(polls).min(self.label_wait - waited)).await;
                }
            }
        }
    }
}
