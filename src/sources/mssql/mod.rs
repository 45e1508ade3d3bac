//! SQL Server source, through tiberius (TDS 7.3+).
//!
//! Why it looks the way it does (see `docs/reference/sqlserver.md` for the facts):
//! - Discovery uses `sys.*` views, which know identity and computed columns and primary keys;
//!   row counts and average row sizes come from `sys.dm_db_partition_stats`, or from
//!   `sys.partitions` when the login lacks VIEW DATABASE STATE. They feed the memory estimate.
//! - Every column is read in a form tiberius decodes exactly: money as `decimal(19,4)` (tiberius
//!   would give an f64), `char`/`varchar`/`text`/`xml`/`hierarchyid`/`sql_variant` as `nvarchar`
//!   (code-page and collation bugs), geography/geometry as WKT. Decimals go from the wire's i128
//!   straight into Arrow's Decimal128, never through rust_decimal (which panics above 96 bits).
//! - Rows are streamed (`into_row_stream`) into Arrow builders and cut into batches bounded in
//!   rows and bytes, so no result is ever held whole; a read the consumer abandons is stopped
//!   with `cancel_query` (an Attention) rather than drained.
//! - Chunks are half-open key ranges: MIN/MAX for a single integer key, row-number boundaries
//!   for any other key (composite keys compare as row values, expanded into `OR`/`AND`).
//!
//! Lossy conversions, counted per column in the extract's outputs: datetime2/datetimeoffset with
//! 100 ns digits become microseconds. Documented, not counted: `datetime` keeps SQL Server's own
//! millisecond rendering of its 1/300 s ticks (.000/.003/.007), and datetimeoffset keeps the
//! instant (UTC) but not the original offset.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{ArrayRef, RecordBatch};
use futures::StreamExt;
use percent_encoding::percent_decode_str;
use tiberius::{Client, ColumnData, Config, EncryptionLevel, Query};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::config::{Encrypt, MssqlSettings, TableOverride};
use crate::error::{Error, ErrorKind, Result};
use crate::model::ChunkRange;
use crate::model::codec::decimal_text;
use crate::model::fingerprint::Digest128;
use crate::model::{ColType, Column, ColumnOrigin, TableInfo};

use super::Piece;
use crate::model::builders::ColBuilder as Col;
use crate::model::calendar::civil_from_days;

type Conn = Client<Compat<TcpStream>>;

/// A SQL Server schema as a source: the client, and the size estimates of the last listing.
#[derive(Debug, Clone)]
pub struct MssqlSource {
    conn: Box<Mssql>,
    /// Size estimates from the last listing, so describing a table needs no second one.
    stats: Arc<Mutex<HashMap<String, TableStat>>>,
}

impl MssqlSource {
    pub fn new(settings: &MssqlSettings) -> Result<MssqlSource> {
        Ok(MssqlSource {
            conn: Box::new(Mssql::new(settings)?),
            stats: Arc::default(),
        })
    }

    pub fn describe_location(&self) -> String {
        format!("SQL Server {}", self.conn.location())
    }

    /// Nothing to prepare: the server is there or the first query says why not.
    pub async fn prepare(&self) -> Result<()> {
        Ok(())
    }

    pub async fn tables(&self) -> Result<Vec<String>> {
        let list = self.conn.tables().await?;
        let names = list.iter().map(|t| t.name.clone()).collect();
        let mut cache = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        cache.clear();
        cache.extend(list.into_iter().map(|t| (t.name.to_lowercase(), t)));
        Ok(names)
    }

    pub async fn describe(&self, table: &str, ov: Option<&TableOverride>) -> Result<TableInfo> {
        let stat = self
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&table.to_lowercase())
            .cloned();
        self.conn.describe(table, ov, stat.as_ref()).await
    }

    pub async fn plan_chunks(&self, info: &TableInfo, chunk_rows: u64) -> Result<Vec<ChunkRange>> {
        self.conn.plan_chunks(info, chunk_rows).await
    }

    pub async fn cursor_max(
        &self,
        info: &TableInfo,
        cursor: &str,
    ) -> Result<Option<crate::model::CursorValue>> {
        self.conn.cursor_max(info, cursor).await
    }

    pub async fn count(&self, table: &str) -> Result<u64> {
        self.conn.count(table).await
    }

    pub fn stream_chunk(
        &self,
        info: &TableInfo,
        range: ChunkRange,
        batch_rows: usize,
    ) -> mpsc::Receiver<Result<Piece>> {
        self.conn
            .stream_chunk(info, range, batch_rows, super::BATCH_BYTES)
    }
}

