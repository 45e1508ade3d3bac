//! The HTTP/1.1 exchange under Stream Load.
//!
//! Why a hand-written HTTP/1.1 client: StarRocks' FE refuses an HTTP/1.1 Stream Load without
//! `Expect: 100-continue`, then answers **307** with the BE's address and closes *without
//! reading the body*; the body, `Authorization` and every header must then be sent again to the
//! `Location`. reqwest/hyper send the body right after the headers instead of waiting for
//! `100 Continue` (so a large body races the FE's close), and their automatic redirects drop
//! `Authorization` when the host or port changes. This client, on [`tokio::net::TcpStream`] with
//! `httparse` for the responses, sends the headers, waits for `100 Continue` or a final answer
//! (after about a second without either it sends the body anyway, as RFC 9110 §10.1.1 allows),
//! keeps reading while it sends so an early answer stops the upload, and follows redirects by
//! hand. Plain `http://` only: an `https://` address is a configuration error.

use std::fmt;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::{Host, Url};

use super::StreamLoadClient;
use super::body::RequestBody;
use crate::error::{Error, Result};

/// Redirects followed per request (FE to leader FE to BE is two).
const MAX_REDIRECTS: usize = 5;
/// Largest response head and body accepted (Stream Load answers are a few hundred bytes).
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why sending a body stopped.
enum SendError {
    /// The connection failed.
    Io(std::io::Error),
    /// The body could not be produced (or not at its announced length).
    Body(Error),
}

/// `s` with anything between `://` and the last `@` hidden (a URL's user and password).
pub(super) fn redact(s: &str) -> String {
    match (s.find("://"), s.rfind('@')) {
        (Some(i), Some(j)) if j > i => format!("{}***{}", &s[..i + 3], &s[j..]),
        (None, Some(_)) => "(a URL with credentials)".to_string(),
        _ => s.to_string(),
    }
}

/// A URL for messages: scheme, host, port, path and query, never user or password.
pub(super) fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// One parsed HTTP response head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A complete HTTP response.
#[derive(Debug)]
pub(super) struct HttpResponse {
    pub(super) head: Head,
    body: Vec<u8>,
}

impl HttpResponse {
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The start of the body, for error messages.
    pub(super) fn snippet(&self) -> String {
        self.text().chars().take(300).collect()
    }
}

fn lost(what: &str, e: impl fmt::Display) -> Error {
    Error::unavailable(format!("{what}: {e}"))
}

/// Reads responses from a connection. All progress is kept in `self`, so a read that is
/// dropped half-way (a `select!` or a timeout) loses nothing: the next call resumes.
#[derive(Default)]
struct ResponseReader {
    buf: Vec<u8>,
    /// The final (non-1xx) head, once parsed.
    head: Option<Head>,
    eof: bool,
}

impl ResponseReader {
    async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = r
            .read(&mut chunk)
            .await
            .map_err(|e| lost("connection lost while reading the answer", e))?;
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// A head parsed from the front of the buffer, if one is complete.
    fn parse_head(&mut self) -> Result<Option<Head>> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => {
                let head = Head {
                    status: resp.code.unwrap_or(0),
                    headers: resp
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).trim().to_string(),
                            )
                        })
                        .collect(),
                };
                self.buf.drain(..n);
                Ok(Some(head))
            }
            Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD => Err(Error::unavailable(
                format!("HTTP response head longer than {MAX_HEAD} bytes"),
            )),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(Error::unavailable(format!("malformed HTTP response: {e}"))),
        }
    }

    /// The next head, 1xx included.
    async fn next_head<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Head> {
        loop {
            if let Some(h) = self.parse_head()? {
                return Ok(h);
            }
            if self.eof {
                return Err(Error::unavailable(
                    "the connection closed before a complete answer (lost response)",
                ));
            }
            self.fill(r).await?;
        }
    }

    /// The final response: skips 1xx heads, then reads the body by its framing.
    async fn response<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<HttpResponse> {
        loop {
            let Some(head) = &self.head else {
                let h = self.next_head(r).await?;
                if h.status >= 200 {
                    self.head = Some(h);
                }
                continue;
            };
            let chunked = head
                .header("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
            let length = head
                .header("content-length")
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| Error::unavailable(format!("bad Content-Length {v:?}")))
                })
                .transpose()?;
            let no_body = head.status == 204 || head.status == 304;
            let done = if no_body {
                Some((Vec::new(), 0))
            } else if chunked {
                decode_chunked(&self.buf)?
            } else if let Some(n) = length {
                (self.buf.len() >= n).then(|| (self.buf[..n].to_vec(), n))
            } else if self.eof {
                Some((self.buf.clone(), self.buf.len()))
            } else {
                None
            };
            if let Some((body, used)) = done {
                self.buf.drain(..used);
                let head = self.head.take().unwrap_or(Head {
                    status: 0,
                    headers: Vec::new(),
                });
                return Ok(HttpResponse { head, body });
            }
            if self.buf.len() > MAX_BODY {
                return Err(Error::unavailable(format!(
                    "HTTP response body longer than {MAX_BODY} bytes"
                )));
            }
            if self.eof {
                return Err(Error::unavailable(
                    "the connection closed in the middle of the answer (lost response)",
                ));
            }
            self.fill(r).await?;
        }
    }
}

