//! Connecting to SQL Server: the connection string forms, login with Azure's redirects, and
//! which server errors are worth another attempt.

use std::time::Duration;

use futures::StreamExt;
use percent_encoding::percent_decode_str;
use tiberius::{Client, Config, Query};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::Mssql;
use crate::error::{Error, ErrorKind, Result};

pub(super) type Conn = Client<Compat<TcpStream>>;

/// Server error numbers worth another attempt: deadlock victim, Azure throttling and failover.
const TRANSIENT: &[u32] = &[
    1205, 4221, 10928, 10929, 40197, 40501, 40613, 49918, 49919, 49920,
];

pub(super) fn map_err(what: &str, e: tiberius::error::Error) -> Error {
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
    pub(super) async fn connect(&self) -> Result<Conn> {
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
}

pub(super) async fn query_all(
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

/// Builds a tiberius configuration from `url`: an ADO.NET string (`Server=...;...`), a JDBC one
/// (`jdbc:sqlserver://...`) or a URL (`mssql://user:password@host:port/database`).
pub(super) fn parse_url(url: &str) -> Result<Config> {
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
