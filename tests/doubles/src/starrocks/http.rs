//! The FE and BE HTTP servers: HTTP/1.1 parsed by hand on a `TcpListener`, one request per
//! connection (every answer carries `Connection: close`, as the FE forces for loads).
//!
//! FE (like port 8030):
//! - `PUT /api/{db}/{table}/_stream_load`: Basic auth (401 otherwise), then an HTTP/1.1 request
//!   without `Expect: 100-continue` is refused (LoadAction.java: HTTP 200,
//!   `{"Status": "FAILED", "Message": "class com.starrocks.common.DdlException: There is no
//!   100-continue header"}`), else `307 Temporary Redirect` to the BE with the query string
//!   kept. The body is never read before answering and no `100 Continue` is sent; after the
//!   answer the connection is half-closed and whatever the client still sends is discarded so
//!   the answer is not lost to a TCP reset (a client like hyper sends the body right away).
//! - `GET /api/{db}/get_load_state?label=L`: GetStreamLoadState.java, whose result is
//!   `RestBaseResult` + `state`/`reason` written by Gson (subclass fields first, nulls left out):
//!   `{"state":"VISIBLE","reason":"","status":"OK","code":"0","msg":"Success","message":"OK"}`;
//!   an unknown label has no `reason` (GetStreamLoadStateTest.java checks exactly these keys).
//!
//! BE (like port 8040):
//! - `PUT /api/{db}/{table}/_stream_load`: stream_load.cpp. Auth again, headers, label, then
//!   `100 Continue` if asked, then the body (Content-Length or chunked). The answer is
//!   StreamLoadContext::to_json: pretty JSON, fields in its order.
//! - `GET /api/_load_error_log?file=<id>`: the rejected rows of a load, one per line.
//!
//! Stricter than StarRocks on purpose: headers that change the meaning of the data and that the
//! double does not emulate (`where`, `partitions`, `negative`, `skip_header`, `trim_space`,
//! `partial_update`, `merge_condition`, `jsonpaths`, `compression`, column expressions in
//! `columns`) and column names in `columns` that the table lacks make the load Fail with a
//! message saying so.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::csv::{self, CsvFormat};
use super::store::{self, Column, TableDef, TxnKind};
use super::types::show;
use super::util::{self, JsonObject};
use super::{Cell, Fault, KeyModel, LabelState, PortKind, RequestLog, Shared};

const MAX_HEAD: usize = 64 * 1024;

pub(crate) fn serve(shared: Arc<Shared>, listener: TcpListener, kind: PortKind) {
    for conn in listener.incoming() {
        if shared.stopping() {
            break;
        }
        match conn {
            Ok(stream) => {
                let s = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("sr-{kind:?}-conn").to_lowercase())
                    .spawn(move || handle(s, stream, kind));
                if let Err(e) = spawned {
                    eprintln!("starrocks double: cannot spawn a {kind:?} connection thread: {e}");
                }
            }
            Err(e) => eprintln!("starrocks double: {kind:?} accept failed: {e}"),
        }
    }
}

fn handle(shared: Arc<Shared>, stream: TcpStream, kind: PortKind) {
    let id = shared.register(&stream);
    let _ = stream.set_nodelay(true);
    let result = match kind {
        PortKind::Fe => fe(&shared, stream),
        PortKind::Be => be(&shared, stream),
    };
    if let Err(e) = result {
        shared.io_error(&format!("{kind:?} HTTP"), &e);
    }
    shared.unregister(id);
}

/// A parsed request head.
struct Request {
    method: String,
    target: String,
    path: String,
    query: Vec<(String, String)>,
    http11: bool,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// Path segments, percent-decoded.
    fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| util::percent_decode(s, false))
            .collect()
    }

    fn log(&self, port: PortKind, shared: &Shared) -> RequestLog {
        let (auth_present, auth_valid) = shared.check_basic_auth(self.header("authorization"));
        RequestLog {
            port,
            method: self.method.clone(),
            target: self.target.clone(),
            label: self
                .header("label")
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
            auth_present,
            auth_valid,
            expect_continue: self.expects_continue(),
            body_len: 0,
            outcome: String::new(),
            http_status: 0,
        }
    }
}

