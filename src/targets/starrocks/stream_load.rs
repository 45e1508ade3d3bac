//! A Stream Load client with exactly-once retries.
//!
//! Why a hand-written HTTP/1.1 client: StarRocks' FE refuses an HTTP/1.1 Stream Load without
//! `Expect: 100-continue`, then answers **307** with the BE's address and closes *without
//! reading the body*; the body, `Authorization` and every header must then be sent again to the
//! `Location`. reqwest/hyper send the body right after the headers instead of waiting for
//! `100 Continue` (so a large body races the FE's close), and their automatic redirects drop
//! `Authorization` when the host or port changes. This client, on [`tokio::net::TcpStream`] with
//! `httparse` for the responses, sends the headers, waits for `100 Continue` or a final answer
//! (after about a second without either it sends the body anyway, as RFC 9110 §10.1.1 allows),
//! keeps reading while it sends so an early answer stops the upload, and follows redirects by
//! hand. Plain `http://` only: an `https://` address is a configuration error.
//!
//! Exactly-once rests on labels (see `docs/reference/starrocks.md`): a label is used by at most
//! one committed load per database, so every retry of a part re-sends the same label, and an
//! unclear outcome (lost response, timeout, `Label Already Exists`) is settled by asking
//! `GET /api/{db}/get_load_state?label=` before anything is sent again. [`StreamLoadClient::load`]
//! implements that protocol; [`StreamLoadClient::put`] is one request.
//!
//! The password only ever leaves this module inside the `Authorization` header: it is not in
//! `Debug` output, errors or logs.

use std::fmt;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::{Host, Url};

use crate::error::{Error, ErrorKind, Result};

/// Characters kept as they are in a path segment or query value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Redirects followed per request (FE to leader FE to BE is two).
const MAX_REDIRECTS: usize = 5;
/// Largest response head and body accepted (Stream Load answers are a few hundred bytes).
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;
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

/// `s` with anything between `://` and the last `@` hidden (a URL's user and password).
fn redact(s: &str) -> String {
    match (s.find("://"), s.rfind('@')) {
        (Some(i), Some(j)) if j > i => format!("{}***{}", &s[..i + 3], &s[j..]),
        (None, Some(_)) => "(a URL with credentials)".to_string(),
        _ => s.to_string(),
    }
}

/// A URL for messages: scheme, host, port, path and query, never user or password.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// One parsed HTTP response head.
#[derive(Debug)]
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A complete HTTP response.
#[derive(Debug)]
struct HttpResponse {
    head: Head,
    body: Vec<u8>,
}

impl HttpResponse {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The start of the body, for error messages.
    fn snippet(&self) -> String {
        self.text().chars().take(300).collect()
    }
}

fn lost(what: &str, e: impl fmt::Display) -> Error {
    Error::unavailable(format!("{what}: {e}"))
}

/// Reads responses from a connection. All progress is kept in `self`, so a read that is
/// dropped half-way (a `select!` or a timeout) loses nothing: the next call resumes.
#[derive(Default)]
struct ResponseReader {
    buf: Vec<u8>,
    /// The final (non-1xx) head, once parsed.
    head: Option<Head>,
    eof: bool,
}

