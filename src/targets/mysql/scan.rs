//! Reading a table back over the MySQL protocol as Arrow batches, for verification: the MySQL
//! target and StarRocks (whose frontend speaks the protocol) both scan this way.

use arrow_array::RecordBatch;
use mysql_async::QueryResult;
use mysql_async::prelude::{Protocol, Queryable};
use tokio::sync::mpsc;

use super::rows::{append_value, map_error};
use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::builders::ColBuilder;

/// Streams the rows of `sql` as Arrow batches of up to `batch_rows` rows typed exactly like
/// `info.arrow_schema()`. `binary`: run it as a prepared statement (typed values, exact floats),
/// else as a text query. Rows are converted as they arrive and at most two batches wait in the
/// channel, so memory stays at a few batches whatever the table's size. An error is the last
/// item sent.
pub fn scan(
    pool: mysql_async::Pool,
    sql: String,
    info: TableInfo,
    batch_rows: usize,
    binary: bool,
) -> mpsc::Receiver<Result<RecordBatch>> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        if let Err(e) = scan_into(&pool, &sql, &info, batch_rows.max(1), binary, &tx).await {
            let _ = tx
                .send(Err(e.context(format!("reading table {} back", info.name))))
                .await;
        }
    });
    rx
}

async fn scan_into(
    pool: &mysql_async::Pool,
    sql: &str,
    info: &TableInfo,
    batch_rows: usize,
    binary: bool,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let mut conn = pool.get_conn().await.map_err(map_error)?;
    let id = conn.id();
    let gave_up = if binary {
        let mut res = conn.exec_iter(sql, ()).await.map_err(map_error)?;
        drain(&mut res, info, batch_rows, tx).await?
    } else {
        let mut res = conn.query_iter(sql).await.map_err(map_error)?;
        drain(&mut res, info, batch_rows, tx).await?
    };
    if gave_up {
        // The driver would read the rest of the result before reusing or even closing the
        // connection: stop the query on the server, then drop the connection (a kill that
        // arrives after the result ended must not hit the next user of a pooled connection).
        if let Ok(mut k) = pool.get_conn().await {
            let _ = k.query_drop(format!("KILL QUERY {id}")).await;
        }
        let _ = conn.disconnect().await;
    }
    Ok(())
}

/// Reads rows into batches until the result ends (`false`) or the receiver is gone (`true`).
async fn drain<P: Protocol>(
    res: &mut QueryResult<'_, '_, P>,
    info: &TableInfo,
    batch_rows: usize,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<bool> {
    let width = info.columns.len();
    if res.columns_ref().len() != width {
        return Err(Error::internal(format!(
            "the query returned {} columns, table {} has {width}",
            res.columns_ref().len(),
            info.name
        )));
    }
    let schema = info.arrow_schema();
    let types = info.types();
    let new_builders = || {
        types
            .iter()
            .map(|t| ColBuilder::new(*t, batch_rows))
            .collect::<Vec<_>>()
    };
    let mut builders = new_builders();
    let mut rows = 0usize;
    while let Some(row) = res.next().await.map_err(map_error)? {
        for (i, v) in row.unwrap_raw().into_iter().enumerate() {
            let col = &info.columns[i];
            let v = v.ok_or_else(|| {
                Error::internal(format!(
                    "column {} of table {} missing",
                    col.name, info.name
                ))
            })?;
            append_value(&mut builders[i], col.ty, v, &info.name, &col.name)?;
        }
        rows += 1;
        if rows == batch_rows {
            let arrays = builders.iter_mut().map(|b| b.finish()).collect();
            if tx
                .send(Ok(RecordBatch::try_new(schema.clone(), arrays)?))
                .await
                .is_err()
            {
                return Ok(true);
            }
            builders = new_builders();
            rows = 0;
        }
    }
    if rows > 0 {
        let arrays = builders.iter_mut().map(|b| b.finish()).collect();
        let _ = tx.send(Ok(RecordBatch::try_new(schema, arrays)?)).await;
    }
    Ok(false)
}
