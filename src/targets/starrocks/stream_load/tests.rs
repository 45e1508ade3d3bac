use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::http::decode_chunked;
use super::*;

const PASSWORD: &str = "s3cr3t:pa55";

/// A request as a test server saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a test server does with a request, decided from its head.
enum Reply {
    /// 307 to this URL at once, body unread (what the FE does).
    Redirect(String),
    /// `100 Continue`, the body, then 307 to this URL.
    ContinueThenRedirect(String),
    /// `100 Continue`, the body, then 200 with this JSON.
    Json(String),
    /// 200 with this JSON at once, body unread.
    JsonNow(String),
    /// 200 with this JSON, chunked, at once.
    ChunkedNow(String),
    /// No interim answer; the body (which the client sends after its wait), then JSON.
    JsonAfterBody(String),
    /// `100 Continue`, the body, then close without answering.
    Lose,
    /// `100 Continue`, the body, then silence until the client gives up.
    Hang,
    /// This status and body at once.
    Status(u16, String),
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Serves on a free port; returns the port and the requests seen (in completion order).
async fn serve<F>(handler: F) -> (u16, Log)
where
    F: Fn(&Seen) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let handler = Arc::new(handler);
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (handler, log) = (handler.clone(), log2.clone());
            tokio::spawn(async move {
                let _ = handle(sock, handler.as_ref(), &log).await;
            });
        }
    });
    (port, log)
}

async fn handle<F: Fn(&Seen) -> Reply>(
    mut sock: TcpStream,
    handler: &F,
    log: &Log,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (mut seen, used) = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut hs);
        if let Ok(httparse::Status::Complete(used)) = req.parse(&buf) {
            let seen = Seen {
                method: req.method.unwrap_or("").to_string(),
                path: req.path.unwrap_or("").to_string(),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).to_string(),
                        )
                    })
                    .collect(),
                body: Vec::new(),
            };
            break (seen, used);
        }
    };
    let mut body = buf[used..].to_vec();
    let length: usize = seen
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let reply = handler(&seen);
    let mut read_body = async |sock: &mut TcpStream, body: &mut Vec<u8>| {
        while body.len() < length {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        std::io::Result::Ok(())
    };
    let json = |j: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{j}",
            j.len()
        )
    };
    let redirect = |to: &str| {
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
    };
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    match reply {
        Reply::Redirect(to) => sock.write_all(redirect(&to).as_bytes()).await?,
        Reply::ContinueThenRedirect(to) => {
            sock.write_all(CONTINUE).await?;
            read_body(&mut sock, &mut body).await?;
            sock.write_all(redirect(&to).as_bytes()).await?;
        }
        Reply::Json(j) => {
            sock.write_all(CONTINUE).await?;
            read_body(&mut sock, &mut body).await?;
            sock.write_all(json(&j).as_bytes()).await?;
        }
        Reply::JsonNow(j) => sock.write_all(json(&j).as_bytes()).await?,
        Reply::ChunkedNow(j) => {
            let (a, b) = j.split_at(j.len() / 2);
            let text = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n\
                 {:x}\r\n{b}\r\n0\r\nX-Trailer: t\r\n\r\n",
                a.len(),
                b.len()
            );
            sock.write_all(text.as_bytes()).await?;
        }
        Reply::JsonAfterBody(j) => {
            read_body(&mut sock, &mut body).await?;
            sock.write_all(json(&j).as_bytes()).await?;
        }
        Reply::Lose => {
            sock.write_all(CONTINUE).await?;
            read_body(&mut sock, &mut body).await?;
        }
        Reply::Hang => {
            sock.write_all(CONTINUE).await?;
            read_body(&mut sock, &mut body).await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Reply::Status(code, text) => {
            let r = format!(
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            sock.write_all(r.as_bytes()).await?;
        }
    }
    seen.body = body;
    log.lock().unwrap().push(seen);
    let _ = sock.shutdown().await;
    Ok(())
}