fn bad_request(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads a request head; `None` if the client closed before sending anything.
fn read_head(r: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            if lines.is_empty() && total == 0 {
                return Ok(None);
            }
            return Err(bad_request("connection closed inside the request head"));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(bad_request("request head too large"));
        }
        while line.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
            line.pop();
        }
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerate a stray CRLF before the request line
            }
            break;
        }
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
    let mut parts = lines[0].split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_request("malformed request line"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (util::percent_decode(k, true), util::percent_decode(v, true))
        })
        .collect();
    let headers = lines[1..]
        .iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        path: path.to_string(),
        query,
        http11: version.eq_ignore_ascii_case("HTTP/1.1"),
        headers,
    }))
}

/// Reads the body by Content-Length or chunked transfer coding.
fn read_body(r: &mut BufReader<TcpStream>, req: &Request) -> io::Result<Vec<u8>> {
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Err(bad_request("connection closed inside a chunked body"));
            }
            let text = String::from_utf8_lossy(&line);
            let size_text = text
                .trim()
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let size =
                usize::from_str_radix(&size_text, 16).map_err(|_| bad_request("bad chunk size"))?;
            if size == 0 {
                // Trailers up to the empty line.
                loop {
                    let mut t = Vec::new();
                    if r.read_until(b'\n', &mut t)? == 0 || t == b"\r\n" || t == b"\n" {
                        break;
                    }
                }
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = Vec::new();
            r.read_until(b'\n', &mut crlf)?;
            if crlf != b"\r\n" && crlf != b"\n" {
                return Err(bad_request("chunk data not followed by CRLF"));
            }
        }
    }
    let len: u64 = match req.header("content-length") {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| bad_request("bad Content-Length"))?,
        None => 0,
    };
    let mut limited = r.take(len);
    limited.read_to_end(&mut body)?;
    if (body.len() as u64) < len {
        return Err(bad_request("connection closed inside the body"));
    }
    Ok(body)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Status",
    }
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut all = head.into_bytes();
    all.extend_from_slice(body);
    out.write_all(&all)?;
    out.flush()
}

const JSON: &str = "application/json";

/// Body of a 401: RestBaseResult's keys (what the FE sends) plus `Status`/`Message` (what
/// Stream Load clients read).
fn unauthorized_body(msg: &str) -> String {
    JsonObject::new()
        .field("status", "FAILED")
        .field("code", "1")
        .field("msg", msg)
        .field("message", msg)
        .field("Status", "Fail")
        .field("Message", msg)
        .compact()
}

fn auth_message(req: &Request, present: bool) -> String {
    if !present {
        return "no valid Basic authorization".to_string();
    }
    let user = req
        .header("authorization")
        .and_then(|h| h.trim().get(6..))
        .and_then(util::base64_decode)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, _)| u.to_string()))
        .unwrap_or_default();
    format!("Access denied for user '{user}' (using password: YES)")
}

// ---------------------------------------------------------------------------------------- FE

