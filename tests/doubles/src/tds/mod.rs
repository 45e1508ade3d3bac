//! A fake SQL Server that speaks the real TDS 7.4 wire protocol, for tests and benchmarks.
//!
//! No SQL Server can run on our machines, so the connector is tested against this server. Its
//! encoding follows `docs/reference/sqlserver.md` and is cross-checked by clients we did
//! not write (pytds and FreeTDS `tsql`, see `tests/it/tds_crosscheck.rs`), so a test that passes
//! here exercises the same bytes a real server would send.
//!
//! The server is std-only: one listener thread, and per connection one thread that answers
//! requests plus one reader thread that notices Attention packets while a result is streaming.
//! Rows are generated on the fly by each [`Table`]'s `row` function and written packet by packet,
//! so a table of millions of rows costs no memory. It answers exactly the statement shapes the
//! connector sends (catalog queries, key bounds, chunk boundaries, counts, data selects with
//! range predicates) plus the harmless statements clients send on connect.
//!
//! Submodules: `wire` (packets, tokens, type info and value encoding), `sql` (parsing and running
//! the supported statements), `fixtures` (tables shared by tests and the benchmark).

pub mod fixtures;
mod sql;
mod wire;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server serves and whom it lets in.
#[derive(Clone, Default)]
pub struct ServerConfig {
    /// Database name reported at login and used in error messages.
    pub database: String,
    /// The only login accepted.
    pub user: String,
    /// Its password.
    pub password: String,
    /// Tables served (all looked up case-insensitively by schema and name).
    pub tables: Vec<Table>,
    /// Cap on the response packet size (e.g. 512 to force tokens across packets); default: the
    /// size negotiated at login.
    pub max_packet: Option<usize>,
    /// Answer queries mentioning `sys.dm_db_partition_stats` with ERROR 300 (VIEW DATABASE STATE
    /// permission denied), as a server does for a login without that permission.
    pub deny_dmv: bool,
    /// Print each received statement as one line on stderr (the `tds_server` binary's `--log`).
    pub log_stderr: bool,
}

impl ServerConfig {
    /// A configuration with the given login and tables, and defaults for the rest.
    pub fn new(database: &str, user: &str, password: &str, tables: Vec<Table>) -> ServerConfig {
        ServerConfig {
            database: database.to_string(),
            user: user.to_string(),
            password: password.to_string(),
            tables,
            ..ServerConfig::default()
        }
    }
}

/// One statement the server received (SQL batch or RPC), as the query log records it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedQuery {
    /// Connection number, from 1 in accept order.
    pub conn: u64,
    /// The SQL text (for sp_executesql: the `stmt` parameter).
    pub sql: String,
    /// Display form of the `@P1`.. values, in order.
    pub params: Vec<String>,
    /// Rows sent in answer.
    pub rows_sent: u64,
    /// False if an attention, a dropped connection or an error cut it short.
    pub completed: bool,
}

/// A one-shot fault, consumed when it fires.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Next data query on that table (name or `schema.name`, case-insensitive): close the socket
    /// abruptly after sending that many rows.
    DropAfterRows { table: String, rows: u64 },
    /// Next statement containing the text (case-insensitive) gets an ERROR token + DONE(error).
    Error {
        sql_contains: String,
        number: u32,
        class: u8,
        message: String,
    },
}

/// Fills row `i` (0-based) of a table: one [`Value`] per column. The vector is reused between
/// calls (it holds the previous row's values), so generators can reuse its `String`s.
pub type RowFn = Arc<dyn Fn(u64, &mut Vec<Value>) + Send + Sync>;

/// A served table. Rows are generated, never stored.
#[derive(Clone)]
pub struct Table {
    /// Schema name, e.g. `dbo`.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Columns in `column_id` order.
    pub columns: Vec<Col>,
    /// Primary key column names in key order (empty: no key).
    pub primary_key: Vec<String>,
    /// Number of rows.
    pub rows: u64,
    /// Fills row `i`; rows MUST come out in ascending primary-key order.
    pub row: RowFn,
    /// Cheap variant of `row` that fills only the key columns (at their column positions), used
    /// for binary search on key ranges. `None`: `row` is used.
    pub key: Option<RowFn>,
}