impl ResponseReader {
    async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = r
            .read(&mut chunk)
            .await
            .map_err(|e| lost("connection lost while reading the answer", e))?;
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// A head parsed from the front of the buffer, if one is complete.
    fn parse_head(&mut self) -> Result<Option<Head>> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => {
                let head = Head {
                    status: resp.code.unwrap_or(0),
                    headers: resp
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).trim().to_string(),
                            )
                        })
                        .collect(),
                };
                self.buf.drain(..n);
                Ok(Some(head))
            }
            Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD => Err(Error::unavailable(
                format!("HTTP response head longer than {MAX_HEAD} bytes"),
            )),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(Error::unavailable(format!("malformed HTTP response: {e}"))),
        }
    }

    /// The next head, 1xx included.
    async fn next_head<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Head> {
        loop {
            if let Some(h) = self.parse_head()? {
                return Ok(h);
            }
            if self.eof {
                return Err(Error::unavailable(
                    "the connection closed before a complete answer (lost response)",
                ));
            }
            self.fill(r).await?;
        }
    }

    /// The final response: skips 1xx heads, then reads the body by its framing.
    async fn response<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<HttpResponse> {
        loop {
            let Some(head) = &self.head else {
                let h = self.next_head(r).await?;
                if h.status >= 200 {
                    self.head = Some(h);
                }
                continue;
            };
            let chunked = head
                .header("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
            let length = head
                .header("content-length")
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| Error::unavailable(format!("bad Content-Length {v:?}")))
                })
                .transpose()?;
            let no_body = head.status == 204 || head.status == 304;
            let done = if no_body {
                Some((Vec::new(), 0))
            } else if chunked {
                decode_chunked(&self.buf)?
            } else if let Some(n) = length {
                (self.buf.len() >= n).then(|| (self.buf[..n].to_vec(), n))
            } else if self.eof {
                Some((self.buf.clone(), self.buf.len()))
            } else {
                None
            };
            if let Some((body, used)) = done {
                self.buf.drain(..used);
                let head = self.head.take().unwrap_or(Head {
                    status: 0,
                    headers: Vec::new(),
                });
                return Ok(HttpResponse { head, body });
            }
            if self.buf.len() > MAX_BODY {
                return Err(Error::unavailable(format!(
                    "HTTP response body longer than {MAX_BODY} bytes"
                )));
            }
            if self.eof {
                return Err(Error::unavailable(
                    "the connection closed in the middle of the answer (lost response)",
                ));
            }
            self.fill(r).await?;
        }
    }
}

