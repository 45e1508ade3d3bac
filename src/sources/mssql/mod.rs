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
//!
//! Layout: `connect` (connection strings, login, retryable errors), `discover` (tables, columns,
//! keys, counts), `types` (the type mapping), `chunks` (chunk plans and the statement of one
//! chunk), `read` (the streamed read of a chunk into batches), `wire` (tiberius cells into Arrow
//! builders and key text).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tiberius::{Config, EncryptionLevel};
use tokio::sync::mpsc;

use super::Piece;
use crate::config::{Encrypt, MssqlSettings, TableOverride};
use crate::error::Result;
use crate::model::{ChunkRange, TableInfo};
use connect::parse_url;

pub use chunks::Param;

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

    pub async fn day_span(&self, info: &TableInfo, column: &str) -> Result<Option<(i64, i64)>> {
        self.conn.day_span(info, column).await
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

/// `[name]` with `]` doubled, as T-SQL quotes identifiers.
pub fn quote(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
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
}

mod chunks;
mod connect;
mod discover;
mod read;
mod types;
mod wire;

#[cfg(test)]
mod tests;
