//! The library's one error type.
//!
//! Every failure carries where it happened (table, task, column, value) and whether trying again
//! can help, because the scheduler retries only retryable errors and the status output must tell
//! a data engineer what failed and what to do. The error of the library below (I/O, sled,
//! SQLite, iceberg, Arrow, Parquet, the catalog database) is kept as the cause, so
//! `std::error::Error::source` walks down to it.

use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The workflow file or command line is wrong (exit code 2).
    Config,
    /// A source, lake or target could not be reached or answered with a transient failure.
    Unavailable,
    /// The data cannot be moved as is (unsupported type, out-of-range value, ...).
    Data,
    /// Counts or fingerprints differ between source, lake and target.
    Mismatch,
    /// State store problems.
    State,
    /// The workflow is held by another process (its lock): nothing was done (exit code 2).
    Held,
    /// A fault injected by a test.
    Injected,
    /// Anything else.
    Internal,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// Outermost first: "table AGENTSVES", "task extract", ...
    pub context: Vec<String>,
    pub retryable: bool,
    /// The lower-level error this one was made from, when there is one.
    pub cause: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let retryable = kind == ErrorKind::Unavailable;
        Error {
            kind,
            message: message.into(),
            context: Vec::new(),
            retryable,
            cause: None,
        }
    }

    /// Keeps `cause` as the error this one was made from ([`std::error::Error::source`]).
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }
    pub fn data(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Data, message)
    }
    pub fn state(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::State, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unavailable, message)
    }
    pub fn held(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Held, message)
    }

    pub fn retryable(mut self, yes: bool) -> Self {
        self.retryable = yes;
        self
    }

    /// Adds an outer context ("table X") in front of the existing ones.
    pub fn context(mut self, ctx: impl Into<String>) -> Self {
        self.context.insert(0, ctx.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.context {
            write!(f, "{c}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Adds context to any error convertible into [`Error`].
pub trait Context<T> {
    fn ctx(self, ctx: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn ctx(self, ctx: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().context(ctx()))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let retryable = matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::Interrupted
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionRefused
        );
        Error::new(ErrorKind::Internal, e.to_string())
            .retryable(retryable)
            .caused_by(e)
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::state(format!("state store: {e}")).caused_by(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::state(format!("state record: {e}")).caused_by(e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        Error::new(
            if busy {
                ErrorKind::Unavailable
            } else {
                ErrorKind::Internal
            },
            format!("sqlite: {e}"),
        )
        .caused_by(e)
    }
}

impl From<iceberg::Error> for Error {
    fn from(e: iceberg::Error) -> Self {
        let retryable = e.retryable();
        Error::new(ErrorKind::Internal, format!("iceberg: {e}"))
            .retryable(retryable)
            .caused_by(e)
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::internal(format!("arrow: {e}")).caused_by(e)
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::internal(format!("parquet: {e}")).caused_by(e)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let retryable = matches!(
            e,
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
        ) || e.to_string().contains("locked");
        Error::new(ErrorKind::Internal, format!("catalog database: {e}"))
            .retryable(retryable)
            .caused_by(e)
    }
}