/// A table of the schema with the server's size estimates.
#[derive(Debug, Clone)]
pub struct TableStat {
    pub name: String,
    pub rows: u64,
    pub avg_row_bytes: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Mssql {
    config: Config,
    schema: String,
    /// `host:port/database` for messages: never the credentials.
    location: String,
}

const Q_TABLES_DMV: &str = "SELECT s.name AS schema_name, t.name AS table_name, \
CAST(SUM(ps.row_count) AS bigint) AS row_count, \
CAST(SUM(ps.used_page_count) * 8192.0 / NULLIF(SUM(ps.row_count), 0) AS float) AS avg_row_bytes \
FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id \
JOIN sys.dm_db_partition_stats ps ON ps.object_id = t.object_id AND ps.index_id IN (0, 1) \
WHERE s.name = @P1 GROUP BY s.name, t.name ORDER BY t.name";

const Q_TABLES_PARTITIONS: &str = "SELECT s.name AS schema_name, t.name AS table_name, \
CAST(SUM(p.rows) AS bigint) AS row_count, CAST(NULL AS float) AS avg_row_bytes \
FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id \
JOIN sys.partitions p ON p.object_id = t.object_id AND p.index_id IN (0, 1) \
WHERE s.name = @P1 GROUP BY s.name, t.name ORDER BY t.name";

const Q_COLUMNS: &str = "SELECT c.column_id, c.name, ty.name AS type_name, bt.name AS base_type, \
c.max_length, c.precision, c.scale, c.is_nullable, c.is_identity, c.is_computed \
FROM sys.columns c JOIN sys.types ty ON ty.user_type_id = c.user_type_id \
LEFT JOIN sys.types bt ON bt.user_type_id = ty.system_type_id \
WHERE c.object_id = OBJECT_ID(@P1) ORDER BY c.column_id";

const Q_PRIMARY_KEY: &str = "SELECT ic.key_ordinal, c.name FROM sys.indexes i \
JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id \
JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id \
WHERE i.object_id = OBJECT_ID(@P1) AND i.is_primary_key = 1 ORDER BY ic.key_ordinal";

/// `[name]` with `]` doubled, as T-SQL quotes identifiers.
pub fn quote(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// Server error numbers worth another attempt: deadlock victim, Azure throttling and failover.
const TRANSIENT: &[u32] = &[
    1205, 4221, 10928, 10929, 40197, 40501, 40613, 49918, 49919, 49920,
];

fn map_err(what: &str, e: tiberius::error::Error) -> Error {
    use tiberius::error::Error as T;
    match &e {
        T::Server(tok) => {
            let code = tok.code();
            let retryable = TRANSIENT.contains(&code) || tok.class() >= 20;
            let kind = match code {
                18456 | 4060 | 18452 => ErrorKind::Unavailable,
                _ if retryable => ErrorKind::Unavailable,
                _ => ErrorKind::Data,
            };
            let mut err = Error::new(
                kind,
                format!("{what}: SQL Server error {code}: {}", tok.message()),
            );
            err.retryable = retryable;
            err
        }
        T::Io { .. } | T::Tls(_) | T::Protocol(_) => Error::unavailable(format!(
            "{what}: connection to SQL Server failed or broke: {e}"
        )),
        _ => Error::unavailable(format!("{what}: {e}")),
    }
}

impl Mssql {
    pub fn new(s: &MssqlSettings) -> Result<Mssql> {
        let mut config = match &s.url {
            Some(url) => parse_url(url.expose())?,
            None => Config::new(),
        };
        if let Some(h) = &s.host {
            config.host(h);
        }
        if let Some(p) = s.port {
            config.port(p);
        }
        if let Some(d) = &s.database {
            config.database(d);
        }
        if s.user.is_some() || s.password.is_some() {
            let user = s.user.clone().unwrap_or_default();
            let pass = s
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            config.authentication(tiberius::AuthMethod::sql_server(user, pass));
        }
        config.encryption(match s.encrypt {
            Encrypt::Off => EncryptionLevel::NotSupported,
            Encrypt::On => EncryptionLevel::On,
            Encrypt::Required => EncryptionLevel::Required,
        });
        if s.trust_server_certificate {
            config.trust_cert();
        }
        config.application_name("dag");
        // Fewer, larger packets: less framing work per row on long reads.
        config.packet_size(32_767);
        config.command_timeout(Some(Duration::from_secs(s.command_timeout_secs)));
        config.handshake_timeout(Some(Duration::from_secs(s.connect_timeout_secs)));
        // Broken UTF-16 (lone surrogates) becomes U+FFFD instead of aborting a whole extract.
        config.lossy_utf16_decoding(true);
        let location = format!("{} (schema {})", config.get_addr(), s.schema);
        Ok(Mssql {
            config,
            schema: s.schema.clone(),
            location,
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.schema), quote(table))
    }

    async fn connect(&self) -> Result<Conn> {
        let mut config = self.config.clone();
        for _ in 0..3 {
            let addr = config.get_addr();
            let tcp =
                tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(addr.clone()))
                    .await
                    .map_err(|_| {
                        Error::unavailable(format!("SQL Server at {addr}: connection timed out"))
                    })?
                    .map_err(|e| {
                        Error::unavailable(format!("SQL Server at {addr}: cannot connect: {e}"))
                    })?;
            tcp.set_nodelay(true).ok();
            match Client::connect(config.clone(), tcp.compat_write()).await {
                Ok(c) => return Ok(c),
                // Azure SQL redirects to the node that holds the database.
                Err(tiberius::error::Error::Routing { host, port }) => {
                    config.host(&host);
                    config.port(port);
                }
                Err(e) => return Err(map_err(&format!("SQL Server at {addr}: login"), e)),
            }
        }
        Err(Error::unavailable(format!(
            "SQL Server at {}: too many redirects",
            self.config.get_addr()
        )))
    }

    /// Tables of the schema with size estimates.
    pub async fn tables(&self) -> Result<Vec<TableStat>> {
        let mut c = self.connect().await?;
        let rows = match query_all(&mut c, Q_TABLES_DMV, &[&self.schema]).await {
            Ok(r) => r,
            // No VIEW DATABASE STATE: sys.partitions has approximate counts and no sizes.
            Err(e) if e.code() == Some(300) || e.code() == Some(297) => {
                tracing::debug!("sys.dm_db_partition_stats refused, using sys.partitions: {e}");
                query_all(&mut c, Q_TABLES_PARTITIONS, &[&self.schema])
                    .await
                    .map_err(|e| map_err("listing tables", e))?
            }
            Err(e) => return Err(map_err("listing tables", e)),
        };
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let mut it = r.into_iter();
                let _schema = it.next();
                let name = text(it.next()?)?;
                let rows = int(it.next()?).unwrap_or(0).max(0) as u64;
                let avg = match it.next()? {
                    ColumnData::F64(v) => v,
                    ColumnData::F32(v) => v.map(f64::from),
                    _ => None,
                };
                Some(TableStat {
                    name,
                    rows,
                    avg_row_bytes: avg,
                })
            })
            .collect())
    }

    /// Columns, key and estimates of one table. `ov` may set the chunk key, exclude columns or
    /// read them through a CAST.
    pub async fn describe(
        &self,
        table: &str,
        ov: Option<&TableOverride>,
        stat: Option<&TableStat>,
    ) -> Result<TableInfo> {
        let key = ov.and_then(|o| o.chunk_key.as_deref());
        let mut c = self.connect().await?;
        let q = self.qualified(table);
        let cols = query_all(&mut c, Q_COLUMNS, &[&q])
            .await
            .map_err(|e| map_err(&format!("describing {q}"), e))?;
        if cols.is_empty() {
            return Err(Error::new(
                ErrorKind::Data,
                format!(
                    "table {q} does not exist in {} (or the login cannot see it)",
                    self.location
                ),
            ));
        }
        let pk_rows = query_all(&mut c, Q_PRIMARY_KEY, &[&q])
            .await
            .map_err(|e| map_err(&format!("reading the primary key of {q}"), e))?;
        let pk: Vec<String> = pk_rows
            .into_iter()
            .filter_map(|r| r.into_iter().nth(1).and_then(text))
            .collect();

        let mut columns = Vec::new();
        let mut read = Vec::new();
        let mut problems = Vec::new();
        for r in cols {
            let v: Vec<ColumnData<'static>> = r.into_iter().collect();
            let get_text = |i: usize| v.get(i).cloned().and_then(text);
            let get_int = |i: usize| v.get(i).cloned().and_then(int).unwrap_or(0);
            let get_bool = |i: usize| v.get(i).cloned().and_then(boolean).unwrap_or(false);
            let name = get_text(1).unwrap_or_default();
            let type_name = get_text(2).unwrap_or_default();
            let base = get_text(3).unwrap_or_else(|| type_name.clone());
            let decl = SqlDecl {
                base: base.to_ascii_lowercase(),
                max_length: get_int(4),
                precision: get_int(5) as u8,
                scale: get_int(6) as u8,
            };
            let nullable = get_bool(7);
            let (identity, computed) = (get_bool(8), get_bool(9));
            if ov.is_some_and(|o| {
                o.exclude_columns
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(&name))
            }) {
                continue;
            }
            let cast = ov.and_then(|o| {
                o.cast
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                    .map(|(_, t)| t.clone())
            });
            let mapped = match &cast {
                Some(t) => SqlDecl::parse(t)
                    .and_then(|d| map_type(&d, &quote(&name)).map(|(ty, _)| ty))
                    .map(|ty| {
                        (
                            ty,
                            format!("CAST({} AS {t}) AS {}", quote(&name), quote(&name)),
                        )
                    })
                    .ok_or_else(|| format!("cast type {t:?} is not one dag can read")),
                None => map_type(&decl, &quote(&name))
                    .ok_or_else(|| format!("type {type_name} is not supported")),
            };
            match mapped {
                Ok((ty, expr)) => {
                    columns.push(Column { name, ty, nullable });
                    read.push(ColumnOrigin {
                        expr,
                        declared: decl.display(),
                        identity,
                        computed,
                    });
                }
                Err(why) => problems.push(format!("column {name}: {why}")),
            }
        }
        if !problems.is_empty() {
            return Err(Error::new(
                ErrorKind::Data,
                format!(
                    "table {q}: {}; exclude the column (`[table.{table}] exclude_columns = [...]`) \
                     or read it as another type (`[table.{table}] cast = {{ COL = \"nvarchar(max)\" }}`)",
                    problems.join("; ")
                ),
            ));
        }
        // The chunk key: the override, else the primary key. A single integer column splits by
        // MIN/MAX ranges, anything else by row-value ranges.
        let wanted: Vec<String> = match key {
            Some(k) => match columns.iter().find(|c| c.name.eq_ignore_ascii_case(k)) {
                Some(col) => vec![col.name.clone()],
                None => {
                    return Err(Error::config(format!(
                        "table.{table}.chunk_key: {q} has no column {k:?}"
                    )));
                }
            },
            None => pk.clone(),
        };
        let positions: Option<Vec<usize>> = wanted
            .iter()
            .map(|k| columns.iter().position(|c| &c.name == k))
            .collect();
        let (key, chunk_key) = match positions.as_deref() {
            Some(&[i]) if is_int(columns[i].ty, &read[i].declared) => {
                (Some(wanted[0].clone()), Vec::new())
            }
            Some([_, ..]) => (None, wanted),
            // No key, or a key column excluded from the copy: one chunk.
            _ => (None, Vec::new()),
        };
        let stat = match stat {
            Some(s) => Some(s.clone()),
            None => self
                .tables()
                .await?
                .into_iter()
                .find(|t| t.name.eq_ignore_ascii_case(table)),
        };
        Ok(TableInfo {
            name: table.to_string(),
            columns,
            key,
            rows: stat.as_ref().map_or(0, |s| s.rows),
            chunk_key,
            primary_key: pk,
            avg_row_bytes: stat.and_then(|s| s.avg_row_bytes).map(|b| b.ceil() as u64),
            origin: read,
            partition: None,
            incremental: None,
        })
    }

    pub async fn plan_chunks(&self, info: &TableInfo, chunk_rows: u64) -> Result<Vec<ChunkRange>> {
        let q = self.qualified(&info.name);
        let mut c = self.connect().await?;
        if let Some(k) = &info.key {
            let sql = format!(
                "SELECT MIN({k}) AS lo, MAX({k}) AS hi, COUNT_BIG(*) AS n FROM {q}",
                k = quote(k)
            );
            let rows = query_all(&mut c, &sql, &[])
                .await
                .map_err(|e| map_err(&format!("planning chunks of {q}"), e))?;
            let mut it = rows
                .into_iter()
                .next()
                .map(|r| r.into_iter())
                .into_iter()
                .flatten();
            let (lo, hi, n) = (
                it.next().and_then(int),
                it.next().and_then(int),
                it.next().and_then(int).unwrap_or(0),
            );
            return Ok(match (lo, hi) {
                (Some(lo), Some(hi)) => ChunkRange::split_int(lo, hi, n as u64, chunk_rows),
                _ => vec![ChunkRange::whole()],
            });
        }
        if info.chunk_key.is_empty() || info.rows <= chunk_rows {
            return Ok(vec![ChunkRange::whole()]);
        }
        // Row-number boundaries: one scan of the key (an index), balanced whatever the skew.
        let keys = info
            .chunk_key
            .iter()
            .map(|k| quote(k))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {keys} FROM (SELECT {keys}, ROW_NUMBER() OVER (ORDER BY {keys}) AS rn FROM {q}) AS x \
             WHERE (x.rn - 1) % @P1 = 0 ORDER BY {keys}"
        );
        let mut query = Query::new(sql);
        query.bind(chunk_rows.max(1) as i64);
        let stream = query
            .query(&mut c)
            .await
            .map_err(|e| map_err(&format!("planning chunks of {q}"), e))?;
        let mut rows = stream.into_row_stream();
        let mut bounds: Vec<Vec<String>> = Vec::new();
        while let Some(r) = rows.next().await {
            let r = r.map_err(|e| map_err(&format!("planning chunks of {q}"), e))?;
            let mut vals = Vec::new();
            for cell in r.into_iter() {
                match key_text(&cell) {
                    Some(t) => vals.push(t),
                    None => {
                        // A key value we cannot send back (binary, NULL): one chunk is always right.
                        return Ok(vec![ChunkRange::whole()]);
                    }
                }
            }
            if bounds.last() != Some(&vals) {
                bounds.push(vals);
            }
        }
        // The first boundary is the smallest key: the first chunk is open below instead.
        let cuts: Vec<Vec<String>> = bounds.into_iter().skip(1).collect();
        let mut out = Vec::new();
        let mut lo: Option<Vec<String>> = None;
        for (i, cut) in cuts
            .into_iter()
            .chain(std::iter::once(Vec::new()))
            .enumerate()
        {
            let hi = (!cut.is_empty()).then_some(cut);
            out.push(ChunkRange {
                index: i as u32,
                lo: None,
                hi: None,
                lo_key: lo.clone(),
                hi_key: hi.clone(),
            });
            lo = hi;
        }
        Ok(out)
    }

    pub async fn count(&self, table: &str) -> Result<u64> {
        let q = self.qualified(table);
        let mut c = self.connect().await?;
        let rows = query_all(&mut c, &format!("SELECT COUNT_BIG(*) AS n FROM {q}"), &[])
            .await
            .map_err(|e| map_err(&format!("counting {q}"), e))?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .and_then(int)
            .unwrap_or(0) as u64)
    }

    /// The largest value of an incremental table's cursor column now (`None`: no row has one):
    /// the `high` end of the run's range. Sub-microsecond digits of a datetime2 round up, so the
    /// row holding the maximum is inside the range.
    pub async fn cursor_max(
        &self,
        info: &TableInfo,
        cursor: &str,
    ) -> Result<Option<crate::model::CursorValue>> {
        use crate::model::CursorValue as V;
        let q = self.qualified(&info.name);
        let mut c = self.connect().await?;
        let sql = format!("SELECT MAX({}) AS m FROM {q}", quote(cursor));
        let rows = query_all(&mut c, &sql, &[])
            .await
            .map_err(|e| map_err(&format!("reading the cursor {cursor} of {q}"), e))?;
        let Some(cell) = rows.into_iter().next().and_then(|r| r.into_iter().next()) else {
            return Ok(None);
        };
        let ceil = |(us, lost): (i64, bool)| us + i64::from(lost);
        Ok(match cell {
            ColumnData::U8(v) => v.map(|v| V::Int(i64::from(v))),
            ColumnData::I16(v) => v.map(|v| V::Int(i64::from(v))),
            ColumnData::I32(v) => v.map(|v| V::Int(i64::from(v))),
            ColumnData::I64(v) => v.map(V::Int),
            ColumnData::Binary(Some(b)) if b.len() == 8 => {
                let mut arr = [0u8; 8];
                arr.copy_from_slice(&b);
                Some(V::Int(i64::from_be_bytes(arr)))
            }
            ColumnData::Binary(None) => None,
            ColumnData::Date(v) => {
                v.map(|d| V::Date((i64::from(d.days()) - EPOCH_DAYS_FROM_0001) as i32))
            }
            ColumnData::DateTime(v) => {
                v.map(|d| V::Micros(datetime_micros(d.days(), d.seconds_fragments())))
            }
            ColumnData::SmallDateTime(v) => v.map(|d| {
                V::Micros(
                    (i64::from(d.days()) - EPOCH_DAYS_FROM_1900) * 86_400_000_000
                        + i64::from(d.seconds_fragments()) * 60_000_000,
                )
            }),
            ColumnData::DateTime2(v) => v.map(|dt| {
                let t = dt.time();
                V::Micros(ceil(datetime2_micros(
                    dt.date().days(),
                    t.increments(),
                    t.scale(),
                )))
            }),
            ColumnData::DateTimeOffset(v) => v.map(|dto| {
                let dt = dto.datetime2();
                let t = dt.time();
                V::Micros(ceil(datetime2_micros(
                    dt.date().days(),
                    t.increments(),
                    t.scale(),
                )))
            }),
            _ => {
                let ty = info
                    .columns
                    .iter()
                    .position(|c| c.name == cursor)
                    .and_then(|i| info.origin.get(i))
                    .map_or("of another type", |r| r.declared.as_str());
                return Err(Error::config(format!(
                    "table {}: cursor column {cursor} is {ty}, not an integer, rowversion, date \
                     or datetime column",
                    info.name
                )));
            }
        })
    }

    /// The statement and parameters that read one chunk.
    pub fn chunk_query(&self, info: &TableInfo, range: &ChunkRange) -> (String, Vec<Param>) {
        let items: Vec<&str> = info.origin.iter().map(|r| r.expr.as_str()).collect();
        let mut sql = format!(
            "SELECT {} FROM {}",
            items.join(", "),
            self.qualified(&info.name)
        );
        let mut params = Vec::new();
        let mut conds = Vec::new();
        let mut order = Vec::new();
        if let Some(k) = &info.key {
            let k = quote(k);
            if let Some(lo) = range.lo {
                params.push(Param::Int(lo));
                conds.push(format!("{k} >= @P{}", params.len()));
            }
            if let Some(hi) = range.hi {
                params.push(Param::Int(hi));
                let upper = format!("{k} < @P{}", params.len());
                // The first chunk also takes NULL keys (a chunk_key override may be nullable).
                conds.push(if range.index == 0 {
                    format!("({k} IS NULL OR {upper})")
                } else {
                    upper
                });
            }
            order.push(k);
        } else if !info.chunk_key.is_empty() {
            let types: Vec<String> = info
                .chunk_key
                .iter()
                .map(|k| {
                    let i = info.columns.iter().position(|c| &c.name == k);
                    i.and_then(|i| info.origin.get(i))
                        .map_or("nvarchar(max)".into(), |r| r.declared.clone())
                })
                .collect();
            for (bound, lower) in [(&range.lo_key, true), (&range.hi_key, false)] {
                if let Some(vals) = bound {
                    let mut refs = Vec::new();
                    for v in vals {
                        params.push(Param::Text(v.clone()));
                        refs.push(params.len());
                    }
                    conds.push(row_compare(&info.chunk_key, &types, &refs, lower));
                }
            }
            order.extend(info.chunk_key.iter().map(|k| quote(k)));
        }
        if let Some(cond) = cursor_condition(info, &mut params) {
            conds.push(cond);
        }
        if !conds.is_empty() {
            sql.push_str(&format!(" WHERE {}", conds.join(" AND ")));
        }
        if !order.is_empty() {
            sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
        }
        (sql, params)
    }

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

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// The condition that limits an incremental table's read to its run's cursor range
/// (`info.incremental`): `low < c <= high` for an append, `c <= high OR c IS NULL` for a full
/// refresh (rows written after `high` was taken are left for the next run either way).
/// Dates and times are sent as text cast to the column's own type, so the comparison happens
/// at the column's precision.
fn cursor_condition(info: &TableInfo, params: &mut Vec<Param>) -> Option<String> {
    use crate::model::CursorValue as V;
    let inc = info.incremental.as_ref()?;
    let i = info.columns.iter().position(|c| c.name == inc.cursor);
    let sql_type = i
        .and_then(|i| info.origin.get(i))
        .map_or("datetime2(7)".to_string(), |r| r.declared.clone());
    let col = quote(&inc.cursor);
    let mut bind = |v: V| -> String {
        match v {
            V::Int(n) => {
                params.push(Param::Int(n));
                format!("@P{}", params.len())
            }
            V::Date(_) | V::Micros(_) => {
                let text = match v {
                    V::Micros(us) => match chrono::DateTime::from_timestamp_micros(us) {
                        Some(t) if sql_type.starts_with("datetimeoffset") => {
                            t.format("%Y-%m-%d %H:%M:%S%.6f +00:00").to_string()
                        }
                        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                        None => us.to_string(),
                    },
                    other => other.to_string(),
                };
                params.push(Param::Text(text));
                format!("CAST(@P{} AS {sql_type})", params.len())
            }
        }
    };
    Some(match (inc.append, inc.low, inc.high) {
        (true, Some(lo), Some(hi)) => {
            let (lo, hi) = (bind(lo), bind(hi));
            format!("{col} > {lo} AND {col} <= {hi}")
        }
        (true, None, Some(hi)) => format!("{col} <= {}", bind(hi)),
        // Nothing to read: the extract plans no chunk in that case.
        (true, _, None) => format!("{col} IS NULL AND {col} IS NOT NULL"),
        (false, _, Some(hi)) => format!("({col} <= {} OR {col} IS NULL)", bind(hi)),
        (false, _, None) => format!("{col} IS NULL"),
    })
}