fn fe(shared: &Shared, stream: TcpStream) -> io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let Some(req) = read_head(&mut reader)? else {
        return Ok(());
    };
    let mut log = req.log(PortKind::Fe, shared);
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("PUT", ["api", _db, _table, "_stream_load"]) => {
            if !log.auth_valid {
                let msg = auth_message(&req, log.auth_present);
                log.outcome = "Unauthorized".into();
                log.http_status = 401;
                shared.record_request(log);
                respond(
                    &mut out,
                    401,
                    &[("WWW-Authenticate", "Basic realm=\"\"".into())],
                    JSON,
                    unauthorized_body(&msg).as_bytes(),
                )?;
            } else if req.http11 && !req.expects_continue() {
                // LoadAction.executeWithoutPassword: a DdlException becomes a pretty-printed
                // TransactionResult map with the exception class in the message.
                let body = JsonObject::new()
                    .field("Status", "FAILED")
                    .field(
                        "Message",
                        "class com.starrocks.common.DdlException: There is no 100-continue header",
                    )
                    .pretty();
                log.outcome = "FAILED".into();
                log.http_status = 200;
                shared.record_request(log);
                respond(&mut out, 200, &[], JSON, body.as_bytes())?;
            } else {
                let location = format!("http://127.0.0.1:{}{}", shared.be_port, req.target);
                log.outcome = "Redirect".into();
                log.http_status = 307;
                shared.record_request(log);
                respond(&mut out, 307, &[("Location", location)], "", b"")?;
            }
        }
        ("GET", ["api", db, "get_load_state"]) => {
            if !log.auth_valid {
                let msg = auth_message(&req, log.auth_present);
                log.outcome = "Unauthorized".into();
                log.http_status = 401;
                shared.record_request(log);
                respond(
                    &mut out,
                    401,
                    &[("WWW-Authenticate", "Basic realm=\"\"".into())],
                    JSON,
                    unauthorized_body(&msg).as_bytes(),
                )?;
            } else {
                let label = req.param("label").unwrap_or("").to_string();
                log.label = Some(label.clone()).filter(|l| !l.is_empty());
                let body = {
                    let mut st = shared.lock();
                    if label.is_empty() {
                        Err("No label selected.".to_string())
                    } else if !st.dbs.contains_key(*db) {
                        Err(format!("unknown database, database={db}"))
                    } else {
                        Ok(st.poll(db, &label))
                    }
                };
                let body = match body {
                    Ok(state) => {
                        let mut o = JsonObject::new().field("state", state.as_str());
                        if state != LabelState::Unknown {
                            let reason = shared
                                .lock()
                                .latest_txn(db, &label)
                                .map(|t| t.reason.clone())
                                .unwrap_or_default();
                            o.push("reason", reason);
                        }
                        log.outcome = "OK".into();
                        o.field("status", "OK")
                            .field("code", "0")
                            .field("msg", "Success")
                            .field("message", "OK")
                            .compact()
                    }
                    Err(msg) => {
                        log.outcome = "FAILED".into();
                        JsonObject::new()
                            .field("status", "FAILED")
                            .field("code", "1")
                            .field("msg", msg.as_str())
                            .field("message", msg.as_str())
                            .compact()
                    }
                };
                log.http_status = 200;
                shared.record_request(log);
                respond(&mut out, 200, &[], JSON, body.as_bytes())?;
            }
        }
        _ => {
            log.outcome = "NotFound".into();
            log.http_status = 404;
            shared.record_request(log);
            respond(&mut out, 404, &[], "text/plain", b"not found\n")?;
        }
    }
    util::close_gracefully(&mut out);
    Ok(())
}

// ---------------------------------------------------------------------------------------- BE

fn be(shared: &Shared, stream: TcpStream) -> io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let Some(req) = read_head(&mut reader)? else {
        return Ok(());
    };
    let mut log = req.log(PortKind::Be, shared);
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("PUT", ["api", db, table, "_stream_load"]) => {
            let (db, table) = (db.to_string(), table.to_string());
            return stream_load(shared, &req, &mut reader, out, log, &db, &table);
        }
        ("GET", ["api", "_load_error_log"]) => {
            let file = req.param("file").unwrap_or("");
            let content = shared.lock().error_logs.get(file).cloned();
            log.http_status = if content.is_some() { 200 } else { 404 };
            log.outcome = if content.is_some() { "OK" } else { "NotFound" }.into();
            shared.record_request(log);
            match content {
                Some(c) => respond(
                    &mut out,
                    200,
                    &[],
                    "text/plain; charset=utf-8",
                    c.as_bytes(),
                )?,
                None => respond(
                    &mut out,
                    404,
                    &[],
                    "text/plain",
                    b"error log file not found\n",
                )?,
            }
        }
        _ => {
            log.outcome = "NotFound".into();
            log.http_status = 404;
            shared.record_request(log);
            respond(&mut out, 404, &[], "text/plain", b"not found\n")?;
        }
    }
    util::close_gracefully(&mut out);
    Ok(())
}