/// A column of a [`Table`].
#[derive(Clone, Debug, PartialEq)]
pub struct Col {
    /// Column name.
    pub name: String,
    /// SQL Server type.
    pub ty: SqlType,
    /// NULL allowed.
    pub nullable: bool,
    /// IDENTITY column.
    pub identity: bool,
    /// Computed column.
    pub computed: bool,
}

impl Col {
    /// A plain column (not identity, not computed).
    pub fn new(name: &str, ty: SqlType, nullable: bool) -> Col {
        Col {
            name: name.to_string(),
            ty,
            nullable,
            identity: false,
            computed: false,
        }
    }
}

/// SQL Server column types the server can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlType {
    Bit,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Real,
    Float,
    /// decimal(precision, scale)
    Decimal(u8, u8),
    /// numeric(precision, scale)
    Numeric(u8, u8),
    Money,
    SmallMoney,
    Date,
    /// time(scale)
    Time(u8),
    DateTime,
    SmallDateTime,
    /// datetime2(scale)
    DateTime2(u8),
    /// datetimeoffset(scale)
    DateTimeOffset(u8),
    /// char(n), code page 1252
    Char(u16),
    /// varchar(n), `None` = max; code page 1252
    VarChar(Option<u16>),
    Text,
    NChar(u16),
    /// nvarchar(n), `None` = max
    NVarChar(Option<u16>),
    NText,
    Binary(u16),
    /// varbinary(n), `None` = max
    VarBinary(Option<u16>),
    Image,
    UniqueIdentifier,
    /// rowversion (sys.types name `timestamp`), 8 bytes
    RowVersion,
    Xml,
    HierarchyId,
    Geography,
    Geometry,
    SqlVariant,
}

/// A cell value. Which variant goes with which [`SqlType`] is documented per variant.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    /// bit
    Bool(bool),
    /// tinyint, smallint, int, bigint
    Int(i64),
    /// real
    F32(f32),
    /// float
    F64(f64),
    /// decimal/numeric: unscaled, at the column's scale
    Dec(i128),
    /// money and smallmoney: value * 10^4
    Money(i64),
    /// date: days since 0001-01-01
    Date(u32),
    /// time: 100 ns units since midnight
    Time(u64),
    /// datetime2: days since 0001-01-01 and 100 ns units since midnight
    DateTime2 {
        days: u32,
        ticks: u64,
    },
    /// datetimeoffset: the UTC date and time, plus the offset in minutes
    DateTimeOffset {
        days: u32,
        ticks: u64,
        offset_min: i16,
    },
    /// datetime: days since 1900-01-01, 1/300 s since midnight
    DateTime {
        days: i32,
        ticks300: u32,
    },
    /// smalldatetime: days since 1900-01-01, minutes since midnight
    SmallDateTime {
        days: u16,
        minutes: u16,
    },
    /// char/varchar/text/nchar/nvarchar/ntext, hierarchyid text (`/1/2/`), geography/geometry WKT,
    /// xml text, sql_variant text. Fixed-length types must be given padded.
    Str(String),
    /// binary/varbinary/image/rowversion (binary(n) must be given padded)
    Bytes(Vec<u8>),
    /// uniqueidentifier, in canonical textual order (as uuid bytes, big-endian)
    Guid([u8; 16]),
}

/// Reuses the `String` in a cell (or puts one there) and returns it cleared: lets row generators
/// write text without allocating per row.
pub fn str_slot(v: &mut Value) -> &mut String {
    if !matches!(v, Value::Str(_)) {
        *v = Value::Str(String::new());
    }
    match v {
        Value::Str(s) => {
            s.clear();
            s
        }
        _ => unreachable!(),
    }
}

/// Days since 0001-01-01 of a proleptic Gregorian date.
pub fn days_from_ymd(y: i64, m: u32, d: u32) -> i64 {
    // Howard Hinnant's days_from_civil, shifted from 1970-01-01 to 0001-01-01.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468 + 719162
}