/// `(k1, k2, ...) >= (@Pa, @Pb, ...)` (or `<` for an upper bound) expanded for T-SQL, which has
/// no row-value comparison: `k1 > a OR (k1 = a AND (k2 > b OR (k2 = b AND k3 >= c)))`.
fn row_compare(keys: &[String], types: &[String], refs: &[usize], lower: bool) -> String {
    let last = keys.len() - 1;
    let mut expr = String::new();
    for i in (0..keys.len()).rev() {
        let k = quote(&keys[i]);
        let p = format!("CAST(@P{} AS {})", refs[i], types[i]);
        let strict = if lower { ">" } else { "<" };
        expr = if i == last {
            let op = if lower { ">=" } else { "<" };
            format!("{k} {op} {p}")
        } else {
            format!("({k} {strict} {p} OR ({k} = {p} AND {expr}))")
        };
    }
    expr
}

fn is_int(ty: ColType, declared: &str) -> bool {
    matches!(ty, ColType::Int32 | ColType::Int64)
        && matches!(declared, "tinyint" | "smallint" | "int" | "bigint")
}

/// A column's declared type as `sys.columns` describes it.
#[derive(Debug, Clone)]
struct SqlDecl {
    base: String,
    /// Bytes; -1 for (max).
    max_length: i64,
    precision: u8,
    scale: u8,
}