/// The answer of a BE load (StreamLoadContext::to_json).
struct LoadResult {
    txn_id: i64,
    label: String,
    status: &'static str,
    existing_job_status: Option<&'static str>,
    message: String,
    total: u64,
    loaded: u64,
    filtered: u64,
    unselected: u64,
    load_bytes: u64,
    start: Instant,
    error_url: Option<String>,
}

impl LoadResult {
    fn new(label: &str, start: Instant) -> LoadResult {
        LoadResult {
            txn_id: -1,
            label: label.to_string(),
            status: "Fail",
            existing_job_status: None,
            message: String::new(),
            total: 0,
            loaded: 0,
            filtered: 0,
            unselected: 0,
            load_bytes: 0,
            start,
            error_url: None,
        }
    }

    fn fail(mut self, msg: impl Into<String>) -> LoadResult {
        self.status = "Fail";
        self.message = msg.into();
        self
    }

    fn json(&self) -> String {
        let ms = self.start.elapsed().as_millis() as u64;
        let mut o = JsonObject::new()
            .field("TxnId", self.txn_id)
            .field("Label", self.label.as_str())
            .field("Status", self.status);
        if let Some(s) = self.existing_job_status {
            o.push("ExistingJobStatus", s);
        }
        let message = if self.status == "Success" {
            "OK".to_string()
        } else {
            self.message.clone()
        };
        o = o
            .field("Message", message)
            .field("NumberTotalRows", self.total)
            .field("NumberLoadedRows", self.loaded)
            .field("NumberFilteredRows", self.filtered)
            .field("NumberUnselectedRows", self.unselected)
            .field("LoadBytes", self.load_bytes)
            .field("LoadTimeMs", ms)
            .field("BeginTxnTimeMs", 0)
            .field("StreamLoadPlanTimeMs", 0)
            .field("ReadDataTimeMs", 0)
            .field("WriteDataTimeMs", 0)
            .field("CommitAndPublishTimeMs", 0);
        if let Some(u) = &self.error_url {
            o.push("ErrorURL", u.as_str());
        }
        o.pretty()
    }
}

/// The load-related headers of one request.
struct LoadParams {
    format: CsvFormat,
    columns: Option<Vec<String>>,
    max_filter_ratio: f64,
    strict_mode: bool,
    timeout_s: u64,
}

fn load_params(req: &Request) -> Result<LoadParams, String> {
    let h = |n: &str| req.header(n).unwrap_or("");
    match h("format").to_ascii_lowercase().as_str() {
        "" | "csv" => {}
        "json" => {
            return Err("format json is not supported by this test double (CSV only)".into());
        }
        "gzip" | "bzip2" | "lz4" | "deflate" | "zstd" => {
            return Err(format!(
                "compressed format {} is not supported by this test double",
                h("format")
            ));
        }
        other => return Err(format!("unknown data format, format={other}")),
    }
    for unsupported in [
        "where",
        "partitions",
        "temporary_partitions",
        "negative",
        "jsonpaths",
        "json_root",
        "partial_update",
        "merge_condition",
        "compression",
    ] {
        if req.header(unsupported).is_some_and(|v| !v.is_empty()) {
            return Err(format!(
                "header {unsupported} is not supported by this test double"
            ));
        }
    }
    if !matches!(h("skip_header"), "" | "0") {
        return Err("header skip_header is not supported by this test double".into());
    }
    if h("trim_space").eq_ignore_ascii_case("true") {
        return Err("header trim_space is not supported by this test double".into());
    }
    let format = CsvFormat {
        column_separator: csv::parse_separator(h("column_separator"), b"\t", "column_separator")?,
        row_delimiter: csv::parse_separator(h("row_delimiter"), b"\n", "row_delimiter")?,
        enclose: csv::parse_single_byte(h("enclose"), "enclose")?,
        escape: csv::parse_single_byte(h("escape"), "escape")?,
    };
    let columns = match req
        .header("columns")
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(c) => {
            let mut names = Vec::new();
            for part in c.split(',') {
                let name = part.trim().trim_matches('`').to_string();
                if name.contains('=') || name.contains('(') {
                    return Err(format!(
                        "column mapping expressions in columns are not supported by this test double: {part}"
                    ));
                }
                if name.is_empty() {
                    return Err(format!("empty column name in columns: {c}"));
                }
                names.push(name);
            }
            Some(names)
        }
    };
    let max_filter_ratio = match h("max_filter_ratio") {
        "" => 0.0,
        v => match v.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => return Err(format!("Invalid max_filter_ratio: {v}")),
        },
    };
    let strict_mode = match h("strict_mode").to_ascii_lowercase().as_str() {
        "" | "false" => false,
        "true" => true,
        _ => return Err("Invalid strict mode format. Must be bool type".into()),
    };
    let timeout_s = match h("timeout") {
        "" => 600,
        v => v
            .parse::<u32>()
            .map(u64::from)
            .map_err(|_| "Invalid timeout format".to_string())?,
    };
    Ok(LoadParams {
        format,
        columns,
        max_filter_ratio,
        strict_mode,
        timeout_s,
    })
}

