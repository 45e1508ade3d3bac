//! Sources: where tables come from.
//!
//! A closed enum, one variant per kind of database, so adding a source is one file and one
//! variant. Every source describes a table as a [`TableInfo`], splits it into key-range chunks and
//! streams a chunk as bounded Arrow batches through a channel of capacity one, so at most a few
//! batches per chunk exist at any moment whatever the table's size.

pub mod demo;
pub mod mssql;
pub mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use tokio::sync::mpsc;

use crate::config::{SourceConfig, TableOverride};
use crate::error::{Error, Result};
use crate::model::ChunkRange;
use crate::model::TableInfo;
use crate::model::fingerprint::Digest128;

/// One batch of a chunk with what the reader learnt while producing it.
#[derive(Debug)]
pub struct Piece {
    pub batch: RecordBatch,
    /// Fingerprint of the batch's rows, computed beside the reader.
    pub digest: Digest128,
    /// Values converted with a loss of precision, by column (only columns with any).
    pub lossy: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
pub enum Source {
    Sqlite {
        path: PathBuf,
        /// Rows of the demo's big table, when the database is the generated demo.
        demo: Option<u64>,
    },
    Mssql {
        conn: Box<mssql::Mssql>,
        /// Size estimates from the last listing, so describing a table needs no second one.
        stats: Arc<Mutex<HashMap<String, mssql::TableStat>>>,
    },
}

/// Bytes a batch may hold before it is cut early: wide text keeps batches bounded in memory.
pub const BATCH_BYTES: usize = 4 << 20;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("source worker panicked: {e}")))?
}

impl Source {
    /// Relative paths are taken from the directory `dag` runs in, as the workflow file says.
    pub fn build(cfg: &SourceConfig) -> Result<Source> {
        match cfg {
            SourceConfig::Sqlite {
                path,
                generate_demo,
                demo_big_rows,
            } => Ok(Source::Sqlite {
                path: path.clone(),
                demo: generate_demo.then_some(*demo_big_rows),
            }),
            SourceConfig::Mssql(settings) => Ok(Source::Mssql {
                conn: Box::new(mssql::Mssql::new(settings)?),
                stats: Arc::default(),
            }),
        }
    }

    /// Human-readable description without secrets.
    pub fn describe_location(&self) -> String {
        match self {
            Source::Sqlite { path, .. } => format!("sqlite {}", path.display()),
            Source::Mssql { conn, .. } => format!("SQL Server {}", conn.location()),
        }
    }

    /// Creates the embedded demo database if it is configured and missing.
    pub async fn prepare(&self) -> Result<()> {
        match self {
            Source::Sqlite {
                path,
                demo: Some(rows),
            } => {
                let (path, rows) = (path.clone(), *rows);
                blocking(move || {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    let made =
                        demo::ensure(&path, rows).map_err(|e| Error::internal(e.to_string()))?;
                    if made {
                        tracing::info!(path = %path.display(), "created the demo source database");
                    }
                    Ok(())
                })
                .await
            }
            Source::Sqlite { path, demo: None } => {
                if path.exists() {
                    Ok(())
                } else {
                    Err(Error::config(format!(
                        "source.path: SQLite database {} does not exist",
                        path.display()
                    )))
                }
            }
            Source::Mssql { .. } => Ok(()),
        }
    }

    pub async fn tables(&self) -> Result<Vec<String>> {
        match self {
            Source::Sqlite { path, .. } => {
                let path = path.clone();
                blocking(move || sqlite::list_tables(&sqlite::open(&path, false)?)).await
            }
            Source::Mssql { conn, stats } => {
                let list = conn.tables().await?;
                let names = list.iter().map(|t| t.name.clone()).collect();
                let mut cache = stats.lock().unwrap_or_else(|p| p.into_inner());
                cache.clear();
                cache.extend(list.into_iter().map(|t| (t.name.to_lowercase(), t)));
                Ok(names)
            }
        }
    }