impl SqlDecl {
    /// Parses a type as written in a `cast` override: `nvarchar(max)`, `decimal(18,2)`, `int`.
    fn parse(t: &str) -> Option<SqlDecl> {
        let t = t.trim().to_ascii_lowercase();
        let (base, args) = match t.find('(') {
            Some(i) => (
                t[..i].trim().to_string(),
                Some(t[i + 1..].trim_end_matches(')').to_string()),
            ),
            None => (t.clone(), None),
        };
        let nums: Vec<&str> = args
            .as_deref()
            .map(|a| a.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let first = nums.first().copied();
        let mut d = SqlDecl {
            base: base.clone(),
            max_length: 0,
            precision: 0,
            scale: 0,
        };
        match base.as_str() {
            "decimal" | "numeric" => {
                d.precision = first.map_or(Some(18), |p| p.parse().ok())?;
                d.scale = nums.get(1).map_or(Some(0), |s| s.parse().ok())?;
            }
            "varchar" | "char" | "varbinary" | "binary" => {
                d.max_length = match first {
                    Some("max") => -1,
                    Some(n) => n.parse().ok()?,
                    None => 1,
                };
            }
            "nvarchar" | "nchar" => {
                d.max_length = match first {
                    Some("max") => -1,
                    Some(n) => n.parse::<i64>().ok()? * 2,
                    None => 2,
                };
            }
            "datetime2" | "datetimeoffset" | "time" => {
                d.scale = first.map_or(Some(7), |s| s.parse().ok())?;
            }
            _ => {}
        }
        Some(d)
    }

    /// The type as one would declare it (`nvarchar(50)`, `decimal(38,10)`, `datetime2(7)`).
    fn display(&self) -> String {
        let len = |bytes: i64, per: i64| {
            if bytes < 0 {
                "max".to_string()
            } else {
                (bytes / per).to_string()
            }
        };
        match self.base.as_str() {
            "decimal" | "numeric" => format!("{}({},{})", self.base, self.precision, self.scale),
            "varchar" | "char" | "varbinary" | "binary" => {
                format!("{}({})", self.base, len(self.max_length, 1))
            }
            "nvarchar" | "nchar" => format!("{}({})", self.base, len(self.max_length, 2)),
            "datetime2" | "datetimeoffset" | "time" => format!("{}({})", self.base, self.scale),
            other => other.to_string(),
        }
    }
}

/// The mapping table (`docs/reference/type-mapping.md`): the logical type and how to select
/// the column so tiberius decodes it exactly. `None`: not supported.
fn map_type(d: &SqlDecl, col: &str) -> Option<(ColType, String)> {
    let plain = || col.to_string();
    let cast = |t: &str| format!("CAST({col} AS {t}) AS {col}");
    Some(match d.base.as_str() {
        "bit" => (ColType::Bool, plain()),
        "tinyint" | "smallint" | "int" => (ColType::Int32, plain()),
        "bigint" => (ColType::Int64, plain()),
        "decimal" | "numeric" => {
            if !(1..=38).contains(&d.precision) || d.scale > d.precision {
                return None;
            }
            (
                ColType::Decimal {
                    precision: d.precision,
                    scale: d.scale as i8,
                },
                plain(),
            )
        }
        "money" => (
            ColType::Decimal {
                precision: 19,
                scale: 4,
            },
            cast("decimal(19,4)"),
        ),
        "smallmoney" => (
            ColType::Decimal {
                precision: 10,
                scale: 4,
            },
            cast("decimal(10,4)"),
        ),
        "real" => (ColType::Float32, plain()),
        "float" => (ColType::Float64, plain()),
        "date" => (ColType::Date, plain()),
        // Kept as text with all its digits: lossless, and StarRocks cannot read Iceberg `time`.
        "time" => (ColType::String, plain()),
        "datetime" | "smalldatetime" | "datetime2" => (ColType::Timestamp, plain()),
        "datetimeoffset" => (ColType::TimestampTz, plain()),
        "nvarchar" | "nchar" => (ColType::String, plain()),
        "varchar" | "char" => {
            // Up to 4000 characters fit nvarchar(n); longer ones need (max).
            let n = if d.max_length < 0 || d.max_length > 4000 {
                "max".to_string()
            } else {
                d.max_length.max(1).to_string()
            };
            (ColType::String, cast(&format!("nvarchar({n})")))
        }
        "text" | "ntext" | "xml" => (ColType::String, cast("nvarchar(max)")),
        "sql_variant" => (ColType::String, cast("nvarchar(4000)")),
        "hierarchyid" => (ColType::String, cast("nvarchar(4000)")),
        "geography" | "geometry" => (ColType::String, format!("{col}.STAsText() AS {col}")),
        "uniqueidentifier" => (ColType::String, plain()),
        "binary" | "varbinary" => (ColType::Binary, plain()),
        "image" => (ColType::Binary, cast("varbinary(max)")),
        "timestamp" | "rowversion" => (ColType::Int64, plain()),
        _ => return None,
    })
}

async fn query_all(
    c: &mut Conn,
    sql: &str,
    params: &[&str],
) -> std::result::Result<Vec<tiberius::Row>, tiberius::error::Error> {
    let mut q = Query::new(sql.to_string());
    for p in params {
        q.bind(p.to_string());
    }
    let stream = q.query(c).await?;
    let mut rows = stream.into_row_stream();
    let mut out = Vec::new();
    while let Some(r) = rows.next().await {
        out.push(r?);
    }
    Ok(out)
}

fn text(c: ColumnData<'static>) -> Option<String> {
    match c {
        ColumnData::String(s) => s.map(|s| s.into_owned()),
        _ => None,
    }
}

fn int(c: ColumnData<'static>) -> Option<i64> {
    match c {
        ColumnData::U8(v) => v.map(i64::from),
        ColumnData::I16(v) => v.map(i64::from),
        ColumnData::I32(v) => v.map(i64::from),
        ColumnData::I64(v) => v,
        _ => None,
    }
}

fn boolean(c: ColumnData<'static>) -> Option<bool> {
    match c {
        ColumnData::Bit(v) => v,
        other => int(other).map(|i| i != 0),
    }
}

/// Days from 0001-01-01 to 1970-01-01.
const EPOCH_DAYS_FROM_0001: i64 = 719_162;
/// Days from 1900-01-01 to 1970-01-01.
const EPOCH_DAYS_FROM_1900: i64 = 25_567;

/// A key value as text that `CAST(@P AS <its type>)` turns back into the same value.
fn key_text(c: &ColumnData<'_>) -> Option<String> {
    Some(match c {
        ColumnData::U8(Some(v)) => v.to_string(),
        ColumnData::I16(Some(v)) => v.to_string(),
        ColumnData::I32(Some(v)) => v.to_string(),
        ColumnData::I64(Some(v)) => v.to_string(),
        ColumnData::Bit(Some(v)) => u8::from(*v).to_string(),
        ColumnData::String(Some(s)) => s.to_string(),
        ColumnData::Guid(Some(g)) => g.to_string().to_uppercase(),
        ColumnData::Numeric(Some(n)) => decimal_text(n.value(), n.scale() as i8),
        ColumnData::Date(Some(d)) => date_text(d.days() as i64 - EPOCH_DAYS_FROM_0001),
        ColumnData::DateTime2(Some(dt)) => {
            let t = dt.time();
            format!(
                "{}T{}",
                date_text(dt.date().days() as i64 - EPOCH_DAYS_FROM_0001),
                time_text(t.increments(), t.scale())
            )
        }
        ColumnData::DateTime(Some(dt)) => {
            let us = datetime_micros(dt.days(), dt.seconds_fragments());
            let day = us.div_euclid(86_400_000_000);
            let rem = us.rem_euclid(86_400_000_000) as u64;
            format!("{}T{}", date_text(day), time_text(rem / 1000, 3))
        }
        _ => return None,
    })
}

fn date_text(days_since_epoch: i64) -> String {
    let (y, m, d) = civil_from_days(days_since_epoch);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:MM:SS[.fff…]` from units of 10^-scale seconds, keeping every digit.
fn time_text(increments: u64, scale: u8) -> String {
    let unit = 10u64.pow(scale as u32);
    let secs = increments / unit;
    let frac = increments % unit;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if scale == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!(
            "{h:02}:{m:02}:{s:02}.{frac:0width$}",
            width = scale as usize
        )
    }
}

/// `datetime` ticks (1/300 s) as SQL Server renders them: rounded to the millisecond.
fn datetime_micros(days: i32, ticks: u32) -> i64 {
    let ms = (i64::from(ticks) * 10 + 1) / 3;
    (i64::from(days) - EPOCH_DAYS_FROM_1900) * 86_400_000_000 + ms * 1000
}

/// Microseconds since the epoch of a datetime2, and whether digits below 1 µs were dropped.
fn datetime2_micros(days_0001: u32, increments: u64, scale: u8) -> (i64, bool) {
    let ns100 = increments * 10u64.pow(7 - u32::from(scale.min(7)));
    let lossy = !ns100.is_multiple_of(10);
    let day = i64::from(days_0001) - EPOCH_DAYS_FROM_0001;
    (day * 86_400_000_000 + (ns100 / 10) as i64, lossy)
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

/// Appends one cell; returns the bytes it adds to the batch. Only the pairs the mapping table
/// produces are accepted, so a server sending something else fails loudly, not silently.
fn append(
    col: &mut Col,
    cell: ColumnData<'static>,
    lossy: &mut u64,
) -> std::result::Result<usize, String> {
    use ColumnData as D;
    let unexpected = |cell: &ColumnData<'_>| format!("unexpected value {cell:?}");
    Ok(match (col, cell) {
        (Col::Bool(b), D::Bit(v)) => {
            b.append_option(v);
            1
        }
        (Col::I32(b), D::U8(v)) => {
            b.append_option(v.map(i32::from));
            4
        }
        (Col::I32(b), D::I16(v)) => {
            b.append_option(v.map(i32::from));
            4
        }
        (Col::I32(b), D::I32(v)) => {
            b.append_option(v);
            4
        }
        (Col::I64(b), D::I64(v)) => {
            b.append_option(v);
            8
        }
        (Col::I64(b), D::I32(v)) => {
            b.append_option(v.map(i64::from));
            8
        }
        // rowversion: 8 bytes, big-endian.
        (Col::I64(b), D::Binary(v)) => {
            match v {
                None => b.append_null(),
                Some(bytes) => {
                    let arr: [u8; 8] = bytes
                        .as_ref()
                        .try_into()
                        .map_err(|_| format!("rowversion of {} bytes", bytes.len()))?;
                    b.append_value(i64::from_be_bytes(arr));
                }
            }
            8
        }
        (Col::F32(b), D::F32(v)) => {
            b.append_option(v);
            4
        }
        (Col::F64(b), D::F64(v)) => {
            b.append_option(v);
            8
        }
        (Col::F64(b), D::F32(v)) => {
            b.append_option(v.map(f64::from));
            8
        }
        (Col::Dec(b, p, s), D::Numeric(v)) => {
            match v {
                None => b.append_null(),
                Some(n) => {
                    let want = *s as u8;
                    let mut value = n.value();
                    if n.scale() > want {
                        return Err(format!(
                            "decimal with scale {} for a column of scale {want}",
                            n.scale()
                        ));
                    }
                    value *= 10i128.pow(u32::from(want - n.scale()));
                    if value.unsigned_abs() >= 10u128.pow(u32::from(*p)) {
                        return Err(format!(
                            "value {} does not fit decimal({p},{s})",
                            decimal_text(n.value(), n.scale() as i8)
                        ));
                    }
                    b.append_value(value);
                }
            }
            16
        }
        (Col::Date(b), D::Date(v)) => {
            b.append_option(v.map(|d| (i64::from(d.days()) - EPOCH_DAYS_FROM_0001) as i32));
            4
        }
        (Col::Ts(b), D::DateTime2(v)) => {
            match v {
                None => b.append_null(),
                Some(dt) => {
                    let t = dt.time();
                    let (us, lost) = datetime2_micros(dt.date().days(), t.increments(), t.scale());
                    *lossy += u64::from(lost);
                    b.append_value(us);
                }
            }
            8
        }
        (Col::Ts(b), D::DateTime(v)) => {
            b.append_option(v.map(|d| datetime_micros(d.days(), d.seconds_fragments())));
            8
        }
        (Col::Ts(b), D::SmallDateTime(v)) => {
            b.append_option(v.map(|d| {
                (i64::from(d.days()) - EPOCH_DAYS_FROM_1900) * 86_400_000_000
                    + i64::from(d.seconds_fragments()) * 60_000_000
            }));
            8
        }
        // The wire carries the UTC instant; the offset is only how it was written.
        (Col::Ts(b), D::DateTimeOffset(v)) => {
            match v {
                None => b.append_null(),
                Some(dto) => {
                    let dt = dto.datetime2();
                    let t = dt.time();
                    let (us, lost) = datetime2_micros(dt.date().days(), t.increments(), t.scale());
                    *lossy += u64::from(lost);
                    b.append_value(us);
                }
            }
            8
        }
        (Col::Str(b), D::String(v)) => match v {
            None => {
                b.append_null();
                0
            }
            Some(s) => {
                b.append_value(&s);
                s.len()
            }
        },
        (Col::Str(b), D::Guid(v)) => {
            match v {
                None => b.append_null(),
                Some(g) => b.append_value(
                    g.hyphenated()
                        .encode_upper(&mut tiberius::Uuid::encode_buffer()),
                ),
            }
            36
        }
        (Col::Str(b), D::Time(v)) => {
            match v {
                None => b.append_null(),
                Some(t) => b.append_value(time_text(t.increments(), t.scale())),
            }
            16
        }
        (Col::Str(b), D::Xml(v)) => match v {
            None => {
                b.append_null();
                0
            }
            Some(x) => {
                let s = x.to_string();
                b.append_value(&s);
                s.len()
            }
        },
        (Col::Bin(b), D::Binary(v)) => match v {
            None => {
                b.append_null();
                0
            }
            Some(x) => {
                b.append_value(&x);
                x.len()
            }
        },
        (_, cell) => return Err(unexpected(&cell)),
    })
}

/// Builds a tiberius configuration from `url`: an ADO.NET string (`Server=...;...`), a JDBC one
/// (`jdbc:sqlserver://...`) or a URL (`mssql://user:password@host:port/database`).
fn parse_url(url: &str) -> Result<Config> {
    let bad = |why: String| Error::config(format!("source.url: {why}"));
    if url.starts_with("jdbc:") {
        return Config::from_jdbc_string(url).map_err(|e| {
            bad(format!(
                "not a valid JDBC connection string: {}",
                redact_err(&e)
            ))
        });
    }
    if url.starts_with("mssql://") || url.starts_with("sqlserver://") {
        // url's errors name what is wrong, never the text (which holds the password).
        let u = url::Url::parse(url).map_err(|e| bad(format!("not a valid URL: {e}")))?;
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host".into()))?;
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let mut config = Config::new();
        config.host(host);
        if let Some(p) = u.port() {
            config.port(p);
        }
        let db = u.path().trim_start_matches('/');
        if !db.is_empty() {
            config.database(decode(db));
        }
        if !u.username().is_empty() {
            config.authentication(tiberius::AuthMethod::sql_server(
                decode(u.username()),
                decode(u.password().unwrap_or("")),
            ));
        }
        return Ok(config);
    }
    Config::from_ado_string(url).map_err(|e| {
        bad(format!(
            "not a valid ADO.NET connection string: {}",
            redact_err(&e)
        ))
    })
}

/// tiberius' parse errors may quote the string they failed on; never show it.
fn redact_err(e: &tiberius::error::Error) -> String {
    match e {
        tiberius::error::Error::Conversion(_) => "a value could not be converted".into(),
        _ => "it could not be parsed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_ranges_compare_at_the_columns_own_type() {
        use crate::model::{CursorValue as V, Incremental};
        let mut info = TableInfo::new(
            "T",
            vec![
                Column {
                    name: "ID".into(),
                    ty: ColType::Int64,
                    nullable: false,
                },
                Column {
                    name: "UPD".into(),
                    ty: ColType::Timestamp,
                    nullable: true,
                },
            ],
            None,
            0,
        );
        info.origin = ["bigint", "datetime2(3)"]
            .iter()
            .map(|t| ColumnOrigin {
                expr: String::new(),
                declared: t.to_string(),
                identity: false,
                computed: false,
            })
            .collect();
        let range = |cursor: &str, low, high, append| {
            let mut i = info.clone();
            i.incremental = Some(Incremental {
                cursor: cursor.into(),
                low,
                high,
                append,
            });
            let mut params = Vec::new();
            let sql = cursor_condition(&i, &mut params).unwrap();
            let shown: Vec<String> = params
                .iter()
                .map(|p| match p {
                    Param::Int(n) => n.to_string(),
                    Param::Text(t) => t.clone(),
                })
                .collect();
            (sql, shown)
        };
        // 2026-01-01T00:00:00.5 as microseconds since the epoch.
        let t = 1_767_225_600_500_000;
        assert_eq!(
            range("UPD", Some(V::Micros(t)), Some(V::Micros(t + 1)), true),
            (
                "[UPD] > CAST(@P1 AS datetime2(3)) AND [UPD] <= CAST(@P2 AS datetime2(3))".into(),
                vec![
                    "2026-01-01T00:00:00.500000".into(),
                    "2026-01-01T00:00:00.500001".into()
                ]
            )
        );
        assert_eq!(
            range("ID", None, Some(V::Int(9)), false),
            ("([ID] <= @P1 OR [ID] IS NULL)".into(), vec!["9".into()])
        );
        assert_eq!(
            range("ID", None, Some(V::Int(9)), true),
            ("[ID] <= @P1".into(), vec!["9".into()])
        );
        assert_eq!(range("ID", None, None, false).0, "[ID] IS NULL");
    }

    #[test]
    fn row_values_expand_into_and_or() {
        let keys = vec!["A".to_string(), "B".to_string()];
        let types = vec!["nvarchar(20)".to_string(), "int".to_string()];
        assert_eq!(
            row_compare(&keys, &types, &[1, 2], true),
            "([A] > CAST(@P1 AS nvarchar(20)) OR ([A] = CAST(@P1 AS nvarchar(20)) AND [B] >= CAST(@P2 AS int)))"
        );
        assert_eq!(
            row_compare(&keys[..1], &types[..1], &[3], false),
            "[A] < CAST(@P3 AS nvarchar(20))"
        );
    }

    #[test]
    fn date_and_time_arithmetic_hits_the_edges() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(-EPOCH_DAYS_FROM_0001), "0001-01-01");
        assert_eq!(date_text(2_932_896), "9999-12-31");
        assert_eq!(time_text(863_999_999_999, 7), "23:59:59.9999999");
        assert_eq!(time_text(0, 0), "00:00:00");
        // 9999-12-31 23:59:59.9999999 loses its last digit and says so.
        let (us, lost) = datetime2_micros(3_652_058, 863_999_999_999, 7);
        assert!(lost);
        assert_eq!(us, (2_932_896i64 + 1) * 86_400_000_000 - 1);
        let (_, lost) = datetime2_micros(0, 10, 7);
        assert!(!lost);
        // datetime tick 299 of a second is .997 as SQL Server shows it.
        assert_eq!(datetime_micros(EPOCH_DAYS_FROM_1900 as i32, 299), 997_000);
        assert_eq!(datetime_micros(EPOCH_DAYS_FROM_1900 as i32, 1), 3_000);
        assert_eq!(datetime_micros(EPOCH_DAYS_FROM_1900 as i32, 2), 7_000);
    }

