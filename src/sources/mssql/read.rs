//! Reading one chunk: the streamed query, cut into batches bounded in rows and bytes, each
//! fingerprinted while the next is decoded, and cancelled on the server when the consumer leaves.

use std::collections::BTreeMap;

use arrow_array::{ArrayRef, RecordBatch};
use futures::StreamExt;
use tiberius::Query;
use tokio::sync::mpsc;

use super::Mssql;
use super::chunks::Param;
use super::connect::map_err;
use super::wire::append;
use crate::error::{Error, ErrorKind, Result};
use crate::model::builders::ColBuilder as Col;
use crate::model::fingerprint::Digest128;
use crate::model::{ChunkRange, ColType, TableInfo};
use crate::sources::Piece;

impl Mssql {
    /// Streams one chunk as batches of at most `batch_rows` rows (and about `batch_bytes`),
    /// each with its digest. If the receiver goes away the read is cancelled on the server.
    pub fn stream_chunk(
        &self,
        info: &TableInfo,
        range: ChunkRange,
        batch_rows: usize,
        batch_bytes: usize,
    ) -> mpsc::Receiver<Result<Piece>> {
        let (tx, rx) = mpsc::channel(1);
        let this = self.clone();
        let info = info.clone();
        tokio::spawn(async move {
            if let Err(e) = this
                .read_chunk(&info, &range, batch_rows, batch_bytes, &tx)
                .await
            {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    async fn read_chunk(
        &self,
        info: &TableInfo,
        range: &ChunkRange,
        batch_rows: usize,
        batch_bytes: usize,
        tx: &mpsc::Sender<Result<Piece>>,
    ) -> Result<()> {
        let (sql, params) = self.chunk_query(info, range);
        let what = format!(
            "reading {} chunk {}",
            self.qualified(&info.name),
            range.index
        );
        let mut c = self.connect().await?;
        let mut q = Query::new(sql);
        for p in &params {
            match p {
                Param::Int(i) => q.bind(*i),
                Param::Text(t) => q.bind(t.clone()),
            }
        }
        let schema = info.arrow_schema();
        let mut b = RowBuilder::new(info, batch_rows);
        // Hashing a batch runs on the blocking pool while the next one is decoded; pieces are
        // still sent in order.
        let mut pending: Option<tokio::task::JoinHandle<Result<Piece>>> = None;
        let mut cancelled = false;
        {
            let stream = q.query(&mut c).await.map_err(|e| map_err(&what, e))?;
            let mut rows = stream.into_row_stream();
            loop {
                // A consumer that gave up (another chunk failed) stops this read at once.
                let row = tokio::select! {
                    row = rows.next() => row,
                    _ = tx.closed() => {
                        cancelled = true;
                        break;
                    }
                };
                let Some(row) = row else { break };
                let row = row.map_err(|e| map_err(&what, e))?;
                b.push(row)
                    .map_err(|m| Error::new(ErrorKind::Data, format!("{what}: {m}")))?;
                if b.rows >= batch_rows || b.bytes >= batch_bytes {
                    let next = b.take(&schema)?;
                    let hashing = tokio::task::spawn_blocking(move || next.hashed());
                    if let Some(prev) = pending.replace(hashing)
                        && tx.send(joined(prev).await).await.is_err()
                    {
                        cancelled = true;
                        break;
                    }
                }
            }
        }
        if cancelled {
            // Tell the server to stop instead of draining the rest of the result.
            let _ = c.cancel_query().await;
            return Ok(());
        }
        if let Some(prev) = pending.take() {
            let _ = tx.send(joined(prev).await).await;
        }
        if b.rows > 0 {
            let piece = b.take(&schema)?.hashed();
            let _ = tx.send(piece).await;
        }
        let _ = c.close().await;
        Ok(())
    }
}

struct RowBuilder {
    cols: Vec<Col>,
    names: Vec<String>,
    rows: usize,
    bytes: usize,
    lossy: Vec<u64>,
    types: Vec<ColType>,
}

impl RowBuilder {
    fn new(info: &TableInfo, cap: usize) -> RowBuilder {
        let types = info.types();
        RowBuilder {
            cols: types.iter().map(|t| Col::new(*t, cap)).collect(),
            names: info.columns.iter().map(|c| c.name.clone()).collect(),
            rows: 0,
            bytes: 0,
            lossy: vec![0; types.len()],
            types,
        }
    }

    fn push(&mut self, row: tiberius::Row) -> std::result::Result<(), String> {
        if row.len() != self.cols.len() {
            return Err(format!(
                "the server returned {} columns, {} were expected",
                row.len(),
                self.cols.len()
            ));
        }
        for (i, cell) in row.into_iter().enumerate() {
            self.bytes += append(&mut self.cols[i], cell, &mut self.lossy[i])
                .map_err(|m| format!("column {} ({}): {m}", self.names[i], self.types[i]))?;
        }
        self.rows += 1;
        Ok(())
    }

    fn take(&mut self, schema: &arrow_schema::SchemaRef) -> Result<Unhashed> {
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        let mut lossy = BTreeMap::new();
        for (i, n) in self.lossy.iter_mut().enumerate() {
            if *n > 0 {
                lossy.insert(self.names[i].clone(), *n);
                *n = 0;
            }
        }
        self.rows = 0;
        self.bytes = 0;
        Ok(Unhashed { batch, lossy })
    }
}

/// A batch whose fingerprint is still to be computed.
struct Unhashed {
    batch: RecordBatch,
    lossy: BTreeMap<String, u64>,
}

impl Unhashed {
    fn hashed(self) -> Result<Piece> {
        let mut digest = Digest128::default();
        digest.add_batch(&self.batch).map_err(Error::internal)?;
        Ok(Piece {
            batch: self.batch,
            digest,
            lossy: self.lossy,
        })
    }
}

async fn joined(h: tokio::task::JoinHandle<Result<Piece>>) -> Result<Piece> {
    h.await
        .map_err(|e| Error::internal(format!("fingerprint worker failed: {e}")))?
}