    /// Describes a table; its `[table.<NAME>]` settings may set the chunk key and exclude or
    /// cast columns.
    pub async fn describe(&self, table: &str, ov: Option<&TableOverride>) -> Result<TableInfo> {
        match self {
            Source::Mssql { conn, stats } => {
                let stat = stats
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&table.to_lowercase())
                    .cloned();
                conn.describe(table, ov, stat.as_ref()).await
            }
            Source::Sqlite { path, .. } => {
                let key = ov.and_then(|o| o.chunk_key.clone());
                let (path, table) = (path.clone(), table.to_string());
                blocking(move || {
                    sqlite::describe(&sqlite::open(&path, false)?, &table, key.as_deref())
                })
                .await
            }
        }
    }

    pub async fn plan_chunks(&self, info: &TableInfo, chunk_rows: u64) -> Result<Vec<ChunkRange>> {
        match self {
            Source::Sqlite { path, .. } => {
                let (path, info) = (path.clone(), info.clone());
                blocking(move || {
                    sqlite::plan_chunks(&sqlite::open(&path, false)?, &info, chunk_rows)
                })
                .await
            }
            Source::Mssql { conn, .. } => conn.plan_chunks(info, chunk_rows).await,
        }
    }

    /// The largest value of `cursor` in the table now: the upper end of an incremental run.
    pub async fn cursor_max(
        &self,
        info: &TableInfo,
        cursor: &str,
    ) -> Result<Option<crate::model::CursorValue>> {
        match self {
            Source::Sqlite { path, .. } => {
                let (path, info, cursor) = (path.clone(), info.clone(), cursor.to_string());
                blocking(move || sqlite::cursor_max(&sqlite::open(&path, false)?, &info, &cursor))
                    .await
            }
            Source::Mssql { conn, .. } => conn.cursor_max(info, cursor).await,
        }
    }

    /// Current row count (verify compares it with what was extracted).
    pub async fn count(&self, table: &str) -> Result<u64> {
        match self {
            Source::Sqlite { path, .. } => {
                let (path, table) = (path.clone(), table.to_string());
                blocking(move || {
                    let c = sqlite::open(&path, false)?;
                    let n: i64 = c.query_row(
                        &format!("SELECT COUNT(*) FROM {}", sqlite::quote(&table)),
                        [],
                        |r| r.get(0),
                    )?;
                    Ok(n as u64)
                })
                .await
            }
            Source::Mssql { conn, .. } => conn.count(table).await,
        }
    }

    /// Streams one chunk as batches of at most `batch_rows` rows, each with its digest. The channel holds one batch, so
    /// the reader waits for the writer: memory stays at a few batches per chunk.
    pub fn stream_chunk(
        &self,
        info: &TableInfo,
        range: ChunkRange,
        batch_rows: usize,
    ) -> mpsc::Receiver<Result<Piece>> {
        let (tx, rx) = mpsc::channel(1);
        match self {
            Source::Mssql { conn, .. } => {
                return conn.stream_chunk(info, range, batch_rows, BATCH_BYTES);
            }
            Source::Sqlite { path, .. } => {
                let (path, info) = (path.clone(), info.clone());
                tokio::task::spawn_blocking(move || {
                    let res = (|| {
                        let c = sqlite::open(&path, false)?;
                        let pred = sqlite::chunk_predicate_of(&info, &range);
                        // Fingerprinting here keeps the hashing on the reader's thread, beside the
                        // writer's Parquet encoding rather than in front of it.
                        sqlite::read(&c, &info, &pred, batch_rows, |b| {
                            let mut d = Digest128::default();
                            d.add_batch(&b).map_err(Error::internal)?;
                            let piece = Piece {
                                batch: b,
                                digest: d,
                                lossy: BTreeMap::new(),
                            };
                            Ok(tx.blocking_send(Ok(piece)).is_ok())
                        })
                    })();
                    if let Err(e) = res {
                        let _ = tx.blocking_send(Err(e));
                    }
                });
            }
        }
        rx
    }
}