/// CSV field position -> table column index (None: the field is not loaded).
fn field_mapping(
    def: &TableDef,
    columns: &Option<Vec<String>>,
    table: &str,
) -> Result<Vec<usize>, String> {
    let Some(names) = columns else {
        return Ok((0..def.columns.len()).collect());
    };
    let mut mapping = Vec::new();
    for n in names {
        match def.col_index(n) {
            Some(i) if mapping.contains(&i) => {
                return Err(format!("Duplicate column: {n}"));
            }
            Some(i) => mapping.push(i),
            None => {
                return Err(format!(
                    "Unknown column '{n}' in '{table}' (columns that only feed expressions are not supported by this test double)"
                ));
            }
        }
    }
    for (i, c) in def.columns.iter().enumerate() {
        if !mapping.contains(&i) && !c.nullable {
            return Err(format!("Column has no default value. column: {}", c.name));
        }
    }
    Ok(mapping)
}

/// Rows converted for the table, with counts and the error log lines.
struct Converted {
    rows: Vec<Vec<Cell>>,
    total: u64,
    filtered: u64,
    errors: Vec<String>,
}

fn convert(body: &[u8], params: &LoadParams, def: &TableDef, mapping: &[usize]) -> Converted {
    let records = csv::split(body, &params.format);
    let mut out = Converted {
        rows: Vec::with_capacity(records.len()),
        total: 0,
        filtered: 0,
        errors: Vec::new(),
    };
    let keys = def.key_indices();
    for rec in records {
        if rec.at_eof && rec.fields.len() != mapping.len() {
            // csv_scanner.cpp drops a broken last record silently.
            continue;
        }
        out.total += 1;
        let row = if rec.fields.len() != mapping.len() {
            Err(format!(
                "Value count does not match column count: expected = {}, actual = {}. Column separator: {}, Row delimiter: {}",
                mapping.len(),
                rec.fields.len(),
                csv::describe_separator(&params.format.column_separator),
                csv::describe_separator(&params.format.row_delimiter)
            ))
        } else if std::str::from_utf8(&rec.raw).is_err() {
            Err("Invalid UTF-8 row".to_string())
        } else {
            convert_row(&rec.fields, params, &def.columns, mapping)
        };
        let row = row.and_then(|row| {
            if def.model != KeyModel::Primary {
                return Ok(row);
            }
            let size: usize = keys
                .iter()
                .map(|&k| {
                    row[k]
                        .as_ref()
                        .map_or(0, |v| def.columns[k].ty.key_bytes(v))
                })
                .sum();
            if size > 128 {
                Err(format!(
                    "The encoded primary key is {size} bytes, more than the limit of 128 bytes"
                ))
            } else {
                Ok(row)
            }
        });
        match row {
            Ok(row) => out.rows.push(row),
            Err(reason) => {
                out.filtered += 1;
                // StarRocks logs the first 50 rejected rows (REPORT_ERROR_MAX_NUMBER).
                if out.errors.len() < 50 {
                    out.errors
                        .push(format!("Error: {reason}. Row: {}", show_row(&rec.raw)));
                }
            }
        }
    }
    out
}

