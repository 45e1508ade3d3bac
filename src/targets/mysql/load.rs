//! Loading one unit (one Parquet data file) into MySQL: its rows as multi-row INSERT statements
//! (upserts for an incremental run), built on the blocking pool while the previous statement
//! runs, and its ledger row, all in one InnoDB transaction.

use arrow_array::RecordBatch;
use iceberg::io::FileIO;
use mysql_async::TxOpts;
use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;

use super::names::{check_name, check_run, quote, stage_name};
use super::rows::sql_literal;
use super::{LEDGER, MysqlTarget};
use crate::error::{Error, Result};
use crate::model::TableInfo;
use crate::model::cells::Cells;
use crate::model::fingerprint::Digest128;
use crate::targets::ledger::Dest;

impl MysqlTarget {
    /// Loads one unit (one Parquet data file) into the staging table and records it in the
    /// ledger, in one transaction; returns the digest of the rows inserted. A unit already in
    /// the ledger is not loaded again: its recorded digest is returned.
    pub async fn load_unit(
        &self,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
    ) -> Result<Digest128> {
        self.load_unit_to(
            Dest::Stage,
            info,
            run,
            unit,
            file,
            io,
            batch_rows,
            self.insert_bytes,
        )
        .await
    }

    /// For an incremental run that appends: upserts one unit (one Parquet data file) into the
    /// live table by its primary key (plain inserts for a keyless table) and records it in the
    /// ledger, in one transaction; returns the digest of the rows written. A unit already in the
    /// ledger is not applied again: its recorded digest is returned.
    pub async fn load_unit_append(
        &self,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
    ) -> Result<Digest128> {
        self.load_unit_to(
            Dest::Live,
            info,
            run,
            unit,
            file,
            io,
            batch_rows,
            self.insert_bytes,
        )
        .await
    }

    /// Loads one unit into `dest` with statements of at most `statement_bytes` (and of the
    /// server's `max_allowed_packet`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn load_unit_to(
        &self,
        dest: Dest,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
        statement_bytes: u64,
    ) -> Result<Digest128> {
        check_name(&info.name, "table")?;
        check_run(run)?;
        let fail = self.at_table(&info.name);
        let mut c = self.conn().await?;
        let packet: Option<u64> = c
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(&fail)?;
        // Room for the packet header and the statement's own overhead.
        let cap = statement_bytes
            .min(packet.unwrap_or(4 << 20).saturating_sub(1024))
            .max(1024) as usize;
        // Batches of about one statement's bytes: the rows go out a statement at a time, and a
        // bigger batch would only be held longer.
        let batch_rows = batch_rows.min((cap as u64 / info.row_width()).max(64) as usize);
        let mut tx = c
            .start_transaction(TxOpts::default())
            .await
            .map_err(&fail)?;
        let result = self
            .load_in(&mut tx, dest, info, run, unit, file, io, batch_rows, cap)
            .await;
        match result {
            Ok(d) => {
                tx.commit().await.map_err(&fail)?;
                tracing::debug!(table = %info.name, unit, rows = d.rows, "unit loaded into MySQL");
                Ok(d)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                // Another loader of the same unit may have won (our rows then collided with its
                // rows or its ledger row): the unit is loaded exactly once, by that loader.
                match self.recorded(&mut c, info, run, unit).await {
                    Ok(Some(d)) => Ok(d),
                    _ => Err(e),
                }
            }
        }
    }

    /// The digest recorded in the ledger for a unit, if it was loaded.
    async fn recorded<Q: Queryable>(
        &self,
        q: &mut Q,
        info: &TableInfo,
        run: &str,
        unit: u32,
    ) -> Result<Option<Digest128>> {
        let done: Option<(u64, String)> = q
            .exec_first(
                format!(
                    "SELECT `rows`, fingerprint FROM {} \
                     WHERE run_id = ? AND table_name = ? AND unit = ?",
                    self.qualified(LEDGER)
                ),
                (run, &info.name, unit),
            )
            .await
            .map_err(self.at_table(&info.name))?;
        let Some((rows, fp)) = done else {
            return Ok(None);
        };
        let sum = u128::from_str_radix(&fp, 16).map_err(|_| {
            Error::state(format!(
                "table {}: ledger fingerprint {fp:?} of unit {unit} is not hex",
                info.name
            ))
        })?;
        Ok(Some(Digest128 { rows, sum }))
    }

    #[allow(clippy::too_many_arguments)]
    async fn load_in(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        dest: Dest,
        info: &TableInfo,
        run: &str,
        unit: u32,
        file: &str,
        io: &FileIO,
        batch_rows: usize,
        cap: usize,
    ) -> Result<Digest128> {
        let fail = self.at_table(&info.name);
        let ledger = self.qualified(LEDGER);
        // A plain read, no locking read: `FOR UPDATE` on a missing row takes a gap lock, and
        // loaders of neighbouring units would deadlock on each other's ledger inserts. Two
        // loaders of the same unit are kept apart by the ledger's primary key instead (below).
        if let Some(d) = self.recorded(tx, info, run, unit).await? {
            return Ok(d);
        }
        let columns = info
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let (into, tail) = match dest {
            Dest::Stage => (stage_name(&info.name, run), String::new()),
            Dest::Live => (info.name.clone(), upsert_clause(info)),
        };
        let head = format!("INSERT INTO {} ({columns}) VALUES ", self.qualified(&into));
        let mut pieces = produce(
            file.to_string(),
            io.clone(),
            batch_rows,
            info.clone(),
            (head, tail),
            cap,
        );
        let mid_point = format!("mid_load:{}:{unit}", info.name);
        let mut first = true;
        let mut digest = None;
        while let Some(piece) = pieces.recv().await {
            match piece? {
                Piece::Insert {
                    sql,
                    first_row,
                    rows,
                } => {
                    if let Err(e) = tx.query_drop(sql).await {
                        return Err(explain(fail(e), file, io, first_row, rows).await);
                    }
                    if first {
                        first = false;
                        // Rows are in, the ledger row and the commit are not.
                        crate::fault::point(&mid_point);
                    }
                }
                Piece::Done(d) => digest = Some(d),
            }
        }
        let digest = digest.ok_or_else(|| {
            Error::internal(format!(
                "table {}: reading data file of unit {unit} stopped early",
                info.name
            ))
        })?;
        tx.exec_drop(
            format!(
                "INSERT INTO {ledger} (run_id, table_name, unit, `rows`, fingerprint, loaded_at) \
                 VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))"
            ),
            (run, &info.name, unit, digest.rows, digest.hex()),
        )
        .await
        .map_err(|e| match e {
            // Another loader recorded this unit first; this transaction's rows roll back and
            // the retry finds the unit in the ledger.
            mysql_async::Error::Server(s) if s.code == 1062 => Error::unavailable(format!(
                "{}: table {}: unit {unit} was loaded meanwhile by another loader",
                self.describe_location(),
                info.name
            )),
            e => fail(e),
        })?;
        Ok(digest)
    }
}