    #[test]
    fn decimals_keep_every_digit() {
        let max38 = 10i128.pow(38) - 1;
        assert_eq!(
            decimal_text(max38, 10),
            "9999999999999999999999999999.9999999999"
        );
        assert_eq!(decimal_text(-5, 4), "-0.0005");
        assert_eq!(
            decimal_text(-max38, 0),
            "-99999999999999999999999999999999999999"
        );
    }

    #[test]
    fn types_map_as_the_table_says() {
        let d = |t: &str| SqlDecl::parse(t).unwrap();
        assert_eq!(
            map_type(&d("money"), "[M]").unwrap().1,
            "CAST([M] AS decimal(19,4)) AS [M]"
        );
        assert_eq!(
            map_type(&d("varchar(50)"), "[V]").unwrap().1,
            "CAST([V] AS nvarchar(50)) AS [V]"
        );
        assert_eq!(
            map_type(&d("varchar(max)"), "[V]").unwrap().1,
            "CAST([V] AS nvarchar(max)) AS [V]"
        );
        assert_eq!(
            map_type(&d("geography"), "[G]").unwrap().1,
            "[G].STAsText() AS [G]"
        );
        assert_eq!(
            map_type(&d("datetimeoffset(7)"), "[T]").unwrap().0,
            ColType::TimestampTz
        );
        assert!(map_type(&d("vector(3)"), "[X]").is_none());
        assert_eq!(d("nvarchar(50)").display(), "nvarchar(50)");
        assert_eq!(d("decimal(38, 10)").display(), "decimal(38,10)");
    }

    #[test]
    fn urls_of_every_form_parse_and_errors_hide_the_password() {
        let c = parse_url("mssql://sa:p%40ss@db.example:1444/WorldZone").unwrap();
        assert_eq!(c.get_addr(), "db.example:1444");
        let c =
            parse_url("Server=tcp:db,1433;Database=WorldZone;User Id=sa;Password=secret").unwrap();
        assert_eq!(c.get_addr(), "db:1433");
        let e = parse_url("mssql://sa:secret@db:notaport/x").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
