//! The request ledger of a Stream Load: the rows cut into CSV bodies of at most `request_bytes`,
//! each request recorded as pending (label, first and next position) in the task's record before
//! it is sent and with its outcome after, so a resumed load re-sends exactly the pending rows
//! under the same label and trusts what is recorded. `load = "lake"` keeps the same ledger for
//! its one INSERT.
//!
//! No body is held in memory: a first pass over the rows only measures where each request ends
//! and how many bytes it takes (on the blocking pool), and each send encodes the request's rows
//! again, from the Parquet files onto the socket in small chunks. The CSV encoding is
//! deterministic, so every send of a request (a retry, a 307 re-send, a resumed load) carries
//! the same bytes.
//!
//! The measuring of the next request starts when the current body has been encoded to its end,
//! while the sender waits for StarRocks' answer, and opens its own reader for each request: a
//! Parquet reader holds a decompression context and a page per column (a few MiB for a wide
//! table), and the two passes never hold one at the same time.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::stream::BoxStream;
use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;

use super::{LoadJob, LoadSummary, StarRocksTarget, literal, my_err, quote};
use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::cells::Cells;
use crate::store::{LoadRequestRecord, RequestOutcome};
use crate::targets::starrocks::csv::{self, CsvEncoder};
use crate::targets::starrocks::names;
use crate::targets::starrocks::stream_load::{RequestBody, StreamLoadClient};

/// A position in the snapshot's rows: data file index and row within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    file: u32,
    row: u64,
}

/// One request's rows, `from` up to (not including) `to`, and the length of their CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    from: Pos,
    to: Pos,
    rows: u64,
    bytes: u64,
}

/// Size of the chunks a body is sent in.
const CHUNK_BYTES: usize = 256 * 1024;

impl StarRocksTarget {
    /// Stream Load of the job's rows into `stage` (the staging table, or the live table of an
    /// incremental run) as CSV requests of at most `request_bytes`.
    pub(super) async fn stream(
        &self,
        job: &LoadJob<'_>,
        stage: &str,
        requests: &mut Vec<LoadRequestRecord>,
        record: &mut impl FnMut(&[LoadRequestRecord]) -> Result<()>,
    ) -> Result<LoadSummary> {
        let http = self.http.as_ref().ok_or_else(|| {
            Error::config("target.http_url is needed for Stream Load (load = \"stream\")")
        })?;
        let info = job.info;
        let mut headers: Vec<(String, String)> = csv::headers()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        headers.push(("columns".into(), csv::columns_header(info)?));
        headers.push(("max_filter_ratio".into(), self.cfg.max_filter_ratio.clone()));
        // Without strict mode StarRocks stores a value it cannot convert (a string too long for
        // its VARCHAR, say) as NULL instead of filtering the row: silent loss.
        headers.push(("strict_mode".into(), "true".into()));
        headers.push(("timeout".into(), self.cfg.timeout_secs.to_string()));
        let source = Rows {
            files: Arc::new(job.files.to_vec()),
            io: job.io.clone(),
            info: Arc::new(info.clone()),
            batch_rows: csv_batch_rows(job.batch_rows, info),
        };
        let mut summary = LoadSummary {
            found: requests
                .iter()
                .filter(|r| r.outcome != RequestOutcome::Pending)
                .count() as u32,
            ..LoadSummary::default()
        };
        // A request recorded as pending is re-sent with exactly its rows and label.
        if let Some(last) = requests
            .last()
            .filter(|r| r.outcome == RequestOutcome::Pending)
            .cloned()
        {
            let from = Pos {
                file: last.file,
                row: last.row,
            };
            let to = Pos {
                file: last.next_file,
                row: last.next_row,
            };
            let mut rx = measure(&source, from, Some(to), u64::MAX, None);
            let span = rx
                .recv()
                .await
                .ok_or_else(|| Error::internal("the encoder stopped early"))??;
            if span.rows != last.rows {
                return Err(Error::internal(format!(
                    "table {}: pending Stream Load {} was recorded with {} rows but its data \
                     files now hold {} rows there; the lake snapshot changed under the load",
                    info.name, last.label, last.rows, span.rows
                )));
            }
            let n = requests.len() - 1;
            let body = CsvBody {
                source: source.clone(),
                span,
                encoded: None,
            };
            let outcome = self
                .send(http, job, stage, &headers, &last.label, &body, n as u32)
                .await?;
            requests[n].outcome = outcome;
            record(requests)?;
            count(&mut summary, outcome);
        }
        let start = requests.last().map_or(Pos { file: 0, row: 0 }, |r| Pos {
            file: r.next_file,
            row: r.next_row,
        });
        // The measuring waits for each body to be encoded before it measures the next request.
        let (encoded, gate) = std::sync::mpsc::sync_channel(1);
        let mut rx = measure(&source, start, None, self.cfg.request_bytes, Some(gate));
        while let Some(span) = rx.recv().await {
            let span = span?;
            let n = requests.len() as u32;
            let label = names::label(job.workflow, job.run, &info.name, n);
            requests.push(LoadRequestRecord {
                label: label.clone(),
                file: span.from.file,
                row: span.from.row,
                next_file: span.to.file,
                next_row: span.to.row,
                rows: span.rows,
                bytes: span.bytes,
                outcome: RequestOutcome::Pending,
            });
            record(requests)?;
            let release = Arc::new(Release {
                gate: encoded.clone(),
                done: AtomicBool::new(false),
            });
            let body = CsvBody {
                source: source.clone(),
                span,
                encoded: Some(release.clone()),
            };
            let sent = self
                .send(http, job, stage, &headers, &label, &body, n)
                .await;
            // Also when the send ended without encoding the whole body (an early answer).
            release.release();
            let outcome = sent?;
            requests[n as usize].outcome = outcome;
            record(requests)?;
            count(&mut summary, outcome);
        }
        self.wait_visible(http, requests).await?;
        Ok(summary)
    }