fn show_row(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Converts one record's fields as csv_scanner.cpp and the tablet sink do: a field a column's
/// type refuses (unparseable, out of range, too long) fails the row in strict mode and becomes
/// NULL otherwise (Converter option `invalid_field_as_null = !strict_mode`); then a NULL in a
/// NOT NULL column fails the row in either mode.
fn convert_row(
    fields: &[csv::Field],
    params: &LoadParams,
    columns: &[Column],
    mapping: &[usize],
) -> Result<Vec<Cell>, String> {
    let mut row: Vec<Cell> = vec![None; columns.len()];
    for (pos, (field, &ci)) in fields.iter().zip(mapping).enumerate() {
        let col = &columns[ci];
        row[ci] = match field {
            None => None,
            Some(v) => match col.ty.from_csv(v) {
                Ok(x) => Some(x),
                Err(e) if params.strict_mode => {
                    return Err(format!(
                        "The field (name = {}, pos = {pos}) is out of range. Type: {}, Value: {} ({})",
                        col.name,
                        col.ty,
                        show(v),
                        e.message()
                    ));
                }
                Err(_) => None,
            },
        };
    }
    for (c, v) in columns.iter().zip(&row) {
        if v.is_none() && !c.nullable {
            return Err(format!("NULL value in non-nullable column '{}'", c.name));
        }
    }
    Ok(row)
}

#[allow(clippy::too_many_arguments)]
fn stream_load(
    shared: &Shared,
    req: &Request,
    reader: &mut BufReader<TcpStream>,
    mut out: TcpStream,
    mut log: RequestLog,
    db: &str,
    table: &str,
) -> io::Result<()> {
    let start = Instant::now();
    let label = log.label.clone().unwrap_or_else(util::uuid_string);
    log.label = Some(label.clone());
    let mut result = LoadResult::new(&label, start);

    // Answers before the transaction starts: no 100 Continue, body left unread.
    let early = |shared: &Shared,
                 out: &mut TcpStream,
                 mut log: RequestLog,
                 status: u16,
                 result: LoadResult|
     -> io::Result<()> {
        log.outcome = result.status.to_string();
        log.http_status = status;
        shared.record_request(log);
        let headers: Vec<(&str, String)> = if status == 401 {
            vec![("WWW-Authenticate", "Basic realm=\"\"".into())]
        } else {
            vec![]
        };
        respond(out, status, &headers, JSON, result.json().as_bytes())?;
        util::close_gracefully(out);
        Ok(())
    };

    if !log.auth_valid {
        let msg = auth_message(req, log.auth_present);
        let status = shared.cfg.be_auth_failure_status;
        return early(shared, &mut out, log, status, result.fail(msg));
    }
    let params = match load_params(req) {
        Ok(p) => p,
        Err(msg) => return early(shared, &mut out, log, 200, result.fail(msg)),
    };
    if !store::valid_label(&label) {
        return early(
            shared,
            &mut out,
            log,
            200,
            result.fail(store::label_format_error(&label)),
        );
    }
    let begun = {
        let mut st = shared.lock();
        match st.table(db, table).map(|t| t.def.clone()) {
            _ if !st.dbs.contains_key(db) => {
                Err((None, format!("unknown database, database={db}")))
            }
            None => Err((None, format!("unknown table, table={table}, database={db}"))),
            Some(def) => match field_mapping(&def, &params.columns, table) {
                Err(msg) => Err((None, msg)),
                Ok(mapping) => {
                    match st.begin_txn(db, &label, table, TxnKind::StreamLoad, &shared.cfg.user) {
                        Ok(id) => Ok((id, def, mapping)),
                        Err(taken) => Err((
                            Some(taken.existing_job_status),
                            format!("Label [{label}] has already been used."),
                        )),
                    }
                }
            },
        }
    };
    let (txn_id, def, mapping) = match begun {
        Ok(x) => x,
        Err((Some(existing), msg)) => {
            result.status = "Label Already Exists";
            result.existing_job_status = Some(existing);
            result.message = msg;
            return early(shared, &mut out, log, 200, result);
        }
        Err((None, msg)) => return early(shared, &mut out, log, 200, result.fail(msg)),
    };
    result.txn_id = txn_id;

    if log.expect_continue {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        out.flush()?;
    }
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(params.timeout_s.clamp(1, 3600))));
    let body = match read_body(reader, req) {
        Ok(b) => b,
        Err(e) => {
            shared
                .lock()
                .abort(txn_id, &format!("failed to read the body: {e}"));
            log.outcome = "Fail".into();
            shared.record_request(log);
            return Err(e);
        }
    };
    log.body_len = body.len() as u64;
    result.load_bytes = body.len() as u64;

    let fault = shared
        .lock()
        .take_fault(|f| f.is_stream_load() && f.matches_label(&label));
    if let Some(Fault::FailRequest { .. }) = fault {
        let msg = "injected failure (Fault::FailRequest)";
        shared.lock().abort(txn_id, msg);
        log.outcome = "Fail".into();
        log.http_status = 200;
        shared.record_request(log);
        respond(&mut out, 200, &[], JSON, result.fail(msg).json().as_bytes())?;
        util::close_gracefully(&mut out);
        return Ok(());
    }

    let conv = convert(&body, &params, &def, &mapping);
    result.total = conv.total;
    result.filtered = conv.filtered;
    let loaded = conv.rows.len() as u64;
    let error_url = if conv.errors.is_empty() {
        None
    } else {
        let file = format!("error_log_{txn_id}_{:016x}", util::random_u64());
        let url = format!(
            "http://127.0.0.1:{}/api/_load_error_log?file={file}",
            shared.be_port
        );
        shared
            .lock()
            .error_logs
            .insert(file, conv.errors.join("\n") + "\n");
        Some(url)
    };
    result.error_url = error_url.clone();
    let selected = conv.total;
    let too_many = selected > 0 && conv.filtered as f64 / selected as f64 > params.max_filter_ratio;
    {
        let mut st = shared.lock();
        if let Some(t) = st.txn_mut(txn_id) {
            t.scan_rows = conv.total;
            t.filtered_rows = conv.filtered;
            t.error_url = error_url;
        }
        if too_many {
            st.abort(txn_id, "too many filtered rows");
            result.status = "Fail";
            result.message = "too many filtered rows".into();
            result.loaded = loaded;
        } else if let Some(Fault::PublishTimeout {
            visible_after_polls,
            ..
        }) = fault
        {
            if let Some(t) = st.txn_mut(txn_id) {
                t.sink_rows = loaded;
            }
            st.commit_pending(txn_id, conv.rows, false, visible_after_polls);
            result.status = "Publish Timeout";
            result.message =
                "transaction commit successfully, BUT data will be visible later".into();
            result.loaded = loaded;
        } else {
            if let Some(t) = st.txn_mut(txn_id) {
                t.sink_rows = loaded;
            }
            match st.commit_visible(txn_id, conv.rows, false) {
                Ok(()) => {
                    result.status = "Success";
                    result.loaded = loaded;
                }
                Err(msg) => {
                    result.status = "Fail";
                    result.message = msg;
                }
            }
        }
    }

    if let Some(Fault::LoseResponseAfterCommit { .. }) = fault {
        log.outcome = "ResponseLost".into();
        shared.record_request(log);
        util::close_abruptly(&out);
        return Ok(());
    }
    log.outcome = result.status.to_string();
    log.http_status = 200;
    shared.record_request(log);
    respond(&mut out, 200, &[], JSON, result.json().as_bytes())?;
    util::close_gracefully(&mut out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_result_json_follows_stream_load_context_order() {
        let mut r = LoadResult::new("l1", Instant::now());
        r.status = "Label Already Exists";
        r.existing_job_status = Some("FINISHED");
        r.message = "Label [l1] has already been used.".into();
        let j = r.json();
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["ExistingJobStatus"], "FINISHED");
        let order: Vec<usize> = [
            "\"TxnId\"",
            "\"Label\"",
            "\"Status\"",
            "\"ExistingJobStatus\"",
            "\"Message\"",
            "\"NumberTotalRows\"",
            "\"LoadTimeMs\"",
        ]
        .iter()
        .map(|k| j.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{j}");
    }
}