/// ` ON DUPLICATE KEY UPDATE c = VALUES(c), ...` over the non-key columns, so a row whose key is
/// already in the table replaces its values; empty for a keyless table (plain inserts).
pub(super) fn upsert_clause(info: &TableInfo) -> String {
    if info.primary_key.is_empty() {
        return String::new();
    }
    let is_key = |name: &str| {
        info.primary_key
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name))
    };
    let mut set: Vec<String> = info
        .columns
        .iter()
        .filter(|c| !is_key(&c.name))
        .map(|c| format!("{n} = VALUES({n})", n = quote(&c.name)))
        .collect();
    if set.is_empty() {
        // Every column is in the key: the row already there is equal. Assigning a key column
        // its own value keeps the statement an upsert without IGNORE, which would also swallow
        // the strict mode's errors about bad values.
        let k = quote(&info.primary_key[0]);
        set.push(format!("{k} = {k}"));
    }
    format!(" ON DUPLICATE KEY UPDATE {}", set.join(", "))
}

/// What the producer of a unit's statements sends.
pub(super) enum Piece {
    /// One multi-row INSERT of `rows` rows, the first of them row `first_row` of the data file
    /// (to find a refused value again for the error message).
    Insert {
        sql: String,
        first_row: usize,
        rows: usize,
    },
    /// Everything sent; the digest of all rows.
    Done(Digest128),
}