/// A complete chunked body at the front of `buf`: `(body, bytes used)`, or `None` if more is
/// needed.
fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>> {
    let find_crlf = |from: usize| {
        buf.get(from..)
            .and_then(|b| b.windows(2).position(|w| w == b"\r\n"))
            .map(|p| from + p)
    };
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find_crlf(pos) else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&buf[pos..eol]);
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| Error::unavailable(format!("bad chunk size {size_text:?}")))?;
        pos = eol + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(eol) = find_crlf(pos) else {
                    return Ok(None);
                };
                let empty = eol == pos;
                pos = eol + 2;
                if empty {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(Error::unavailable(format!(
                "HTTP response body longer than {MAX_BODY} bytes"
            )));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
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
        body: &[u8],
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
        let resp = self.request("GET", url, &[], None).await?;
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
        body: &[u8],
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

    /// Sends one request, following redirects by hand with every header and the body again.
    async fn request(
        &self,
        method: &str,
        mut url: Url,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse> {
        for _ in 0..=MAX_REDIRECTS {
            let resp = match tokio::time::timeout(
                self.timeout,
                self.exchange(method, &url, headers, body),
            )
            .await
            {
                Ok(r) => r?,
                Err(_) => {
                    return Err(Error::unavailable(format!(
                        "{method} {}: no complete answer within {:?}",
                        shown(&url),
                        self.timeout
                    )));
                }
            };
            if !matches!(resp.head.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let location = resp.head.header("location").ok_or_else(|| {
                Error::unavailable(format!(
                    "HTTP {} from {} without a Location",
                    resp.head.status,
                    shown(&url)
                ))
            })?;
            let next = url.join(location).map_err(|e| {
                Error::unavailable(format!(
                    "bad redirect Location {} from {}: {e}",
                    redact(location),
                    shown(&url)
                ))
            })?;
            if next.scheme() != "http" {
                return Err(Error::config(format!(
                    "StarRocks redirected to {}: only http:// is supported",
                    shown(&next)
                )));
            }
            tracing::debug!(from = %shown(&url), to = %shown(&next), "following redirect");
            url = next;
        }
        Err(Error::unavailable(format!(
            "{method} {}: more than {MAX_REDIRECTS} redirects",
            shown(&url)
        )))
    }

    /// One request on one connection (closed afterwards).
    async fn exchange(
        &self,
        method: &str,
        url: &Url,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse> {
        let host = match url.host() {
            Some(Host::Domain(d)) => d.to_string(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => return Err(Error::config(format!("{} has no host", shown(url)))),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let mut stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| lost(&format!("cannot connect to {host}:{port}"), e))?;
        let _ = stream.set_nodelay(true);

        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}:{port}\r\nAuthorization: {}\r\n\
             User-Agent: dag\r\nAccept: application/json\r\nConnection: close\r\n",
            url.host_str().unwrap_or(&host),
            self.auth
        );
        if let Some(b) = body {
            head.push_str(&format!(
                "Expect: 100-continue\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| lost(&format!("sending to {host}:{port}"), e))?;

        let mut reader = ResponseReader::default();
        let Some(body) = body else {
            return reader.response(&mut stream).await;
        };
        // `100 Continue`, a final answer, or silence.
        match tokio::time::timeout(self.continue_wait, reader.next_head(&mut stream)).await {
            Ok(Ok(h)) if h.status >= 200 => {
                // Answered before the body: the server does not want it (a 307, a refusal).
                reader.head = Some(h);
                return reader.response(&mut stream).await;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => tracing::debug!(%host, port, "no 100 Continue; sending the body anyway"),
        }
        // Send the body while reading, so an early final answer is seen (and the rest of the
        // body dropped) instead of writing into a closed connection.
        let (mut rd, mut wr) = stream.split();
        let send = async {
            wr.write_all(body).await?;
            wr.flush().await
        };
        tokio::pin!(send);
        let mut sent: Option<std::io::Result<()>> = None;
        loop {
            tokio::select! {
                r = &mut send, if sent.is_none() => sent = Some(r),
                resp = reader.response(&mut rd) => {
                    return match (resp, sent) {
                        (Ok(r), _) => Ok(r),
                        (Err(e), Some(Err(we))) => Err(lost(
                            &format!("sending the body to {host}:{port} failed ({we})"),
                            e,
                        )),
                        (Err(e), _) => Err(e),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    const PASSWORD: &str = "s3cr3t:pa55";

    /// A request as a test server saw it.
    #[derive(Debug, Clone, Default)]
    struct Seen {
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// What a test server does with a request, decided from its head.
    enum Reply {
        /// 307 to this URL at once, body unread (what the FE does).
        Redirect(String),
        /// `100 Continue`, the body, then 307 to this URL.
        ContinueThenRedirect(String),
        /// `100 Continue`, the body, then 200 with this JSON.
        Json(String),
        /// 200 with this JSON at once, body unread.
        JsonNow(String),
        /// 200 with this JSON, chunked, at once.
        ChunkedNow(String),
        /// No interim answer; the body (which the client sends after its wait), then JSON.
        JsonAfterBody(String),
        /// `100 Continue`, the body, then close without answering.
        Lose,
        /// `100 Continue`, the body, then silence until the client gives up.
        Hang,
        /// This status and body at once.
        Status(u16, String),
    }

    type Log = Arc<Mutex<Vec<Seen>>>;

    /// Serves on a free port; returns the port and the requests seen (in completion order).
    async fn serve<F>(handler: F) -> (u16, Log)
    where
        F: Fn(&Seen) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log: Log = Arc::default();
        let handler = Arc::new(handler);
        let log2 = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (handler, log) = (handler.clone(), log2.clone());
                tokio::spawn(async move {
                    let _ = handle(sock, handler.as_ref(), &log).await;
                });
            }
        });
        (port, log)
    }

    async fn handle<F: Fn(&Seen) -> Reply>(
        mut sock: TcpStream,
        handler: &F,
        log: &Log,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let (mut seen, used) = loop {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut hs);
            if let Ok(httparse::Status::Complete(used)) = req.parse(&buf) {
                let seen = Seen {
                    method: req.method.unwrap_or("").to_string(),
                    path: req.path.unwrap_or("").to_string(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).to_string(),
                            )
                        })
                        .collect(),
                    body: Vec::new(),
                };
                break (seen, used);
            }
        };
        let mut body = buf[used..].to_vec();
        let length: usize = seen
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let reply = handler(&seen);
        let mut read_body = async |sock: &mut TcpStream, body: &mut Vec<u8>| {
            while body.len() < length {
                let n = sock.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            std::io::Result::Ok(())
        };
        let json = |j: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{j}",
                j.len()
            )
        };
        let redirect = |to: &str| {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            )
        };
        const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        match reply {
            Reply::Redirect(to) => sock.write_all(redirect(&to).as_bytes()).await?,
            Reply::ContinueThenRedirect(to) => {
                sock.write_all(CONTINUE).await?;
                read_body(&mut sock, &mut body).await?;
                sock.write_all(redirect(&to).as_bytes()).await?;
            }
            Reply::Json(j) => {
                sock.write_all(CONTINUE).await?;
                read_body(&mut sock, &mut body).await?;
                sock.write_all(json(&j).as_bytes()).await?;
            }
            Reply::JsonNow(j) => sock.write_all(json(&j).as_bytes()).await?,
            Reply::ChunkedNow(j) => {
                let (a, b) = j.split_at(j.len() / 2);
                let text = format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n\
                     {:x}\r\n{b}\r\n0\r\nX-Trailer: t\r\n\r\n",
                    a.len(),
                    b.len()
                );
                sock.write_all(text.as_bytes()).await?;
            }
            Reply::JsonAfterBody(j) => {
                read_body(&mut sock, &mut body).await?;
                sock.write_all(json(&j).as_bytes()).await?;
            }
            Reply::Lose => {
                sock.write_all(CONTINUE).await?;
                read_body(&mut sock, &mut body).await?;
            }
            Reply::Hang => {
                sock.write_all(CONTINUE).await?;
                read_body(&mut sock, &mut body).await?;
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Reply::Status(code, text) => {
                let r = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                sock.write_all(r.as_bytes()).await?;
            }
        }
        seen.body = body;
        log.lock().unwrap().push(seen);
        let _ = sock.shutdown().await;
        Ok(())
    }

    fn client(port: u16) -> StreamLoadClient {
        StreamLoadClient::new(
            &format!("http://127.0.0.1:{port}"),
            "loader",
            PASSWORD,
            Duration::from_secs(5),
        )
        .unwrap()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_label_wait(Duration::from_secs(3))
        .with_continue_wait(Duration::from_millis(150))
    }

    fn expected_auth() -> String {
        let mut a = b"Basic ".to_vec();
        crate::targets::starrocks::csv::base64_into(
            format!("loader:{PASSWORD}").as_bytes(),
            &mut a,
        );
        String::from_utf8(a).unwrap()
    }

    fn success(label: &str, rows: u64) -> String {
        format!(
            r#"{{"TxnId":1003,"Label":"{label}","Status":"Success","Message":"OK",
            "NumberTotalRows":{rows},"NumberLoadedRows":{rows},"NumberFilteredRows":0,
            "NumberUnselectedRows":0,"LoadBytes":40,"LoadTimeMs":12}}"#
        )
    }

    fn state(s: &str) -> String {
        format!(
            r#"{{"state":"{s}","reason":"","status":"OK","code":"0","msg":"Success","message":"OK"}}"#
        )
    }

    fn headers() -> Vec<(String, String)> {
        vec![
            ("format".to_string(), "csv".to_string()),
            ("columns".to_string(), "`a`,`b`".to_string()),
        ]
    }

    const BODY: &[u8] = b"1,\"x\"\n2,\\\\N\n";

    /// A BE that wants auth and Expect, and answers with `reply` (by request number, from 0).
    async fn be<F>(reply: F) -> (u16, Log)
    where
        F: Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
    {
        let n = AtomicUsize::new(0);
        serve(move |s| {
            if s.path.contains("get_load_state") {
                return Reply::Status(500, "unexpected get_load_state".into());
            }
            if s.header("authorization") != Some(expected_auth().as_str()) {
                return Reply::Status(401, "Unauthorized".into());
            }
            if s.header("expect") != Some("100-continue") {
                return Reply::JsonNow(
                    r#"{"Status":"FAILED","Message":"There is no 100-continue header"}"#.into(),
                );
            }
            reply(n.fetch_add(1, Ordering::SeqCst), s)
        })
        .await
    }

    /// An FE that redirects Stream Loads to `be_port` and answers get_load_state from `states`
    /// (the last one repeats).
    async fn fe(be_port: u16, states: Vec<&'static str>) -> (u16, Log) {
        let n = AtomicUsize::new(0);
        serve(move |s| {
            if s.header("authorization") != Some(expected_auth().as_str()) {
                return Reply::Status(401, "Unauthorized".into());
            }
            if s.path.starts_with("/api/db/get_load_state?label=") {
                let i = n.fetch_add(1, Ordering::SeqCst).min(states.len() - 1);
                return Reply::ChunkedNow(state(states[i]));
            }
            if s.header("expect") != Some("100-continue") {
                return Reply::JsonNow(
                    r#"{"Status":"FAILED","Message":"There is no 100-continue header"}"#.into(),
                );
            }
            Reply::Redirect(format!("http://127.0.0.1:{be_port}{}", s.path))
        })
        .await
    }

    #[tokio::test]
    async fn redirect_resends_auth_headers_and_body_to_the_be() {
        let (be_port, be_log) =
            be(|_, s| Reply::Json(success(s.header("label").unwrap(), 2))).await;
        let (fe_port, fe_log) = fe(be_port, vec!["UNKNOWN"]).await;
        let c = client(fe_port);
        let r = c.put("db", "t", "lbl_1", &headers(), BODY).await.unwrap();
        assert_eq!(r.status, "Success");
        assert_eq!(r.loaded, 2);
        assert_eq!(r.txn_id, Some(1003));
        assert_eq!(r.label, "lbl_1");
        let fe = fe_log.lock().unwrap().clone();
        let be = be_log.lock().unwrap().clone();
        assert_eq!(fe.len(), 1);
        assert!(fe[0].body.is_empty(), "the FE never wanted the body");
        assert_eq!(be.len(), 1);
        let b = &be[0];
        assert_eq!(b.method, "PUT");
        assert_eq!(b.path, "/api/db/t/_stream_load");
        assert_eq!(b.body, BODY);
        assert_eq!(b.header("label"), Some("lbl_1"));
        assert_eq!(b.header("format"), Some("csv"));
        assert_eq!(b.header("columns"), Some("`a`,`b`"));
        assert_eq!(
            b.header("content-length"),
            Some(BODY.len().to_string().as_str())
        );
        assert_eq!(
            b.header("host"),
            Some(format!("127.0.0.1:{be_port}").as_str())
        );

        let out = c
            .load("db", "t", "lbl_1", &headers(), BODY, 2)
            .await
            .unwrap();
        assert!(out.loaded_now() && out.visible());
        assert_eq!(out.rows_loaded(), Some(2));
        assert_eq!(out.attempts(), 1);
    }

    #[tokio::test]
    async fn fe_that_reads_the_body_before_redirecting() {
        let (be_port, be_log) =
            be(|_, s| Reply::Json(success(s.header("label").unwrap(), 1))).await;
        let (fe_port, fe_log) = serve(move |s| {
            Reply::ContinueThenRedirect(format!("http://127.0.0.1:{be_port}{}", s.path))
        })
        .await;
        let r = client(fe_port)
            .put("db", "t", "l", &headers(), BODY)
            .await
            .unwrap();
        assert_eq!(r.status, "Success");
        assert_eq!(fe_log.lock().unwrap()[0].body, BODY);
        assert_eq!(be_log.lock().unwrap()[0].body, BODY);
    }

    #[tokio::test]
    async fn body_is_sent_without_100_continue_after_the_wait() {
        let (port, log) =
            be(|_, s| Reply::JsonAfterBody(success(s.header("label").unwrap(), 2))).await;
        let r = client(port)
            .put("db", "t", "l", &headers(), BODY)
            .await
            .unwrap();
        assert_eq!(r.status, "Success");
        assert_eq!(log.lock().unwrap()[0].body, BODY);
    }

    #[tokio::test]
    async fn label_already_exists_waits_for_the_label_to_settle() {
        let (be_port, be_log) = be(|_, s| {
            Reply::JsonNow(format!(
                r#"{{"Label":"{}","Status":"Label Already Exists","ExistingJobStatus":"RUNNING",
                "Message":"Label has already been used"}}"#,
                s.header("label").unwrap()
            ))
        })
        .await;
        let (fe_port, fe_log) = fe(be_port, vec!["PREPARE", "PREPARE", "VISIBLE"]).await;
        let out = client(fe_port)
            .load("db", "t", "dup", &headers(), BODY, 3)
            .await
            .unwrap();
        match &out {
            LoadOutcome::AlreadyLoaded {
                state,
                response: Some(r),
                attempts: 1,
            } => {
                assert_eq!(*state, LabelState::Visible);
                assert_eq!(r.existing_job_status.as_deref(), Some("RUNNING"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!out.loaded_now());
        assert_eq!(out.rows_loaded(), None);
        assert_eq!(be_log.lock().unwrap().len(), 1, "never loaded again");
        let polls: Vec<String> = fe_log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == "GET")
            .map(|s| s.path.clone())
            .collect();
        assert_eq!(polls.len(), 3);
        assert!(
            polls
                .iter()
                .all(|p| p == "/api/db/get_load_state?label=dup")
        );
    }

    #[tokio::test]
    async fn aborted_label_is_loaded_again_with_the_same_label() {
        let (be_port, be_log) = be(|i, s| {
            let l = s.header("label").unwrap();
            if i == 0 {
                Reply::JsonNow(format!(
                    r#"{{"Label":"{l}","Status":"Label Already Exists"}}"#
                ))
            } else {
                Reply::Json(success(l, 2))
            }
        })
        .await;
        let (fe_port, _) = fe(be_port, vec!["ABORTED"]).await;
        let out = client(fe_port)
            .load("db", "t", "again", &headers(), BODY, 3)
            .await
            .unwrap();
        assert!(out.loaded_now());
        assert_eq!(out.attempts(), 2);
        let be = be_log.lock().unwrap();
        assert!(be.iter().all(|s| s.header("label") == Some("again")));
        assert_eq!(be[1].body, BODY);
    }

    #[tokio::test]
    async fn lost_response_is_settled_by_the_label_state() {
        let (be_port, be_log) = be(|_, _| Reply::Lose).await;
        let (fe_port, _) = fe(be_port, vec!["VISIBLE"]).await;
        let out = client(fe_port)
            .load("db", "t", "lost", &headers(), BODY, 3)
            .await
            .unwrap();
        assert_eq!(
            out,
            LoadOutcome::AlreadyLoaded {
                state: LabelState::Visible,
                response: None,
                attempts: 1
            }
        );
        assert_eq!(be_log.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn lost_response_with_unknown_label_is_sent_again() {
        let (be_port, be_log) = be(|i, s| {
            if i == 0 {
                Reply::Lose
            } else {
                Reply::Json(success(s.header("label").unwrap(), 2))
            }
        })
        .await;
        let (fe_port, _) = fe(be_port, vec!["UNKNOWN"]).await;
        let out = client(fe_port)
            .load("db", "t", "lost2", &headers(), BODY, 3)
            .await
            .unwrap();
        assert!(out.loaded_now());
        assert_eq!(out.attempts(), 2);
        let be = be_log.lock().unwrap();
        assert_eq!(be.len(), 2);
        assert!(
            be.iter()
                .all(|s| s.header("label") == Some("lost2") && s.body == BODY)
        );
    }

    #[tokio::test]
    async fn silence_times_out_as_unavailable() {
        let (port, _) = be(|_, _| Reply::Hang).await;
        let c = StreamLoadClient::new(
            &format!("http://127.0.0.1:{port}"),
            "loader",
            PASSWORD,
            Duration::from_millis(400),
        )
        .unwrap();
        let e = c.put("db", "t", "l", &headers(), BODY).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.retryable);
        assert!(e.message.contains("within"), "{e}");
    }

    #[tokio::test]
    async fn filtered_rows_are_a_data_error() {
        let (port, log) = be(|_, s| {
            Reply::Json(format!(
                r#"{{"Label":"{}","Status":"Fail","Message":"too many filtered rows",
                "NumberTotalRows":10,"NumberLoadedRows":8,"NumberFilteredRows":2,
                "NumberUnselectedRows":0,"ErrorURL":"http://be:8040/api/_load_error_log?file=x"}}"#,
                s.header("label").unwrap()
            ))
        })
        .await;
        let e = client(port)
            .load("db", "orders", "bad", &headers(), BODY, 3)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Data);
        assert!(!e.retryable);
        for part in [
            "db.orders",
            "2 of 10",
            "_load_error_log",
            "too many filtered rows",
        ] {
            assert!(e.message.contains(part), "{part}: {e}");
        }
        assert_eq!(log.lock().unwrap().len(), 1, "not retried");
    }

    #[tokio::test]
    async fn fail_is_retried_with_the_same_label_then_gives_up() {
        let fail = |l: &str| {
            Reply::Json(format!(
                r#"{{"Label":"{l}","Status":"Fail","Message":"too many tablet versions"}}"#
            ))
        };
        let (port, log) = be(move |i, s| {
            let l = s.header("label").unwrap();
            if i < 2 {
                fail(l)
            } else {
                Reply::Json(success(l, 2))
            }
        })
        .await;
        let out = client(port)
            .load("db", "t", "retry", &headers(), BODY, 2)
            .await
            .unwrap();
        assert_eq!(out.attempts(), 3);
        assert!(
            log.lock()
                .unwrap()
                .iter()
                .all(|s| s.header("label") == Some("retry"))
        );

        let (port, log) = be(move |_, s| fail(s.header("label").unwrap())).await;
        let e = client(port)
            .load("db", "t", "never", &headers(), BODY, 2)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(
            e.to_string().contains("after 3 Stream Load attempts"),
            "{e}"
        );
        assert!(e.message.contains("too many tablet versions"), "{e}");
        assert_eq!(log.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn publish_timeout_is_done_and_not_visible() {
        let (port, log) = be(|_, s| {
            Reply::Json(format!(
                r#"{{"Label":"{}","Status":"Publish Timeout","NumberLoadedRows":2}}"#,
                s.header("label").unwrap()
            ))
        })
        .await;
        let out = client(port)
            .load("db", "t", "pt", &headers(), BODY, 3)
            .await
            .unwrap();
        assert!(out.loaded_now() && !out.visible());
        assert_eq!(log.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn refusals_are_config_errors_without_the_password() {
        let (port, _) = serve(|_| Reply::Status(401, "Unauthorized".into())).await;
        let c = client(port);
        let e = c
            .load("db", "t", "l", &headers(), BODY, 3)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("loader"), "{e}");
        assert!(!format!("{e} {e:?} {c:?}").contains(PASSWORD));
        assert!(!format!("{c:?}").contains(&expected_auth()[6..]));

        let e =
            StreamLoadClient::new("https://fe:8030", "u", "p", Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("https"), "{e}");
        let e = StreamLoadClient::new(
            "https://u:hunter2@fe:8030",
            "u",
            "p",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(!e.message.contains("hunter2"), "{e}");
        let e = StreamLoadClient::new("fe:8030 x", "u", "p", Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        let e = c
            .put("db", "t", "l", &[("label".into(), "x".into())], BODY)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        let e = c
            .put("db", "t", "l", &[("columns".into(), "a\r\nb".into())], BODY)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
    }

    #[tokio::test]
    async fn label_state_over_http_follows_redirects() {
        let (leader, _) = serve(|s| {
            assert!(s.header("expect").is_none());
            Reply::ChunkedNow(state("COMMITTED"))
        })
        .await;
        let (fe_port, _) =
            serve(move |s| Reply::Redirect(format!("http://127.0.0.1:{leader}{}", s.path))).await;
        let c = client(fe_port);
        assert_eq!(
            c.label_state("my db", "a_b").await.unwrap(),
            LabelState::Committed
        );
    }

    #[test]
    fn label_state_shapes() {
        for (name, want) in [
            ("VISIBLE", LabelState::Visible),
            ("prepare", LabelState::Prepare),
            ("PREPARED", LabelState::Prepared),
            ("ABORTED", LabelState::Aborted),
            ("UNKNOWN", LabelState::Unknown),
        ] {
            assert_eq!(parse_label_state(&state(name)).unwrap(), want, "{name}");
        }
        assert_eq!(
            parse_label_state(r#"{"state":"COMMITTED"}"#).unwrap(),
            LabelState::Committed
        );
        let e = parse_label_state(
            r#"{"status":"FAILED","code":"1","msg":"unknown database, database=x"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("unknown database"), "{e}");
        assert!(parse_label_state(&state("WEIRD")).is_err());
        assert!(parse_label_state("<html>").is_err());
    }

    #[test]
    fn load_response_shapes() {
        let r = parse_load_response(&success("x", 5), "sent").unwrap();
        assert_eq!((r.total, r.loaded, r.filtered), (5, 5, 0));
        assert_eq!(r.error_url, None);
        let r = parse_load_response(
            r#"{"Status":"FAILED","Message":"class DdlException: No backend alive."}"#,
            "sent",
        )
        .unwrap();
        assert_eq!(verdict(&r.status), Verdict::Failed);
        assert_eq!(r.label, "sent");
        assert!(r.message.contains("No backend"));
        let r = parse_load_response(r#"{"status":"FAILED","msg":"m"}"#, "s").unwrap();
        assert_eq!(r.message, "m");
        assert!(parse_load_response("{}", "s").is_err());
        assert_eq!(verdict("Success"), Verdict::Visible);
        assert_eq!(verdict("Publish Timeout"), Verdict::Committed);
        assert_eq!(verdict("Label Already Exists"), Verdict::LabelTaken);
        assert_eq!(verdict("Fail"), Verdict::Failed);
        assert_eq!(verdict("Commit Timeout"), Verdict::Unclear);
    }

    #[test]
    fn chunked_decoding() {
        let (b, used) = decode_chunked(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!((b.as_slice(), used), (&b"abcde"[..], 24));
        assert!(decode_chunked(b"3\r\nab").unwrap().is_none());
        assert!(decode_chunked(b"zz\r\n").is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("http://u:p@h:1/x"), "http://***@h:1/x");
        assert_eq!(redact("http://h:1/x"), "http://h:1/x");
        assert!(!redact("u:p@h").contains('p'));
    }
}