/// (year, month, day) of a day count since 0001-01-01.
pub fn ymd_from_days(days: i64) -> (i64, u32, u32) {
    let z = days - 719162 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// Days from 0001-01-01 to 1900-01-01 (the datetime epoch).
pub const DAYS_1900: i64 = 693595;
/// 100 ns units per day.
pub const TICKS_PER_DAY: u64 = 864_000_000_000;

fn push_date(s: &mut String, days: i64) {
    let (y, m, d) = ymd_from_days(days);
    let _ = write!(s, "{y:04}-{m:02}-{d:02}");
}

fn push_time(s: &mut String, ticks: u64) {
    let secs = ticks / 10_000_000;
    let frac = ticks % 10_000_000;
    let _ = write!(
        s,
        "{:02}:{:02}:{:02}.{frac:07}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
}

/// Decimal text of an unscaled integer at a scale, e.g. (-9223372036854775808, 4) →
/// `-922337203685477.5808`.
pub fn dec_text(unscaled: i128, scale: u8) -> String {
    let neg = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let digits = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = digits.split_at(digits.len() - scale);
    let sign = if neg { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific below 1e-4 and from 1e16.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let e = format!("{x:e}"); // e.g. "-1.2345e-7"
    let (mant, exp) = e.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        let es = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

/// Lowercase canonical text of a GUID given in canonical byte order.
pub fn guid_text(g: &[u8; 16]) -> String {
    let h: String = g.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Parses `6F9619FF-8B86-D011-B42D-00C04FD430C8` (braces optional) into canonical byte order.
pub fn parse_guid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s
        .trim()
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if hex.len() != 32 {
        return None;
    }
    let mut g = [0u8; 16];
    for (i, b) in g.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(g)
}

/// Lowercase hex of bytes.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// The canonical text of a value served as `ty`, the same form `tests/readers/tds_pytds.py`
/// prints; `None` for NULL.
///
/// Forms: bool `true`/`false`; integers in decimal; decimal/numeric/money with exactly the type's
/// scale; real/float as Python's `repr` (real widened to f64 first, as clients do); date
/// `YYYY-MM-DD`; time `HH:MM:SS.fffffff` (always 7 digits); datetime2/datetime/smalldatetime
/// `YYYY-MM-DD HH:MM:SS.fffffff`, datetime rounded to milliseconds as SQL Server shows it;
/// datetimeoffset in its own offset, `YYYY-MM-DD HH:MM:SS.fffffff+HH:MM`; binary types lowercase
/// hex; uniqueidentifier lowercase canonical; text as is; hierarchyid/geography/geometry (served
/// natively as CLR UDT bytes) as the hex of those bytes; sql_variant as its text.
/// Clients that give fewer fraction digits are compared with [`at_precision`].
pub fn canonical(v: &Value, ty: &SqlType) -> Option<String> {
    let mut s = String::new();
    match v {
        Value::Null => return None,
        Value::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => match ty {
            SqlType::Bit => s.push_str(if *i != 0 { "true" } else { "false" }),
            _ => {
                let _ = write!(s, "{i}");
            }
        },
        Value::F32(f) => s = py_float_repr(*f as f64),
        Value::F64(f) => s = py_float_repr(*f),
        Value::Dec(u) => s = dec_text(*u, scale_of(ty)),
        Value::Money(m) => s = dec_text(*m as i128, 4),
        Value::Date(d) => push_date(&mut s, *d as i64),
        Value::Time(t) => push_time(&mut s, *t),
        Value::DateTime2 { days, ticks } => {
            push_date(&mut s, *days as i64);
            s.push(' ');
            push_time(&mut s, *ticks);
        }
        Value::DateTimeOffset {
            days,
            ticks,
            offset_min,
        } => {
            let local = *days as i64 * TICKS_PER_DAY as i64
                + *ticks as i64
                + *offset_min as i64 * 600_000_000;
            push_date(&mut s, local.div_euclid(TICKS_PER_DAY as i64));
            s.push(' ');
            push_time(&mut s, local.rem_euclid(TICKS_PER_DAY as i64) as u64);
            let o = offset_min.unsigned_abs();
            let sign = if *offset_min < 0 { '-' } else { '+' };
            let _ = write!(s, "{sign}{:02}:{:02}", o / 60, o % 60);
        }
        Value::DateTime { days, ticks300 } => {
            // As SQL Server (and pytds) show it: 1/300 s rounded to milliseconds.
            let ms = (*ticks300 as u64 * 10 + 1) / 3;
            push_date(&mut s, DAYS_1900 + *days as i64);
            s.push(' ');
            push_time(&mut s, ms * 10_000);
        }
        Value::SmallDateTime { days, minutes } => {
            push_date(&mut s, DAYS_1900 + *days as i64);
            s.push(' ');
            push_time(&mut s, *minutes as u64 * 600_000_000);
        }
        Value::Str(t) => match ty {
            SqlType::HierarchyId | SqlType::Geography | SqlType::Geometry => {
                s = hex(&wire::clr_bytes(ty, t))
            }
            _ => s.push_str(t),
        },
        Value::Bytes(b) => s = hex(b),
        Value::Guid(g) => s = guid_text(g),
    }
    Some(s)
}

/// Cuts the fraction of seconds in a canonical date/time text to `digits` digits (padding with
/// zeros), for clients that cannot represent 100 ns (Python's datetime stops at microseconds).
/// Text without a `HH:MM:SS.` fraction is returned as is.
pub fn at_precision(text: &str, digits: usize) -> String {
    // Find "SS." preceded by ':' two characters before.
    let b = text.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'.'
            && i >= 3
            && b[i - 3] == b':'
            && b[i - 1].is_ascii_digit()
            && b[i - 2].is_ascii_digit()
        {
            let end = b[i + 1..]
                .iter()
                .position(|c| !c.is_ascii_digit())
                .map_or(b.len(), |p| i + 1 + p);
            let frac = &text[i + 1..end];
            let mut f: String = frac.chars().take(digits).collect();
            while f.len() < digits {
                f.push('0');
            }
            return format!("{}.{f}{}", &text[..i], &text[end..]);
        }
    }
    text.to_string()
}

/// Scale of a type's decimal values (0 for non-decimal types).
pub fn scale_of(ty: &SqlType) -> u8 {
    match ty {
        SqlType::Decimal(_, s) | SqlType::Numeric(_, s) => *s,
        SqlType::Money | SqlType::SmallMoney => 4,
        _ => 0,
    }
}

/// SQL Server's text of a type, e.g. `decimal(38,10)`, `nvarchar(max)`, `timestamp`.
pub fn type_sql(ty: &SqlType) -> String {
    let n = |o: &Option<u16>| o.map_or("max".to_string(), |n| n.to_string());
    match ty {
        SqlType::Decimal(p, s) => format!("decimal({p},{s})"),
        SqlType::Numeric(p, s) => format!("numeric({p},{s})"),
        SqlType::Time(s) => format!("time({s})"),
        SqlType::DateTime2(s) => format!("datetime2({s})"),
        SqlType::DateTimeOffset(s) => format!("datetimeoffset({s})"),
        SqlType::Char(l) => format!("char({l})"),
        SqlType::VarChar(l) => format!("varchar({})", n(l)),
        SqlType::NChar(l) => format!("nchar({l})"),
        SqlType::NVarChar(l) => format!("nvarchar({})", n(l)),
        SqlType::Binary(l) => format!("binary({l})"),
        SqlType::VarBinary(l) => format!("varbinary({})", n(l)),
        other => sql::catalog_type(other).0.to_string(),
    }
}

struct Shared {
    cfg: ServerConfig,
    log: Mutex<Vec<LoggedQuery>>,
    faults: Mutex<Vec<Fault>>,
    next_conn: AtomicU64,
    stop: AtomicBool,
}

/// A running server on 127.0.0.1. Dropping it closes the listener; connection threads end when
/// their clients disconnect.
pub struct TdsServer {
    port: u16,
    shared: Arc<Shared>,
}

impl TdsServer {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub fn start(cfg: ServerConfig) -> io::Result<TdsServer> {
        TdsServer::start_on(cfg, 0)
    }

    /// Starts on the given port of 127.0.0.1 (0: any free port).
    pub fn start_on(cfg: ServerConfig, port: u16) -> io::Result<TdsServer> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            cfg,
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(1),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("tds-accept".into())
            .spawn(move || {
                for s in listener.incoming() {
                    if sh.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(s) = s else { continue };
                    let sh = sh.clone();
                    let id = sh.next_conn.fetch_add(1, Ordering::SeqCst);
                    let _ = std::thread::Builder::new()
                        .name(format!("tds-conn-{id}"))
                        .spawn(move || {
                            let _ = serve(sh, s, id);
                        });
                }
            })?;
        Ok(TdsServer { port, shared })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every SQL batch / RPC statement received so far, in arrival order.
    pub fn queries(&self) -> Vec<LoggedQuery> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Connections accepted so far (logged in or not).
    pub fn connections(&self) -> u64 {
        self.shared.next_conn.load(Ordering::SeqCst) - 1
    }

    /// Forgets the query log.
    pub fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// Arms a one-shot fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.lock().unwrap().push(fault);
    }
}

impl Drop for TdsServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop` and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one whole client message (packets up to end-of-message): (packet type, payload).
fn read_message(s: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut payload = Vec::new();
    loop {
        let mut h = [0u8; 8];
        s.read_exact(&mut h)?;
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        if len < 8 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad packet length",
            ));
        }
        let start = payload.len();
        payload.resize(start + len - 8, 0);
        s.read_exact(&mut payload[start..])?;
        if h[1] & 1 == 1 {
            return Ok((h[0], payload));
        }
    }
}

/// The request side of a connection after login: messages from the reader thread, and a
/// counter of Attention packets that the writer polls between packets.
pub(crate) struct Inbox {
    rx: mpsc::Receiver<(u8, Vec<u8>)>,
    pending: VecDeque<(u8, Vec<u8>)>,
}

fn serve(sh: Arc<Shared>, mut sock: TcpStream, conn: u64) -> io::Result<()> {
    sock.set_nodelay(true)?;
    // PRELOGIN
    let (ty, _pre) = read_message(&mut sock)?;
    if ty != 0x12 {
        return Ok(());
    }
    wire::send_prelogin(&mut sock)?;
    // LOGIN7
    let (ty, login) = read_message(&mut sock)?;
    if ty != 0x10 {
        return Ok(());
    }
    let login = wire::parse_login7(&login)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad LOGIN7"))?;
    let cap = sh.cfg.max_packet;
    let negotiated = {
        let req = if login.packet_size == 0 {
            4096
        } else {
            login.packet_size as usize
        };
        let req = cap.map_or(req, |c| req.min(c));
        req.clamp(512, 32767)
    };
    let packet = cap.map_or(negotiated, |c| c.min(negotiated)).max(64);
    let attn = Arc::new(AtomicU32::new(0));
    let mut out = wire::Out::new(sock.try_clone()?, packet, attn.clone());
    if !login.user.eq_ignore_ascii_case(&sh.cfg.user) || login.password != sh.cfg.password {
        out.error(
            18456,
            14,
            1,
            &format!("Login failed for user '{}'.", login.user),
        )?;
        out.done(0xFD, 0x02, 0, 0)?;
        out.finish()?;
        let _ = sock.shutdown(Shutdown::Both);
        return Ok(());
    }
    let version = if login.tds_version >= 0x7300_0000 && login.tds_version < 0x7400_0004 {
        login.tds_version
    } else {
        0x7400_0004
    };
    wire::send_login_ack(&mut out, &sh.cfg.database, negotiated, version)?;

    // Reader thread: forwards messages, counts Attention packets.
    let (tx, rx) = mpsc::channel();
    let mut rsock = sock.try_clone()?;
    let attn_r = attn.clone();
    std::thread::Builder::new()
        .name(format!("tds-read-{conn}"))
        .spawn(move || {
            while let Ok((ty, payload)) = read_message(&mut rsock) {
                if ty == 0x06 {
                    attn_r.fetch_add(1, Ordering::SeqCst);
                } else if tx.send((ty, payload)).is_err() {
                    break;
                }
            }
        })?;
    let mut inbox = Inbox {
        rx,
        pending: VecDeque::new(),
    };
    let mut session = sql::Session {
        shared_cfg: &sh.cfg,
        conn,
        log: &sh.log,
        faults: &sh.faults,
    };
    loop {
        let msg = match inbox.pending.pop_front() {
            Some(m) => m,
            None => match inbox.rx.recv_timeout(Duration::from_millis(20)) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if attn.swap(0, Ordering::SeqCst) > 0 {
                        // Attention after the response ended: acknowledge on its own.
                        out.done(0xFD, 0x20, 0, 0)?;
                        out.finish()?;
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            },
        };
        let (ty, payload) = msg;
        let keep = match ty {
            0x01 => session.batch(&mut out, &payload)?,
            0x03 => session.rpc(&mut out, &payload)?,
            0x0E => {
                wire::transaction_manager(&mut out, &payload)?;
                true
            }
            _ => {
                out.error(
                    4014,
                    20,
                    1,
                    &format!("Unsupported TDS packet type 0x{ty:02X}."),
                )?;
                out.done(0xFD, 0x02, 0, 0)?;
                out.finish()?;
                true
            }
        };
        if !keep {
            let _ = sock.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}