/// Reads the data file on the blocking pool and turns it into INSERT statements of at most
/// `cap` bytes (a single longer row goes alone): `head`, the rows, `tail` (an upsert's
/// `ON DUPLICATE KEY UPDATE ...`, or nothing). A statement may span batches.
///
/// What the load holds is mostly statements, so their number is kept down: the next statement
/// is begun only once the previous one was taken, so at most one is being built (or waits)
/// while another runs, and the statements keep no batch alive (an error's value is read again
/// from the file, see [`explain`]).
pub(super) fn produce(
    file: String,
    io: FileIO,
    batch_rows: usize,
    info: TableInfo,
    (head, tail): (String, String),
    cap: usize,
) -> mpsc::Receiver<Result<Piece>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::task::spawn_blocking(move || {
        let cap = cap.saturating_sub(tail.len());
        if let Err(e) = produce_into(&file, &io, batch_rows, &info, (&head, &tail), cap, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

fn produce_into(
    file: &str,
    io: &FileIO,
    batch_rows: usize,
    info: &TableInfo,
    (head, tail): (&str, &str),
    cap: usize,
    tx: &mpsc::Sender<Result<Piece>>,
) -> Result<()> {
    let rt = tokio::runtime::Handle::current();
    let reader = crate::lake::read::open_parquet(io, file, batch_rows, 0)?;
    let mut digest = Digest128::default();
    let mut row_text = String::new();
    let mut sql = String::new();
    // The statement being built: its rows, the file row of its first, and its place in the
    // channel (taken before it is begun).
    let mut rows = 0usize;
    let mut first_row = 0usize;
    let mut permit: Option<mpsc::Permit<'_, Result<Piece>>> = None;
    // The file row of the batch's first row.
    let mut at = 0usize;
    for batch in reader {
        let batch = in_table_order(batch?, info)?;
        digest.add_batch(&batch).map_err(Error::internal)?;
        let cells: Vec<Cells<'_>> = batch
            .columns()
            .iter()
            .map(Cells::new)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::data(format!("table {}: {e}", info.name)))?;
        for row in 0..batch.num_rows() {
            row_text.clear();
            row_text.push('(');
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    row_text.push(',');
                }
                sql_literal(c, row, &mut row_text).map_err(|m| {
                    Error::data(format!(
                        "table {}, column {}: {m}",
                        info.name, info.columns[i].name
                    ))
                })?;
            }
            row_text.push(')');
            if rows > 0 && sql.len() + 1 + row_text.len() > cap {
                sql.push_str(tail);
                let piece = Piece::Insert {
                    sql: std::mem::take(&mut sql),
                    first_row,
                    rows,
                };
                if let Some(p) = permit.take() {
                    p.send(Ok(piece));
                }
                rows = 0;
            }
            if rows == 0 {
                // Wait until the consumer took the previous statement (it then runs it).
                let Ok(p) = rt.block_on(tx.reserve()) else {
                    return Ok(());
                };
                permit = Some(p);
                sql.reserve(cap.min(1 << 20));
                sql.push_str(head);
                first_row = at + row;
            } else {
                sql.push(',');
            }
            sql.push_str(&row_text);
            rows += 1;
        }
        at += batch.num_rows();
    }
    if let Some(p) = permit.take() {
        sql.push_str(tail);
        p.send(Ok(Piece::Insert {
            sql,
            first_row,
            rows,
        }));
    }
    let _ = tx.blocking_send(Ok(Piece::Done(digest)));
    Ok(())
}

/// The batch's columns in `info` order, found by name (the digest and the INSERT column list
/// both follow `info`).
fn in_table_order(batch: RecordBatch, info: &TableInfo) -> Result<RecordBatch> {
    let schema = batch.schema();
    let idx = info
        .columns
        .iter()
        .map(|c| {
            schema.index_of(&c.name).map_err(|_| {
                Error::internal(format!(
                    "table {}: the data file has no column {}",
                    info.name, c.name
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if idx.iter().copied().eq(0..schema.fields().len()) {
        return Ok(batch);
    }
    Ok(batch.project(&idx)?)
}

/// Adds the offending column and value to a server error about a value, when the server names
/// them ("... for column 'c' at row 3"). The statement's rows are not kept: the value is read
/// again from the data file, whose row `first_row` is the first of the statement's `rows`.
async fn explain(mut e: Error, file: &str, io: &FileIO, first_row: usize, rows: usize) -> Error {
    let msg = e.message.clone();
    let column = msg.split_once("column ").and_then(|(_, rest)| {
        if let Some(r) = rest.strip_prefix('\'') {
            r.split_once('\'').map(|(c, _)| c.to_string())
        } else if rest.starts_with('`') {
            // MariaDB: `db`.`table`.`column`
            let end = rest.find(" at row").unwrap_or(rest.len());
            rest[..end]
                .trim()
                .trim_end_matches('`')
                .rsplit("`.`")
                .next()
                .map(|c| c.trim_start_matches('`').replace("``", "`"))
        } else {
            None
        }
    });
    let row: Option<usize> = msg
        .split_once(" at row ")
        .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    let (Some(column), Some(row)) = (column, row) else {
        return e;
    };
    let row = row.saturating_sub(1);
    if row >= rows {
        return e;
    }
    let (file, io, name) = (file.to_string(), io.clone(), column.clone());
    let value = tokio::task::spawn_blocking(move || {
        let batch = crate::lake::read::open_parquet(&io, &file, 1, first_row + row)
            .ok()?
            .next()?
            .ok()?;
        let i = batch.schema().index_of(&name).ok()?;
        let c = Cells::new(batch.column(i)).ok()?;
        let mut value = String::new();
        sql_literal(&c, 0, &mut value).ok()?;
        Some(value)
    })
    .await;
    let Ok(Some(mut value)) = value else {
        return e;
    };
    if value.len() > 120 {
        let mut end = 120;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
        value.push_str("...");
    }
    e.message = format!("{msg} (column {column}, value {value})");
    e
}