/// A complete chunked body at the front of `buf`: `(body, bytes used)`, or `None` if more is
/// needed.
pub(super) fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>> {
    let find_crlf = |from: usize| {
        buf.get(from..)
            .and_then(|b| b.windows(2).position(|w| w == b"\r\n"))
            .map(|p| from + p)
    };
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find_crlf(pos) else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&buf[pos..eol]);
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| Error::unavailable(format!("bad chunk size {size_text:?}")))?;
        pos = eol + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(eol) = find_crlf(pos) else {
                    return Ok(None);
                };
                let empty = eol == pos;
                pos = eol + 2;
                if empty {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(Error::unavailable(format!(
                "HTTP response body longer than {MAX_BODY} bytes"
            )));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

impl StreamLoadClient {
    /// Sends one request, following redirects by hand with every header and the body again.
    pub(super) async fn request<B: RequestBody + ?Sized>(
        &self,
        method: &str,
        mut url: Url,
        headers: &[(String, String)],
        body: Option<&B>,
    ) -> Result<HttpResponse> {
        for _ in 0..=MAX_REDIRECTS {
            let resp = match tokio::time::timeout(
                self.timeout,
                self.exchange(method, &url, headers, body),
            )
            .await
            {
                Ok(r) => r?,
                Err(_) => {
                    return Err(Error::unavailable(format!(
                        "{method} {}: no complete answer within {:?}",
                        shown(&url),
                        self.timeout
                    )));
                }
            };
            if !matches!(resp.head.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let location = resp.head.header("location").ok_or_else(|| {
                Error::unavailable(format!(
                    "HTTP {} from {} without a Location",
                    resp.head.status,
                    shown(&url)
                ))
            })?;
            let next = url.join(location).map_err(|e| {
                Error::unavailable(format!(
                    "bad redirect Location {} from {}: {e}",
                    redact(location),
                    shown(&url)
                ))
            })?;
            if next.scheme() != "http" {
                return Err(Error::config(format!(
                    "StarRocks redirected to {}: only http:// is supported",
                    shown(&next)
                )));
            }
            tracing::debug!(from = %shown(&url), to = %shown(&next), "following redirect");
            url = next;
        }
        Err(Error::unavailable(format!(
            "{method} {}: more than {MAX_REDIRECTS} redirects",
            shown(&url)
        )))
    }

    /// One request on one connection (closed afterwards).
    async fn exchange<B: RequestBody + ?Sized>(
        &self,
        method: &str,
        url: &Url,
        headers: &[(String, String)],
        body: Option<&B>,
    ) -> Result<HttpResponse> {
        let host = match url.host() {
            Some(Host::Domain(d)) => d.to_string(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => return Err(Error::config(format!("{} has no host", shown(url)))),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let mut stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| lost(&format!("cannot connect to {host}:{port}"), e))?;
        let _ = stream.set_nodelay(true);

        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}:{port}\r\nAuthorization: {}\r\n\
             User-Agent: dag\r\nAccept: application/json\r\nConnection: close\r\n",
            url.host_str().unwrap_or(&host),
            self.auth
        );
        if let Some(b) = body {
            head.push_str(&format!(
                "Expect: 100-continue\r\nContent-Length: {}\r\n",
                RequestBody::len(b)
            ));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| lost(&format!("sending to {host}:{port}"), e))?;

        let mut reader = ResponseReader::default();
        let Some(body) = body else {
            return reader.response(&mut stream).await;
        };
        // `100 Continue`, a final answer, or silence.
        match tokio::time::timeout(self.continue_wait, reader.next_head(&mut stream)).await {
            Ok(Ok(h)) if h.status >= 200 => {
                // Answered before the body: the server does not want it (a 307, a refusal).
                reader.head = Some(h);
                return reader.response(&mut stream).await;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => tracing::debug!(%host, port, "no 100 Continue; sending the body anyway"),
        }
        // Send the body, generated chunk by chunk, while reading, so an early final answer is
        // seen (and the rest of the body dropped) instead of writing into a closed connection.
        let (mut rd, mut wr) = stream.split();
        let send = async {
            let want = RequestBody::len(body);
            let mut sent = 0u64;
            let mut chunks = body.chunks();
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(SendError::Body)?;
                sent += chunk.len() as u64;
                if sent > want {
                    break;
                }
                wr.write_all(&chunk).await.map_err(SendError::Io)?;
            }
            if sent != want {
                return Err(SendError::Body(Error::internal(format!(
                    "the request body came out {sent} bytes long, not the {want} announced"
                ))));
            }
            wr.flush().await.map_err(SendError::Io)
        };
        tokio::pin!(send);
        let mut sent: Option<std::result::Result<(), SendError>> = None;
        loop {
            tokio::select! {
                r = &mut send, if sent.is_none() => {
                    // The body could not be produced: the request is abandoned with its
                    // connection, so the server never takes a short body for a whole one.
                    if let Err(SendError::Body(e)) = r {
                        return Err(e.context(format!("sending a request body to {host}:{port}")));
                    }
                    sent = Some(r);
                }
                resp = reader.response(&mut rd) => {
                    return match (resp, sent) {
                        (Ok(r), _) => Ok(r),
                        (Err(e), Some(Err(SendError::Io(we)))) => Err(lost(
                            &format!("sending the body to {host}:{port} failed ({we})"),
                            e,
                        )),
                        (Err(e), _) => Err(e),
                    };
                }
            }
        }
    }
}