fn client(port: u16) -> StreamLoadClient {
    StreamLoadClient::new(
        &format!("http://127.0.0.1:{port}"),
        "loader",
        PASSWORD,
        Duration::from_secs(5),
    )
    .unwrap()
    .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
    .with_label_wait(Duration::from_secs(3))
    .with_continue_wait(Duration::from_millis(150))
}

fn expected_auth() -> String {
    let mut a = b"Basic ".to_vec();
    crate::targets::starrocks::csv::base64_into(format!("loader:{PASSWORD}").as_bytes(), &mut a);
    String::from_utf8(a).unwrap()
}

fn success(label: &str, rows: u64) -> String {
    format!(
        r#"{{"TxnId":1003,"Label":"{label}","Status":"Success","Message":"OK",
        "NumberTotalRows":{rows},"NumberLoadedRows":{rows},"NumberFilteredRows":0,
        "NumberUnselectedRows":0,"LoadBytes":40,"LoadTimeMs":12}}"#
    )
}

fn state(s: &str) -> String {
    format!(
        r#"{{"state":"{s}","reason":"","status":"OK","code":"0","msg":"Success","message":"OK"}}"#
    )
}

fn headers() -> Vec<(String, String)> {
    vec![
        ("format".to_string(), "csv".to_string()),
        ("columns".to_string(), "`a`,`b`".to_string()),
    ]
}

const BODY: &[u8] = b"1,\"x\"\n2,\\\\N\n";

/// A BE that wants auth and Expect, and answers with `reply` (by request number, from 0).
async fn be<F>(reply: F) -> (u16, Log)
where
    F: Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
{
    let n = AtomicUsize::new(0);
    serve(move |s| {
        if s.path.contains("get_load_state") {
            return Reply::Status(500, "unexpected get_load_state".into());
        }
        if s.header("authorization") != Some(expected_auth().as_str()) {
            return Reply::Status(401, "Unauthorized".into());
        }
        if s.header("expect") != Some("100-continue") {
            return Reply::JsonNow(
                r#"{"Status":"FAILED","Message":"There is no 100-continue header"}"#.into(),
            );
        }
        reply(n.fetch_add(1, Ordering::SeqCst), s)
    })
    .await
}

/// An FE that redirects Stream Loads to `be_port` and answers get_load_state from `states`
/// (the last one repeats).
async fn fe(be_port: u16, states: Vec<&'static str>) -> (u16, Log) {
    let n = AtomicUsize::new(0);
    serve(move |s| {
        if s.header("authorization") != Some(expected_auth().as_str()) {
            return Reply::Status(401, "Unauthorized".into());
        }
        if s.path.starts_with("/api/db/get_load_state?label=") {
            let i = n.fetch_add(1, Ordering::SeqCst).min(states.len() - 1);
            return Reply::ChunkedNow(state(states[i]));
        }
        if s.header("expect") != Some("100-continue") {
            return Reply::JsonNow(
                r#"{"Status":"FAILED","Message":"There is no 100-continue header"}"#.into(),
            );
        }
        Reply::Redirect(format!("http://127.0.0.1:{be_port}{}", s.path))
    })
    .await
}

