//! Request bodies that are generated while they are sent.
//!
//! A Stream Load request is about `request_bytes` (100 MB by default) so that StarRocks makes few,
//! large transactions; holding such a body in memory, one being sent and one being prepared, is
//! what made a StarRocks load the largest process in a run. A [`RequestBody`] instead knows its
//! exact length up front (HTTP needs `Content-Length`: the reference documents no chunked Stream
//! Load) and produces its bytes in small chunks each time it is sent, identically every time, so
//! a retry, a 307 redirect to a BE or a resumed load re-sends the same bytes without having kept
//! them.

use std::borrow::Cow;

use futures::stream::{self, BoxStream};

use crate::error::Result;

/// A body of known length whose bytes can be produced again for every send.
pub trait RequestBody: Send + Sync {
    /// Its exact length in bytes; the chunks of [`RequestBody::chunks`] add up to it.
    fn len(&self) -> u64;

    /// Whether the body is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its bytes from the start, in order. An error ends the send (the request is abandoned
    /// with its connection, so the server never sees a short body as complete).
    fn chunks(&self) -> BoxStream<'_, Result<Cow<'_, [u8]>>>;
}

/// A body held in memory (tests and small requests).
impl RequestBody for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn chunks(&self) -> BoxStream<'_, Result<Cow<'_, [u8]>>> {
        Box::pin(stream::once(async move { Ok(Cow::Borrowed(self)) }))
    }
}
