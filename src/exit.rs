//! The process's exit codes, and the one place that maps an outcome to them.
//!
//! Scripts and schedulers act on the code alone, so it depends only on what happened (an error's
//! kind, a stop's signal), never on the wording of a message.

use crate::error::{Error, ErrorKind};

/// Every task succeeded.
pub const OK: u8 = 0;
/// Some task failed (other tables still finished); `dag retry` resumes.
pub const FAILED: u8 = 1;
/// A usage or configuration error, or the workflow was held by another process: nothing ran.
pub const USAGE: u8 = 2;
/// A run stopped by SIGINT (128 + 2, as shells report it); `dag run` resumes it.
pub const SIGINT: u8 = 130;
/// A run stopped by SIGTERM (128 + 15); `dag run` resumes it.
pub const SIGTERM: u8 = 143;

/// The exit code of a command that ended with `e`.
pub fn of_error(e: &Error) -> u8 {
    match e.kind {
        ErrorKind::Config | ErrorKind::Held => USAGE,
        ErrorKind::Unavailable
        | ErrorKind::Data
        | ErrorKind::Mismatch
        | ErrorKind::State
        | ErrorKind::Injected
        | ErrorKind::Internal => FAILED,
    }
}

/// The exit code of a run stopped by `signal` (a signal's name, as the stop records it).
pub fn of_stop(signal: &str) -> u8 {
    match signal {
        "SIGINT" => SIGINT,
        _ => SIGTERM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_kind_not_the_message() {
        assert_eq!(of_error(&Error::config("x")), USAGE);
        assert_eq!(of_error(&Error::held("already running")), USAGE);
        assert_eq!(of_error(&Error::state("already running")), FAILED);
        assert_eq!(of_error(&Error::unavailable("down")), FAILED);
        assert_eq!(of_stop("SIGINT"), SIGINT);
        assert_eq!(of_stop("SIGTERM"), SIGTERM);
    }
}