    /// Waits until every request that ended COMMITTED (Publish Timeout) is VISIBLE, so the table
    /// swapped in (and verified) holds all its rows.
    async fn wait_visible(
        &self,
        http: &StreamLoadClient,
        requests: &[LoadRequestRecord],
    ) -> Result<()> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.cfg.timeout_secs.max(60));
        for r in requests
            .iter()
            .filter(|r| r.outcome == RequestOutcome::Committed)
        {
            let mut wait = Duration::from_millis(100);
            loop {
                use crate::targets::starrocks::stream_load::LabelState as S;
                match http.label_state(&self.cfg.database, &r.label).await? {
                    S::Visible => break,
                    S::Aborted | S::Unknown => {
                        return Err(Error::unavailable(format!(
                            "Stream Load {} was committed but StarRocks now reports it {:?}",
                            r.label,
                            http.label_state(&self.cfg.database, &r.label).await?
                        )));
                    }
                    _ if tokio::time::Instant::now() > deadline => {
                        return Err(Error::unavailable(format!(
                            "Stream Load {} is committed but not yet visible; retry later",
                            r.label
                        )));
                    }
                    _ => {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        http: &StreamLoadClient,
        job: &LoadJob<'_>,
        stage: &str,
        headers: &[(String, String)],
        label: &str,
        body: &CsvBody,
        n: u32,
    ) -> Result<RequestOutcome> {
        crate::fault::point(&format!("before_load_request:{}:{n}", job.info.name));
        let outcome = http
            .load(&self.cfg.database, stage, label, headers, body, 3)
            .await
            .map_err(|e| e.context(format!("Stream Load request {n} (label {label})")))?;
        crate::fault::point(&format!("after_load_request:{}:{n}", job.info.name));
        Ok(match (outcome.visible(), outcome.loaded_now()) {
            (false, _) => RequestOutcome::Committed,
            (true, true) => RequestOutcome::Loaded,
            (true, false) => RequestOutcome::Found,
        })
    }

    /// `INSERT INTO stage WITH LABEL ... SELECT ... FROM <catalog>.<ns>.<table>`: StarRocks reads
    /// the lake itself. The label makes a repeated INSERT after an unclear outcome harmless.
    pub(super) async fn insert_from_lake(
        &self,
        job: &LoadJob<'_>,
        stage: &str,
        requests: &mut Vec<LoadRequestRecord>,
        record: &mut impl FnMut(&[LoadRequestRecord]) -> Result<()>,
    ) -> Result<LoadSummary> {
        if requests
            .iter()
            .any(|r| r.outcome != RequestOutcome::Pending)
        {
            return Ok(LoadSummary {
                loaded: 0,
                found: 1,
            });
        }
        let catalog =
            self.cfg.lake_catalog.as_deref().ok_or_else(|| {
                Error::config("target.lake_catalog is needed for load = \"lake\"")
            })?;
        let info = job.info;
        let label = names::label(job.workflow, job.run, &info.name, 0);
        if requests.is_empty() {
            requests.push(LoadRequestRecord {
                label: label.clone(),
                file: 0,
                row: 0,
                next_file: job.files.len() as u32,
                next_row: 0,
                rows: info.rows,
                bytes: 0,
                outcome: RequestOutcome::Pending,
            });
            record(requests)?;
        }
        let cols = names::column_names(info)?;
        let sql = format!(
            "INSERT INTO {}.{} WITH LABEL {} ({}) SELECT {} FROM {}.{}.{}",
            quote(&self.cfg.database),
            quote(stage),
            quote(&label),
            cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
            info.columns
                .iter()
                .map(|c| quote(&c.name))
                .collect::<Vec<_>>()
                .join(", "),
            quote(catalog),
            quote(&job.lake_namespace),
            quote(&info.name)
        );
        let mut c = self.conn().await?;
        let first = self.exec(&mut c, &sql).await;
        drop(c);
        let outcome = match first {
            Ok(()) => RequestOutcome::Loaded,
            Err(e) => {
                // Lost answer or a label already used: StarRocks knows what happened.
                match self.insert_state(&label).await? {
                    Some((state, _)) if state == "FINISHED" => RequestOutcome::Found,
                    Some((state, msg)) if state == "CANCELLED" => {
                        return Err(Error::data(format!(
                            "INSERT from the lake (label {label}) was cancelled: {msg}"
                        )));
                    }
                    _ => return Err(e),
                }
            }
        };
        crate::fault::point(&format!("after_load_request:{}:0", info.name));
        requests[0].outcome = outcome;
        record(requests)?;
        Ok(LoadSummary {
            loaded: u32::from(outcome == RequestOutcome::Loaded),
            found: u32::from(outcome == RequestOutcome::Found),
        })
    }

    /// State and error message of the load job with `label`, waiting while it runs.
    async fn insert_state(&self, label: &str) -> Result<Option<(String, String)>> {
        let sql = format!(
            "SELECT STATE, ERROR_MSG FROM information_schema.loads WHERE DB_NAME = {} AND LABEL = {}",
            literal(&self.cfg.database),
            literal(label)
        );
        let mut wait = Duration::from_millis(200);
        for _ in 0..60 {
            let mut c = self.conn().await?;
            let rows: Vec<(String, Option<String>)> = c
                .query(&sql)
                .await
                .map_err(|e| my_err("reading the load state", e))?;
            match rows.into_iter().next() {
                None => return Ok(None),
                Some((state, msg)) if state == "FINISHED" || state == "CANCELLED" => {
                    return Ok(Some((state, msg.unwrap_or_default())));
                }
                Some(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
        Err(Error::unavailable(format!(
            "load job {label} did not finish while we waited"
        )))
    }
}

fn count(s: &mut LoadSummary, outcome: RequestOutcome) {
    if outcome == RequestOutcome::Loaded || outcome == RequestOutcome::Committed {
        s.loaded += 1;
    } else {
        s.found += 1;
    }
}

/// The rows a load reads: the data files, in order, and how to read and encode them.
#[derive(Clone)]
struct Rows {
    files: Arc<Vec<String>>,
    io: iceberg::io::FileIO,
    info: Arc<TableInfo>,
    batch_rows: usize,
}

/// Most bytes of rows a Stream Load reads from Parquet at a time. Rows are encoded one by one,
/// so a larger batch only costs memory. The load's estimate counts batches of this size
/// (`load_batch_bytes`).
pub(super) const CSV_BATCH_BYTES: u64 = 1 << 20;

/// Rows per batch read from Parquet for CSV: the run's batch size, but no more than
/// [`CSV_BATCH_BYTES`] of rows.
fn csv_batch_rows(batch_rows: usize, info: &TableInfo) -> usize {
    let by_bytes = CSV_BATCH_BYTES / info.row_width().max(1);
    batch_rows.min(by_bytes as usize).max(256)
}

/// One request's body: the CSV of its span's rows, encoded again each time it is sent.
struct CsvBody {
    source: Rows,
    span: Span,
    /// Released when an encoding of the body has ended (its reader closed): the measuring of
    /// the next request may start.
    encoded: Option<Arc<Release>>,
}

/// Lets the measuring of the next request start, once per request: when its body has first been
/// encoded to the end, or when its send ended without that.
struct Release {
    gate: std::sync::mpsc::SyncSender<()>,
    done: AtomicBool,
}

impl Release {
    fn release(&self) {
        if !self.done.swap(true, Ordering::SeqCst) {
            // Never full: the measuring takes each signal before the next request exists.
            let _ = self.gate.try_send(());
        }
    }
}

impl RequestBody for CsvBody {
    fn len(&self) -> u64 {
        self.span.bytes
    }

    fn chunks(&self) -> BoxStream<'_, Result<Cow<'_, [u8]>>> {
        // Two chunks wait while one is written: the body costs a few hundred KiB, plus the
        // Parquet reader's batch.
        let (tx, rx) = mpsc::channel::<Result<Vec<u8>>>(2);
        let source = self.source.clone();
        let span = self.span;
        let encoded = self.encoded.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(CHUNK_BYTES);
            let walked = walk(&source, span.from, Some(span.to), |row| {
                if let Row::Line(_, line) = row {
                    buf.extend_from_slice(line);
                    if buf.len() >= CHUNK_BYTES {
                        let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_BYTES));
                        // A closed channel: the send was abandoned.
                        return Ok(tx.blocking_send(Ok(full)).is_ok());
                    }
                }
                Ok(true)
            });
            // The reader is closed: the next request may be measured.
            if let Some(encoded) = encoded {
                encoded.release();
            }
            let _ = match walked {
                Ok(()) if !buf.is_empty() => tx.blocking_send(Ok(buf)),
                Ok(()) => Ok(()),
                Err(e) => tx.blocking_send(Err(e)),
            };
        });
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk.map(Cow::Owned), rx))
        }))
    }
}