#[tokio::test]
async fn redirect_resends_auth_headers_and_body_to_the_be() {
    let (be_port, be_log) = be(|_, s| Reply::Json(success(s.header("label").unwrap(), 2))).await;
    let (fe_port, fe_log) = fe(be_port, vec!["UNKNOWN"]).await;
    let c = client(fe_port);
    let r = c.put("db", "t", "lbl_1", &headers(), BODY).await.unwrap();
    assert_eq!(r.status, "Success");
    assert_eq!(r.loaded, 2);
    assert_eq!(r.txn_id, Some(1003));
    assert_eq!(r.label, "lbl_1");
    let fe = fe_log.lock().unwrap().clone();
    let be = be_log.lock().unwrap().clone();
    assert_eq!(fe.len(), 1);
    assert!(fe[0].body.is_empty(), "the FE never wanted the body");
    assert_eq!(be.len(), 1);
    let b = &be[0];
    assert_eq!(b.method, "PUT");
    assert_eq!(b.path, "/api/db/t/_stream_load");
    assert_eq!(b.body, BODY);
    assert_eq!(b.header("label"), Some("lbl_1"));
    assert_eq!(b.header("format"), Some("csv"));
    assert_eq!(b.header("columns"), Some("`a`,`b`"));
    assert_eq!(
        b.header("content-length"),
        Some(BODY.len().to_string().as_str())
    );
    assert_eq!(
        b.header("host"),
        Some(format!("127.0.0.1:{be_port}").as_str())
    );

    let out = c
        .load("db", "t", "lbl_1", &headers(), BODY, 2)
        .await
        .unwrap();
    assert!(out.loaded_now() && out.visible());
    assert_eq!(out.rows_loaded(), Some(2));
    assert_eq!(out.attempts(), 1);
}

#[tokio::test]
async fn fe_that_reads_the_body_before_redirecting() {
    let (be_port, be_log) = be(|_, s| Reply::Json(success(s.header("label").unwrap(), 1))).await;
    let (fe_port, fe_log) = serve(move |s| {
        Reply::ContinueThenRedirect(format!("http://127.0.0.1:{be_port}{}", s.path))
    })
    .await;
    let r = client(fe_port)
        .put("db", "t", "l", &headers(), BODY)
        .await
        .unwrap();
    assert_eq!(r.status, "Success");
    assert_eq!(fe_log.lock().unwrap()[0].body, BODY);
    assert_eq!(be_log.lock().unwrap()[0].body, BODY);
}

#[tokio::test]
async fn body_is_sent_without_100_continue_after_the_wait() {
    let (port, log) = be(|_, s| Reply::JsonAfterBody(success(s.header("label").unwrap(), 2))).await;
    let r = client(port)
        .put("db", "t", "l", &headers(), BODY)
        .await
        .unwrap();
    assert_eq!(r.status, "Success");
    assert_eq!(log.lock().unwrap()[0].body, BODY);
}

#[tokio::test]
async fn label_already_exists_waits_for_the_label_to_settle() {
    let (be_port, be_log) = be(|_, s| {
        Reply::JsonNow(format!(
            r#"{{"Label":"{}","Status":"Label Already Exists","ExistingJobStatus":"RUNNING",
            "Message":"Label has already been used"}}"#,
            s.header("label").unwrap()
        ))
    })
    .await;
    let (fe_port, fe_log) = fe(be_port, vec!["PREPARE", "PREPARE", "VISIBLE"]).await;
    let out = client(fe_port)
        .load("db", "t", "dup", &headers(), BODY, 3)
        .await
        .unwrap();
    match &out {
        LoadOutcome::AlreadyLoaded {
            state,
            response: Some(r),
            attempts: 1,
        } => {
            assert_eq!(*state, LabelState::Visible);
            assert_eq!(r.existing_job_status.as_deref(), Some("RUNNING"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!out.loaded_now());
    assert_eq!(out.rows_loaded(), None);
    assert_eq!(be_log.lock().unwrap().len(), 1, "never loaded again");
    let polls: Vec<String> = fe_log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(polls.len(), 3);
    assert!(
        polls
            .iter()
            .all(|p| p == "/api/db/get_load_state?label=dup")
    );
}

#[tokio::test]
async fn aborted_label_is_loaded_again_with_the_same_label() {
    let (be_port, be_log) = be(|i, s| {
        let l = s.header("label").unwrap();
        if i == 0 {
            Reply::JsonNow(format!(
                r#"{{"Label":"{l}","Status":"Label Already Exists"}}"#
            ))
        } else {
            Reply::Json(success(l, 2))
        }
    })
    .await;
    let (fe_port, _) = fe(be_port, vec!["ABORTED"]).await;
    let out = client(fe_port)
        .load("db", "t", "again", &headers(), BODY, 3)
        .await
        .unwrap();
    assert!(out.loaded_now());
    assert_eq!(out.attempts(), 2);
    let be = be_log.lock().unwrap();
    assert!(be.iter().all(|s| s.header("label") == Some("again")));
    assert_eq!(be[1].body, BODY);
}

#[tokio::test]
async fn lost_response_is_settled_by_the_label_state() {
    let (be_port, be_log) = be(|_, _| Reply::Lose).await;
    let (fe_port, _) = fe(be_port, vec!["VISIBLE"]).await;
    let out = client(fe_port)
        .load("db", "t", "lost", &headers(), BODY, 3)
        .await
        .unwrap();
    assert_eq!(
        out,
        LoadOutcome::AlreadyLoaded {
            state: LabelState::Visible,
            response: None,
            attempts: 1
        }
    );
    assert_eq!(be_log.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn lost_response_with_unknown_label_is_sent_again() {
    let (be_port, be_log) = be(|i, s| {
        if i == 0 {
            Reply::Lose
        } else {
            Reply::Json(success(s.header("label").unwrap(), 2))
        }
    })
    .await;
    let (fe_port, _) = fe(be_port, vec!["UNKNOWN"]).await;
    let out = client(fe_port)
        .load("db", "t", "lost2", &headers(), BODY, 3)
        .await
        .unwrap();
    assert!(out.loaded_now());
    assert_eq!(out.attempts(), 2);
    let be = be_log.lock().unwrap();
    assert_eq!(be.len(), 2);
    assert!(
        be.iter()
            .all(|s| s.header("label") == Some("lost2") && s.body == BODY)
    );
}

#[tokio::test]
async fn silence_times_out_as_unavailable() {
    let (port, _) = be(|_, _| Reply::Hang).await;
    let c = StreamLoadClient::new(
        &format!("http://127.0.0.1:{port}"),
        "loader",
        PASSWORD,
        Duration::from_millis(400),
    )
    .unwrap();
    let e = c.put("db", "t", "l", &headers(), BODY).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert!(e.retryable);
    assert!(e.message.contains("within"), "{e}");
}

#[tokio::test]
async fn filtered_rows_are_a_data_error() {
    let (port, log) = be(|_, s| {
        Reply::Json(format!(
            r#"{{"Label":"{}","Status":"Fail","Message":"too many filtered rows",
            "NumberTotalRows":10,"NumberLoadedRows":8,"NumberFilteredRows":2,
            "NumberUnselectedRows":0,"ErrorURL":"http://be:8040/api/_load_error_log?file=x"}}"#,
            s.header("label").unwrap()
        ))
    })
    .await;
    let e = client(port)
        .load("db", "orders", "bad", &headers(), BODY, 3)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Data);
    assert!(!e.retryable);
    for part in [
        "db.orders",
        "2 of 10",
        "_load_error_log",
        "too many filtered rows",
    ] {
        assert!(e.message.contains(part), "{part}: {e}");
    }
    assert_eq!(log.lock().unwrap().len(), 1, "not retried");
}

#[tokio::test]
async fn fail_is_retried_with_the_same_label_then_gives_up() {
    let fail = |l: &str| {
        Reply::Json(format!(
            r#"{{"Label":"{l}","Status":"Fail","Message":"too many tablet versions"}}"#
        ))
    };
    let (port, log) = be(move |i, s| {
        let l = s.header("label").unwrap();
        if i < 2 {
            fail(l)
        } else {
            Reply::Json(success(l, 2))
        }
    })
    .await;
    let out = client(port)
        .load("db", "t", "retry", &headers(), BODY, 2)
        .await
        .unwrap();
    assert_eq!(out.attempts(), 3);
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .all(|s| s.header("label") == Some("retry"))
    );

    let (port, log) = be(move |_, s| fail(s.header("label").unwrap())).await;
    let e = client(port)
        .load("db", "t", "never", &headers(), BODY, 2)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert!(
        e.to_string().contains("after 3 Stream Load attempts"),
        "{e}"
    );
    assert!(e.message.contains("too many tablet versions"), "{e}");
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn publish_timeout_is_done_and_not_visible() {
    let (port, log) = be(|_, s| {
        Reply::Json(format!(
            r#"{{"Label":"{}","Status":"Publish Timeout","NumberLoadedRows":2}}"#,
            s.header("label").unwrap()
        ))
    })
    .await;
    let out = client(port)
        .load("db", "t", "pt", &headers(), BODY, 3)
        .await
        .unwrap();
    assert!(out.loaded_now() && !out.visible());
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn refusals_are_config_errors_without_the_password() {
    let (port, _) = serve(|_| Reply::Status(401, "Unauthorized".into())).await;
    let c = client(port);
    let e = c
        .load("db", "t", "l", &headers(), BODY, 3)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("loader"), "{e}");
    assert!(!format!("{e} {e:?} {c:?}").contains(PASSWORD));
    assert!(!format!("{c:?}").contains(&expected_auth()[6..]));

    let e = StreamLoadClient::new("https://fe:8030", "u", "p", Duration::from_secs(1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("https"), "{e}");
    let e = StreamLoadClient::new(
        "https://u:hunter2@fe:8030",
        "u",
        "p",
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(!e.message.contains("hunter2"), "{e}");
    let e = StreamLoadClient::new("fe:8030 x", "u", "p", Duration::from_secs(1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    let e = c
        .put("db", "t", "l", &[("label".into(), "x".into())], BODY)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    let e = c
        .put("db", "t", "l", &[("columns".into(), "a\r\nb".into())], BODY)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
}

#[tokio::test]
async fn label_state_over_http_follows_redirects() {
    let (leader, _) = serve(|s| {
        assert!(s.header("expect").is_none());
        Reply::ChunkedNow(state("COMMITTED"))
    })
    .await;
    let (fe_port, _) =
        serve(move |s| Reply::Redirect(format!("http://127.0.0.1:{leader}{}", s.path))).await;
    let c = client(fe_port);
    assert_eq!(
        c.label_state("my db", "a_b").await.unwrap(),
        LabelState::Committed
    );
}

#[test]
fn label_state_shapes() {
    for (name, want) in [
        ("VISIBLE", LabelState::Visible),
        ("prepare", LabelState::Prepare),
        ("PREPARED", LabelState::Prepared),
        ("ABORTED", LabelState::Aborted),
        ("UNKNOWN", LabelState::Unknown),
    ] {
        assert_eq!(parse_label_state(&state(name)).unwrap(), want, "{name}");
    }
    assert_eq!(
        parse_label_state(r#"{"state":"COMMITTED"}"#).unwrap(),
        LabelState::Committed
    );
    let e =
        parse_label_state(r#"{"status":"FAILED","code":"1","msg":"unknown database, database=x"}"#)
            .unwrap_err();
    assert!(e.message.contains("unknown database"), "{e}");
    assert!(parse_label_state(&state("WEIRD")).is_err());
    assert!(parse_label_state("<html>").is_err());
}

#[test]
fn load_response_shapes() {
    let r = parse_load_response(&success("x", 5), "sent").unwrap();
    assert_eq!((r.total, r.loaded, r.filtered), (5, 5, 0));
    assert_eq!(r.error_url, None);
    let r = parse_load_response(
        r#"{"Status":"FAILED","Message":"class DdlException: No backend alive."}"#,
        "sent",
    )
    .unwrap();
    assert_eq!(verdict(&r.status), Verdict::Failed);
    assert_eq!(r.label, "sent");
    assert!(r.message.contains("No backend"));
    let r = parse_load_response(r#"{"status":"FAILED","msg":"m"}"#, "s").unwrap();
    assert_eq!(r.message, "m");
    assert!(parse_load_response("{}", "s").is_err());
    assert_eq!(verdict("Success"), Verdict::Visible);
    assert_eq!(verdict("Publish Timeout"), Verdict::Committed);
    assert_eq!(verdict("Label Already Exists"), Verdict::LabelTaken);
    assert_eq!(verdict("Fail"), Verdict::Failed);
    assert_eq!(verdict("Commit Timeout"), Verdict::Unclear);
}

#[test]
fn chunked_decoding() {
    let (b, used) = decode_chunked(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\nrest")
        .unwrap()
        .unwrap();
    assert_eq!((b.as_slice(), used), (&b"abcde"[..], 24));
    assert!(decode_chunked(b"3\r\nab").unwrap().is_none());
    assert!(decode_chunked(b"zz\r\n").is_err());
}

#[test]
fn redaction() {
    assert_eq!(redact("http://u:p@h:1/x"), "http://***@h:1/x");
    assert_eq!(redact("http://h:1/x"), "http://h:1/x");
    assert!(!redact("u:p@h").contains('p'));
}

/// A body generated chunk by chunk, counting how often it was generated; `short` drops its
/// last chunk (a generator that does not keep its announced length).
struct Generated {
    chunks: Vec<Vec<u8>>,
    opened: AtomicUsize,
    short: bool,
}

impl Generated {
    fn new(short: bool) -> Self {
        let chunks = (0..50)
            .map(|i| format!("{i},row {i} of a body sent in pieces\n").repeat(100))
            .map(String::into_bytes)
            .collect();
        Generated {
            chunks,
            opened: AtomicUsize::new(0),
            short,
        }
    }

    fn all(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

impl RequestBody for Generated {
    fn len(&self) -> u64 {
        self.chunks.iter().map(|c| c.len() as u64).sum()
    }

    fn chunks(&self) -> futures::stream::BoxStream<'_, Result<std::borrow::Cow<'_, [u8]>>> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let n = self.chunks.len() - usize::from(self.short);
        Box::pin(futures::stream::iter(
            self.chunks[..n]
                .iter()
                .map(|c| Ok(std::borrow::Cow::Borrowed(c.as_slice()))),
        ))
    }
}

#[tokio::test]
async fn a_generated_body_is_generated_again_for_each_send_and_arrives_whole() {
    let (be_port, be_log) = be(|_, s| Reply::Json(success(s.header("label").unwrap(), 50))).await;
    // The FE reads the whole body before redirecting: the body is produced twice.
    let (fe_port, fe_log) = serve(move |s| {
        Reply::ContinueThenRedirect(format!("http://127.0.0.1:{be_port}{}", s.path))
    })
    .await;
    let body = Generated::new(false);
    let r = client(fe_port)
        .put("db", "t", "gen", &headers(), &body)
        .await
        .unwrap();
    assert_eq!(r.status, "Success");
    assert_eq!(body.opened.load(Ordering::SeqCst), 2);
    let want = body.all();
    assert_eq!(fe_log.lock().unwrap()[0].body, want);
    let be = be_log.lock().unwrap().clone();
    assert_eq!(be.len(), 1);
    assert_eq!(be[0].body, want);
    assert_eq!(
        be[0].header("content-length"),
        Some(want.len().to_string().as_str())
    );
}

#[tokio::test]
async fn a_body_shorter_than_announced_abandons_the_request() {
    let (port, log) = serve(|s| Reply::Json(success(s.header("label").unwrap(), 50))).await;
    let body = Generated::new(true);
    let e = client(port)
        .put("db", "t", "short", &headers(), &body)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "came out {} bytes long, not the {} announced",
            body.all().len() - body.chunks[49].len(),
            body.len()
        )),
        "{e}"
    );
    // The server got less than the announced length before the connection closed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for seen in log.lock().unwrap().iter() {
        assert!((seen.body.len() as u64) < body.len());
    }
}