/// Measures the requests the rows from `from` (up to `until`, or the end) make, at most
/// `max_bytes` of CSV each, on the blocking pool. Only positions and lengths are kept. With a
/// `gate`, each request after the first is measured only once the gate is signalled (the body
/// before it has been encoded), so that the measuring and the sending do not read at once.
fn measure(
    source: &Rows,
    from: Pos,
    until: Option<Pos>,
    max_bytes: u64,
    gate: Option<std::sync::mpsc::Receiver<()>>,
) -> mpsc::Receiver<Result<Span>> {
    let (tx, rx) = mpsc::channel(1);
    let source = source.clone();
    tokio::task::spawn_blocking(move || {
        let mut at = from;
        loop {
            let span = match measure_one(&source, at, until, max_bytes) {
                Ok(Some(span)) => span,
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            at = span.to;
            // A closed channel or gate: the load ended or was abandoned.
            if tx.blocking_send(Ok(span)).is_err() {
                return;
            }
            if let Some(gate) = &gate
                && gate.recv().is_err()
            {
                return;
            }
        }
    });
    rx
}

/// The next request from `from`: the rows (up to `until`, or the end) whose CSV fits in
/// `max_bytes`; `None` when no row is left. Its reader is closed when it returns.
fn measure_one(
    source: &Rows,
    from: Pos,
    until: Option<Pos>,
    max_bytes: u64,
) -> Result<Option<Span>> {
    let mut span = Span {
        from,
        to: from,
        rows: 0,
        bytes: 0,
    };
    walk(source, from, until, |row| {
        match row {
            Row::Line(here, line) => {
                let len = line.len() as u64;
                if len > max_bytes {
                    return Err(Error::data(format!(
                        "table {}: row {} of data file {} takes {len} bytes as CSV, more than \
                         target.request_bytes ({max_bytes}); raise request_bytes",
                        source.info.name, here.row, source.files[here.file as usize],
                    )));
                }
                // Full: this row starts the next request (`span.to` is already here).
                if span.bytes + len > max_bytes && span.rows > 0 {
                    return Ok(false);
                }
                span.bytes += len;
                span.rows += 1;
                span.to = Pos {
                    file: here.file,
                    row: here.row + 1,
                };
            }
            // The next file starts at its row 0: positions at a file's end move there, so that
            // a request that ends exactly at a file boundary and the next one agree.
            Row::FileEnd(next) => {
                span.to = next;
                if span.rows == 0 {
                    span.from = next;
                }
            }
        }
        Ok(true)
    })?;
    Ok((span.rows > 0).then_some(span))
}

/// What [`walk`] hands over: a row's CSV line at its position, or the end of a data file with
/// the position after it.
enum Row<'a> {
    Line(Pos, &'a [u8]),
    FileEnd(Pos),
}

/// Encodes the rows from `from` (up to `until`, or the end) as CSV lines, in order, handing
/// each to `each`, which returns whether to go on.
fn walk(
    source: &Rows,
    from: Pos,
    until: Option<Pos>,
    mut each: impl FnMut(Row<'_>) -> Result<bool>,
) -> Result<()> {
    let mut enc = CsvEncoder::new(&source.info);
    let mut line = Vec::with_capacity(1024);
    for (fi, file) in source.files.iter().enumerate().skip(from.file as usize) {
        let first_row = if fi == from.file as usize {
            from.row
        } else {
            0
        };
        let reader = crate::lake::read::open_parquet(
            &source.io,
            file,
            source.batch_rows,
            first_row as usize,
        )?;
        let mut row_in_file = first_row;
        for batch in reader {
            let batch = batch?;
            let cols: Vec<Cells<'_>> = batch
                .columns()
                .iter()
                .map(Cells::new)
                .collect::<std::result::Result<_, _>>()
                .map_err(Error::internal)?;
            for r in 0..batch.num_rows() {
                let here = Pos {
                    file: fi as u32,
                    row: row_in_file,
                };
                if until.is_some_and(|u| here >= u) {
                    return Ok(());
                }
                line.clear();
                enc.encode_row(&cols, r, &mut line)?;
                if !each(Row::Line(here, &line))? {
                    return Ok(());
                }
                row_in_file += 1;
            }
        }
        let next = Pos {
            file: fi as u32 + 1,
            row: 0,
        };
        if until.is_some_and(|u| next > u) {
            return Ok(());
        }
        if !each(Row::FileEnd(next))? {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ColType, Column};
    use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
    use futures::StreamExt;

    /// Two data files of 20 rows each of an (id, note) table.
    fn files(dir: &std::path::Path) -> (TableInfo, Vec<String>) {
        let info = TableInfo::new(
            "T",
            vec![
                Column {
                    name: "id".into(),
                    ty: ColType::Int32,
                    nullable: false,
                },
                Column {
                    name: "note".into(),
                    ty: ColType::String,
                    nullable: true,
                },
            ],
            Some("id".into()),
            40,
        );
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("id", arrow_schema::DataType::Int32, false),
            arrow_schema::Field::new("note", arrow_schema::DataType::Utf8, true),
        ]));
        let paths = (0..2)
            .map(|f| {
                let ids: Vec<i32> = (f * 20..f * 20 + 20).collect();
                let notes: Vec<String> = ids.iter().map(|i| format!("row {i}")).collect();
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(Int32Array::from(ids)),
                    Arc::new(StringArray::from(notes)),
                ];
                let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
                let path = dir.join(format!("f{f}.parquet"));
                let file = std::fs::File::create(&path).unwrap();
                let mut w =
                    parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).unwrap();
                w.write(&batch).unwrap();
                w.close().unwrap();
                format!("file://{}", path.display())
            })
            .collect();
        (info, paths)
    }

    fn release(gate: &std::sync::mpsc::SyncSender<()>) -> Arc<Release> {
        Arc::new(Release {
            gate: gate.clone(),
            done: AtomicBool::new(false),
        })
    }

    async fn encode(body: &CsvBody) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chunks = body.chunks();
        while let Some(c) = chunks.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_request_is_measured_only_once_the_body_before_it_was_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let (info, paths) = files(dir.path());
        let source = Rows {
            files: Arc::new(paths),
            io: iceberg::io::FileIO::new_with_fs(),
            info: Arc::new(info),
            batch_rows: 7,
        };
        let wait = Duration::from_millis(300);
        let (gate, gated) = std::sync::mpsc::sync_channel(1);
        let mut rx = measure(&source, Pos { file: 0, row: 0 }, None, 64, Some(gated));
        let first = rx.recv().await.unwrap().unwrap();
        assert_eq!(first.from, Pos { file: 0, row: 0 });
        // Nothing more is measured while the first body has not been encoded.
        assert!(tokio::time::timeout(wait, rx.recv()).await.is_err());
        let r = release(&gate);
        let body = CsvBody {
            source: source.clone(),
            span: first,
            encoded: Some(r.clone()),
        };
        let csv = encode(&body).await;
        assert_eq!(csv.len() as u64, first.bytes);
        assert!(csv.starts_with(b"0,"), "{}", String::from_utf8_lossy(&csv));
        let second = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("encoding the first body lets the second request be measured")
            .unwrap()
            .unwrap();
        assert_eq!(second.from, first.to);
        // A request releases once: sending its body again (a retry) or the send ending lets
        // nothing more be measured.
        encode(&body).await;
        r.release();
        assert!(tokio::time::timeout(wait, rx.recv()).await.is_err());
        // The rest, one release each: the requests cover every row once, in order, across the
        // file boundary, each within the limit.
        let mut spans = vec![first, second];
        loop {
            release(&gate).release();
            match tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
            {
                Some(span) => spans.push(span.unwrap()),
                None => break,
            }
        }
        assert!(spans.len() > 4, "{spans:?}");
        assert_eq!(spans.iter().map(|s| s.rows).sum::<u64>(), 40);
        for w in spans.windows(2) {
            assert_eq!(w[1].from, w[0].to);
        }
        assert!(spans.iter().all(|s| s.bytes <= 64 && s.rows > 0));
        assert_eq!(spans.last().unwrap().to, Pos { file: 2, row: 0 });
    }
}
