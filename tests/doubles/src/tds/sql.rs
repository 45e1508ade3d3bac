//! The SQL the server understands: the exact statement shapes the connector sends (catalog
//! queries, key bounds, chunk boundaries, counts, data selects with range predicates) plus what
//! clients send on connect. A small tokenizer and recursive-descent parser turn a statement into
//! a plan; data plans stream generated rows, narrowing key-range predicates by binary search so
//! that a chunk of a huge table costs only its own rows.

use super::wire::{self, Out, Param};
use super::{
    Col, DAYS_1900, Fault, LoggedQuery, ServerConfig, SqlType, TICKS_PER_DAY, Table, Value,
    days_from_ymd, parse_guid, scale_of, str_slot,
};
use std::cmp::Ordering;
use std::io;
use std::ops::Range;
use std::sync::Mutex;

/// Per-connection request handling.
pub(crate) struct Session<'a> {
    pub shared_cfg: &'a ServerConfig,
    pub conn: u64,
    pub log: &'a Mutex<Vec<LoggedQuery>>,
    pub faults: &'a Mutex<Vec<Fault>>,
}

/// An error answered with an ERROR token.
#[derive(Debug)]
pub(crate) struct SqlError {
    number: u32,
    class: u8,
    msg: String,
}

fn err(number: u32, class: u8, msg: String) -> SqlError {
    SqlError { number, class, msg }
}

/// How an item of a select list is served.
#[derive(Clone, Debug, PartialEq)]
enum Conv {
    None,
    Cast(SqlType),
    StAsText,
}

struct Item {
    src: usize,
    conv: Conv,
}

enum Plan {
    /// DONE only.
    Ok,
    /// A small in-memory result.
    Rows(Vec<Col>, Vec<Vec<Value>>),
    /// Rows generated from a table.
    Scan(Scan),
}

struct Scan {
    table: usize,
    cols: Vec<Col>,
    items: Vec<Item>,
    range: Range<u64>,
    pred: Option<Expr>,
    /// 1 for data; the chunk step for the ROW_NUMBER boundary query.
    step: u64,
    drop_after: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
}

#[derive(Debug)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cmp {
        col: usize,
        scale: u8,
        op: Op,
        rhs: Value,
        rscale: u8,
    },
    IsNull {
        col: usize,
        not: bool,
    },
}

impl Session<'_> {
    fn cfg(&self) -> &ServerConfig {
        self.shared_cfg
    }

    /// SQL batch: ALL_HEADERS then UTF-16LE text. Returns false to close the connection.
    pub(crate) fn batch(&mut self, out: &mut Out, payload: &[u8]) -> io::Result<bool> {
        let skip = payload
            .get(0..4)
            .map(|h| u32::from_le_bytes(h.try_into().unwrap()) as usize)
            .filter(|&n| n >= 4 && n <= payload.len() && n < 1024)
            .unwrap_or(0);
        let units: Vec<u16> = payload[skip..]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let sql = String::from_utf16_lossy(&units);
        self.run(out, &sql, &[], false)
    }

    /// RPC: sp_executesql (id 10 or by name) runs its statement; other procedures just succeed.
    pub(crate) fn rpc(&mut self, out: &mut Out, payload: &[u8]) -> io::Result<bool> {
        let Some(rpc) = wire::parse_rpc(payload) else {
            out.error(
                8009,
                16,
                1,
                "The incoming RPC request could not be decoded.",
            )?;
            out.done(0xFE, 0x02, 0, 0)?;
            out.finish()?;
            return Ok(true);
        };
        let is_exec = rpc.proc_id == Some(10)
            || rpc.proc_name.eq_ignore_ascii_case("sp_executesql")
            || rpc.proc_name.eq_ignore_ascii_case("sys.sp_executesql");
        if !is_exec || rpc.params.is_empty() {
            out.u8(0x79)?;
            out.u32(0)?;
            out.done(0xFE, 0, 0, 0)?;
            out.finish()?;
            return Ok(true);
        }
        let sql = match &rpc.params[0].value {
            Value::Str(s) => s.clone(),
            _ => String::new(),
        };
        let params: Vec<Param> = rpc.params.into_iter().skip(2).collect();
        self.run(out, &sql, &params, true)
    }

    fn log_start(&self, sql: &str, params: &[Param]) -> usize {
        let shown: Vec<String> = params.iter().map(|p| display(&p.value, p.scale)).collect();
        if self.cfg().log_stderr {
            let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            if shown.is_empty() {
                eprintln!("[conn {}] {one_line}", self.conn);
            } else {
                eprintln!("[conn {}] {one_line} -- {}", self.conn, shown.join(", "));
            }
        }
        let mut log = self.log.lock().unwrap();
        log.push(LoggedQuery {
            conn: self.conn,
            sql: sql.to_string(),
            params: shown,
            rows_sent: 0,
            completed: false,
        });
        log.len() - 1
    }

    fn log_end(&self, idx: usize, sql: &str, rows: u64, completed: bool) {
        let mut log = self.log.lock().unwrap();
        if let Some(q) = log
            .get_mut(idx)
            .filter(|q| q.conn == self.conn && q.sql == sql)
        {
            q.rows_sent = rows;
            q.completed = completed;
        }
    }

    /// Ends a statement's response: DONE for a batch; DONEINPROC, RETURNSTATUS, DONEPROC for RPC.
    fn end(out: &mut Out, rpc: bool, status: u16, rows: Option<u64>) -> io::Result<()> {
        let (st, n) = match rows {
            Some(n) => (status | 0x10, n),
            None => (status, 0),
        };
        if rpc {
            if status & 0x02 == 0 {
                out.done(0xFF, st, 0xC1, n)?;
                out.u8(0x79)?;
                out.u32(0)?;
            }
            out.done(0xFE, status & 0x02, 0xE0, 0)?;
        } else {
            out.done(0xFD, st, 0xC1, n)?;
        }
        out.finish()
    }

    fn run(&mut self, out: &mut Out, sql: &str, params: &[Param], rpc: bool) -> io::Result<bool> {
        let idx = self.log_start(sql, params);
        // Armed error fault?
        let fault = {
            let mut f = self.faults.lock().unwrap();
            let upper = sql.to_uppercase();
            let pos = f.iter().position(|x| match x {
                Fault::Error { sql_contains, .. } => upper.contains(&sql_contains.to_uppercase()),
                _ => false,
            });
            pos.map(|p| f.remove(p))
        };
        if let Some(Fault::Error {
            number,
            class,
            message,
            ..
        }) = fault
        {
            out.error(number, class, 1, &message)?;
            Self::end(out, rpc, 0x02, None)?;
            self.log_end(idx, sql, 0, false);
            return Ok(true);
        }
        let plan = match self.plan(sql, params) {
            Ok(p) => p,
            Err(e) => {
                out.error(e.number, e.class, 1, &e.msg)?;
                Self::end(out, rpc, 0x02, None)?;
                self.log_end(idx, sql, 0, false);
                return Ok(true);
            }
        };
        let cfg = self.shared_cfg;
        let (sent, outcome, ended) = match plan {
            Plan::Ok => {
                Self::end(out, rpc, 0, None)?;
                (0, Outcome::Done, true)
            }
            Plan::Rows(cols, rows) => {
                wire::colmetadata(out, &cols, &cfg.database, ("dbo", ""))?;
                let mut sent = 0;
                let mut outcome = Outcome::Done;
                for r in &rows {
                    if out.attention() {
                        outcome = Outcome::Attention;
                        break;
                    }
                    wire::row(out, &cols, |i| &r[i])?;
                    sent += 1;
                }
                (sent, outcome, false)
            }
            Plan::Scan(scan) => {
                let (sent, outcome) = stream(out, &cfg.tables[scan.table], &cfg.database, &scan)?;
                (sent, outcome, false)
            }
        };
        match outcome {
            Outcome::Done => {
                if !ended {
                    Self::end(out, rpc, 0, Some(sent))?;
                }
                self.log_end(idx, sql, sent, true);
                Ok(true)
            }
            Outcome::Attention => {
                out.take_attention();
                out.done(0xFD, 0x20, 0, 0)?;
                out.finish()?;
                self.log_end(idx, sql, sent, false);
                Ok(true)
            }
            Outcome::Dropped => {
                self.log_end(idx, sql, sent, false);
                Ok(false)
            }
        }
    }
}

enum Outcome {
    Done,
    Attention,
    Dropped,
}

/// Streams a table scan: COLMETADATA then one ROW/NBCROW per matching row, stopping on Attention
/// or dropping the connection for an armed fault.
fn stream(out: &mut Out, table: &Table, db: &str, scan: &Scan) -> io::Result<(u64, Outcome)> {
    wire::colmetadata(out, &scan.cols, db, (&table.schema, &table.name))?;
    let mut buf = vec![Value::Null; table.columns.len()];
    let mut conv = vec![Value::Null; scan.items.len()];
    let plain = scan.items.iter().all(|it| it.conv == Conv::None);
    let fill: &super::RowFn = if scan.step > 1 {
        table.key.as_ref().unwrap_or(&table.row)
    } else {
        &table.row
    };
    let mut sent = 0u64;
    let mut i = scan.range.start;
    while i < scan.range.end {
        if out.attention() {
            return Ok((sent, Outcome::Attention));
        }
        fill(i, &mut buf);
        i += scan.step;
        if let Some(p) = &scan.pred
            && !eval(p, &buf)
        {
            continue;
        }
        if let Some(n) = scan.drop_after
            && sent >= n
        {
            out.drop_connection()?;
            return Ok((sent, Outcome::Dropped));
        }
        if plain {
            wire::row(out, &scan.cols, |k| &buf[scan.items[k].src])?;
        } else {
            for (k, it) in scan.items.iter().enumerate() {
                if it.conv != Conv::None {
                    convert(
                        &buf[it.src],
                        &table.columns[it.src].ty,
                        &scan.cols[k].ty,
                        &mut conv[k],
                    );
                }
            }
            wire::row(out, &scan.cols, |k| {
                let it = &scan.items[k];
                if it.conv == Conv::None {
                    &buf[it.src]
                } else {
                    &conv[k]
                }
            })?;
        }
        sent += 1;
    }
    if let Some(n) = scan.drop_after
        && sent >= n
    {
        out.drop_connection()?;
        return Ok((sent, Outcome::Dropped));
    }
    Ok((sent, Outcome::Done))
}

const POW10: [i128; 39] = {
    let mut p = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// Rescales an unscaled decimal, rounding half away from zero like SQL Server's CAST.
fn rescale(v: i128, from: u8, to: u8) -> i128 {
    if to >= from {
        v.saturating_mul(POW10[(to - from) as usize])
    } else {
        let d = POW10[(from - to) as usize];
        let q = v / d;
        let r = v % d;
        if r.abs() * 2 >= d { q + v.signum() } else { q }
    }
}

/// Converts a value for `CAST(col AS to)` / `.STAsText()`, reusing `dst`'s allocation.
fn convert(v: &Value, from: &SqlType, to: &SqlType, dst: &mut Value) {
    match (v, to) {
        (Value::Null, _) => *dst = Value::Null,
        (Value::Money(m), SqlType::Decimal(_, s) | SqlType::Numeric(_, s)) => {
            *dst = Value::Dec(rescale(*m as i128, 4, *s))
        }
        (Value::Dec(d), SqlType::Decimal(_, s) | SqlType::Numeric(_, s)) => {
            *dst = Value::Dec(rescale(*d, scale_of(from), *s))
        }
        (Value::Int(i), SqlType::Decimal(_, s) | SqlType::Numeric(_, s)) => {
            *dst = Value::Dec(rescale(*i as i128, 0, *s))
        }
        (_, SqlType::NVarChar(n) | SqlType::VarChar(n)) => {
            let text = match v {
                Value::Str(_) => None,
                other => Some(super::canonical(other, from).unwrap_or_default()),
            };
            let src: &str = match (v, &text) {
                (Value::Str(s), _) => s,
                (_, Some(t)) => t,
                _ => "",
            };
            let d = str_slot(dst);
            match n {
                Some(n) if src.encode_utf16().count() > *n as usize => {
                    let mut units = 0;
                    for c in src.chars() {
                        units += c.len_utf16();
                        if units > *n as usize {
                            break;
                        }
                        d.push(c);
                    }
                }
                _ => d.push_str(src),
            }
        }
        (Value::Bytes(b), _) => match dst {
            Value::Bytes(d) => {
                d.clear();
                d.extend_from_slice(b);
            }
            _ => *dst = Value::Bytes(b.clone()),
        },
        (other, _) => *dst = other.clone(),
    }
}

/// Display form of a parameter value for the query log.
fn display(v: &Value, scale: u8) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Dec(d) => super::dec_text(*d, scale),
        Value::Money(m) => super::dec_text(*m as i128, 4),
        Value::Str(s) => s.clone(),
        other => {
            let ty = match other {
                Value::DateTimeOffset { .. } => SqlType::DateTimeOffset(7),
                _ => SqlType::DateTime2(7),
            };
            super::canonical(other, &ty).unwrap_or_default()
        }
    }
}

// ---------------------------------------------------------------- catalog facts

/// sys.types facts of a type: (name, base type name, max_length, precision, scale).
pub(crate) fn catalog_type(ty: &SqlType) -> (&'static str, Option<&'static str>, i16, u8, u8) {
    let t = |n: &'static str, l: i16, p: u8, s: u8| (n, Some(n), l, p, s);
    let var = |n: Option<u16>, w: i16| n.map_or(-1, |n| n as i16 * w);
    match *ty {
        SqlType::Bit => t("bit", 1, 1, 0),
        SqlType::TinyInt => t("tinyint", 1, 3, 0),
        SqlType::SmallInt => t("smallint", 2, 5, 0),
        SqlType::Int => t("int", 4, 10, 0),
        SqlType::BigInt => t("bigint", 8, 19, 0),
        SqlType::Real => t("real", 4, 24, 0),
        SqlType::Float => t("float", 8, 53, 0),
        SqlType::Decimal(p, s) => t("decimal", wire::dec_len(p) as i16, p, s),
        SqlType::Numeric(p, s) => t("numeric", wire::dec_len(p) as i16, p, s),
        SqlType::Money => t("money", 8, 19, 4),
        SqlType::SmallMoney => t("smallmoney", 4, 10, 4),
        SqlType::Date => t("date", 3, 10, 0),
        SqlType::Time(s) => t("time", time_bytes(s), if s == 0 { 8 } else { 9 + s }, s),
        SqlType::DateTime => t("datetime", 8, 23, 3),
        SqlType::SmallDateTime => t("smalldatetime", 4, 16, 0),
        SqlType::DateTime2(s) => t(
            "datetime2",
            time_bytes(s) + 3,
            if s == 0 { 19 } else { 20 + s },
            s,
        ),
        SqlType::DateTimeOffset(s) => t(
            "datetimeoffset",
            time_bytes(s) + 5,
            if s == 0 { 26 } else { 27 + s },
            s,
        ),
        SqlType::Char(n) => t("char", n as i16, 0, 0),
        SqlType::VarChar(n) => t("varchar", var(n, 1), 0, 0),
        SqlType::Text => t("text", 16, 0, 0),
        SqlType::NChar(n) => t("nchar", n as i16 * 2, 0, 0),
        SqlType::NVarChar(n) => t("nvarchar", var(n, 2), 0, 0),
        SqlType::NText => t("ntext", 16, 0, 0),
        SqlType::Binary(n) => t("binary", n as i16, 0, 0),
        SqlType::VarBinary(n) => t("varbinary", var(n, 1), 0, 0),
        SqlType::Image => t("image", 16, 0, 0),
        SqlType::UniqueIdentifier => t("uniqueidentifier", 16, 0, 0),
        SqlType::RowVersion => t("timestamp", 8, 0, 0),
        SqlType::Xml => t("xml", -1, 0, 0),
        SqlType::HierarchyId => ("hierarchyid", None, 892, 0, 0),
        SqlType::Geography => ("geography", None, -1, 0, 0),
        SqlType::Geometry => ("geometry", None, -1, 0, 0),
        SqlType::SqlVariant => t("sql_variant", 8016, 0, 0),
    }
}

fn time_bytes(s: u8) -> i16 {
    match s {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

/// A plausible on-disk row size: fixed widths, half of declared variable widths (capped), row
/// overhead.
fn est_row_bytes(t: &Table) -> f64 {
    let mut b = 11.0;
    for c in &t.columns {
        let (_, _, len, _, _) = catalog_type(&c.ty);
        b += match c.ty {
            SqlType::VarChar(_) | SqlType::NVarChar(_) | SqlType::VarBinary(_) | SqlType::Xml => {
                if len < 0 {
                    200.0
                } else {
                    (len as f64 / 2.0).min(400.0) + 2.0
                }
            }
            SqlType::Text | SqlType::NText | SqlType::Image => 24.0,
            SqlType::Geography | SqlType::Geometry | SqlType::HierarchyId | SqlType::SqlVariant => {
                30.0
            }
            _ => len as f64,
        };
    }
    b
}

fn ncol(name: &str, ty: SqlType, nullable: bool) -> Col {
    Col::new(name, ty, nullable)
}

// ---------------------------------------------------------------- tokens

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// identifier; true when bracket- or quote-delimited
    Id(String, bool),
    Num(String),
    Str(String),
    Param(String),
    AtAt(String),
    P(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, SqlError> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut t = Vec::new();
    let syntax = |near: &str| err(102, 15, format!("Incorrect syntax near '{near}'."));
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '-' && c.get(i + 1) == Some(&'-') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '[' {
            let mut id = String::new();
            i += 1;
            loop {
                match c.get(i) {
                    None => return Err(syntax("[")),
                    Some(']') if c.get(i + 1) == Some(&']') => {
                        id.push(']');
                        i += 2;
                    }
                    Some(']') => {
                        i += 1;
                        break;
                    }
                    Some(x) => {
                        id.push(*x);
                        i += 1;
                    }
                }
            }
            t.push(Tok::Id(id, true));
        } else if ch == '"' {
            let mut id = String::new();
            i += 1;
            while i < c.len() && c[i] != '"' {
                id.push(c[i]);
                i += 1;
            }
            i += 1;
            t.push(Tok::Id(id, true));
        } else if ch == '\'' || ((ch == 'N' || ch == 'n') && c.get(i + 1) == Some(&'\'')) {
            if ch != '\'' {
                i += 1;
            }
            i += 1;
            let mut v = String::new();
            loop {
                match c.get(i) {
                    None => return Err(syntax("'")),
                    Some('\'') if c.get(i + 1) == Some(&'\'') => {
                        v.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(x) => {
                        v.push(*x);
                        i += 1;
                    }
                }
            }
            t.push(Tok::Str(v));
        } else if ch == '@' {
            let at2 = c.get(i + 1) == Some(&'@');
            i += if at2 { 2 } else { 1 };
            let st = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let name: String = c[st..i].iter().collect();
            t.push(if at2 {
                Tok::AtAt(name)
            } else {
                Tok::Param(name)
            });
        } else if ch.is_ascii_digit() {
            let st = i;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            t.push(Tok::Num(c[st..i].iter().collect()));
        } else if ch.is_alphabetic() || ch == '_' || ch == '#' {
            let st = i;
            while i < c.len()
                && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '#' || c[i] == '$')
            {
                i += 1;
            }
            t.push(Tok::Id(c[st..i].iter().collect(), false));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            let p = match two.as_str() {
                "<=" => Some("<="),
                ">=" => Some(">="),
                "<>" => Some("<>"),
                "!=" => Some("<>"),
                _ => None,
            };
            if let Some(p) = p {
                t.push(Tok::P(p));
                i += 2;
                continue;
            }
            let p = match ch {
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '.' => ".",
                '*' => "*",
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '%' => "%",
                '-' => "-",
                '+' => "+",
                ';' => ";",
                '/' => "/",
                _ => return Err(syntax(&ch.to_string())),
            };
            t.push(Tok::P(p));
            i += 1;
        }
    }
    Ok(t)
}

struct Parser<'a> {
    t: Vec<Tok>,
    p: usize,
    params: &'a [Param],
}

fn syntax_err(near: Option<&Tok>) -> SqlError {
    let n = match near {
        None => "end of statement".to_string(),
        Some(Tok::Id(s, _) | Tok::Num(s) | Tok::Str(s)) => s.clone(),
        Some(Tok::Param(s)) => format!("@{s}"),
        Some(Tok::AtAt(s)) => format!("@@{s}"),
        Some(Tok::P(p)) => p.to_string(),
    };
    err(102, 15, format!("Incorrect syntax near '{n}'."))
}

const RESERVED: [&str; 10] = [
    "FROM", "WHERE", "ORDER", "AS", "AND", "OR", "IS", "NOT", "NULL", "GROUP",
];

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.p)
    }
    fn is_kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Id(s, false)) if s.eq_ignore_ascii_case(k))
    }
    fn kw(&mut self, k: &str) -> bool {
        let y = self.is_kw(k);
        if y {
            self.p += 1;
        }
        y
    }
    fn expect_kw(&mut self, k: &str) -> Result<(), SqlError> {
        if self.kw(k) {
            Ok(())
        } else {
            Err(syntax_err(self.peek()))
        }
    }
    fn punct(&mut self, p: &str) -> bool {
        let y = matches!(self.peek(), Some(Tok::P(x)) if *x == p);
        if y {
            self.p += 1;
        }
        y
    }
    fn expect(&mut self, p: &str) -> Result<(), SqlError> {
        if self.punct(p) {
            Ok(())
        } else {
            Err(syntax_err(self.peek()))
        }
    }
    fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Tok::Id(s, _)) => {
                let s = s.clone();
                self.p += 1;
                Ok(s)
            }
            other => Err(syntax_err(other)),
        }
    }
    /// A possibly qualified name: the parts.
    fn name(&mut self) -> Result<Vec<String>, SqlError> {
        let mut parts = vec![self.ident()?];
        while matches!(self.peek(), Some(Tok::P(".")))
            && matches!(self.t.get(self.p + 1), Some(Tok::Id(..)))
        {
            // `[C].STAsText()` is a method call, not a qualified name.
            if let Some(Tok::Id(m, false)) = self.t.get(self.p + 1)
                && m.eq_ignore_ascii_case("STAsText")
            {
                break;
            }
            self.p += 1;
            parts.push(self.ident()?);
        }
        Ok(parts)
    }
    /// Skips a parenthesised group (the opening paren already consumed).
    fn skip_group(&mut self) -> Result<(), SqlError> {
        let mut depth = 1;
        while depth > 0 {
            match self.peek() {
                None => return Err(syntax_err(None)),
                Some(Tok::P("(")) => depth += 1,
                Some(Tok::P(")")) => depth -= 1,
                _ => {}
            }
            self.p += 1;
        }
        Ok(())
    }
    fn number(&mut self) -> Result<u64, SqlError> {
        match self.peek() {
            Some(Tok::Num(n)) => {
                let v = n.parse().map_err(|_| syntax_err(self.peek()))?;
                self.p += 1;
                Ok(v)
            }
            other => Err(syntax_err(other)),
        }
    }
    /// A type as written in CAST: `decimal(19,4)`, `nvarchar(max)`, `datetime2(7)`, ...
    fn sql_type(&mut self) -> Result<SqlType, SqlError> {
        let n = self.ident()?.to_lowercase();
        let mut args: Vec<Option<u64>> = Vec::new();
        if self.punct("(") {
            loop {
                if self.kw("max") {
                    args.push(None);
                } else {
                    args.push(Some(self.number()?));
                }
                if !self.punct(",") {
                    break;
                }
            }
            self.expect(")")?;
        }
        let a = |i: usize, d: u64| args.get(i).copied().flatten().unwrap_or(d);
        let len = |d: u64| match args.first() {
            Some(None) => None,
            Some(Some(n)) => Some(*n as u16),
            None => Some(d as u16),
        };
        Ok(match n.as_str() {
            "bit" => SqlType::Bit,
            "tinyint" => SqlType::TinyInt,
            "smallint" => SqlType::SmallInt,
            "int" => SqlType::Int,
            "bigint" => SqlType::BigInt,
            "real" => SqlType::Real,
            "float" => SqlType::Float,
            "decimal" | "dec" => SqlType::Decimal(a(0, 18) as u8, a(1, 0) as u8),
            "numeric" => SqlType::Numeric(a(0, 18) as u8, a(1, 0) as u8),
            "money" => SqlType::Money,
            "smallmoney" => SqlType::SmallMoney,
            "date" => SqlType::Date,
            "time" => SqlType::Time(a(0, 7) as u8),
            "datetime" => SqlType::DateTime,
            "smalldatetime" => SqlType::SmallDateTime,
            "datetime2" => SqlType::DateTime2(a(0, 7) as u8),
            "datetimeoffset" => SqlType::DateTimeOffset(a(0, 7) as u8),
            "char" => SqlType::Char(a(0, 1) as u16),
            "varchar" => SqlType::VarChar(len(1)),
            "nchar" => SqlType::NChar(a(0, 1) as u16),
            "nvarchar" | "sysname" => SqlType::NVarChar(len(if n == "sysname" { 128 } else { 1 })),
            "binary" => SqlType::Binary(a(0, 1) as u16),
            "varbinary" => SqlType::VarBinary(len(1)),
            "uniqueidentifier" => SqlType::UniqueIdentifier,
            "text" => SqlType::Text,
            "ntext" => SqlType::NText,
            "image" => SqlType::Image,
            "xml" => SqlType::Xml,
            _ => {
                return Err(err(
                    243,
                    16,
                    format!("Type {n} is not a defined system type."),
                ));
            }
        })
    }
    fn param(&self, name: &str) -> Result<&Param, SqlError> {
        let want = format!("@{name}");
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(&want))
            .or_else(|| {
                // Positional fallback: @P<n>
                name.get(1..)
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| self.params.get(n.wrapping_sub(1)))
            })
            .ok_or_else(|| {
                err(
                    137,
                    15,
                    format!("Must declare the scalar variable \"@{name}\"."),
                )
            })
    }
}

/// A select-list item before columns are resolved.
enum Raw {
    Star,
    Col(String),
    Cast(String, SqlType),
    StAsText(String),
    Min(String),
    Max(String),
    CountBig,
    RowNumber,
    Const(Value, SqlType),
}

fn parse_item(ps: &mut Parser) -> Result<(Raw, Option<String>), SqlError> {
    let raw = if ps.punct("*") {
        Raw::Star
    } else if ps.is_kw("CAST") && matches!(ps.t.get(ps.p + 1), Some(Tok::P("("))) {
        ps.p += 2;
        let c = ps.name()?.pop().unwrap();
        ps.expect_kw("AS")?;
        let ty = ps.sql_type()?;
        ps.expect(")")?;
        Raw::Cast(c, ty)
    } else if (ps.is_kw("MIN") || ps.is_kw("MAX"))
        && matches!(ps.t.get(ps.p + 1), Some(Tok::P("(")))
    {
        let is_min = ps.is_kw("MIN");
        ps.p += 2;
        let c = ps.name()?.pop().unwrap();
        ps.expect(")")?;
        if is_min { Raw::Min(c) } else { Raw::Max(c) }
    } else if (ps.is_kw("COUNT_BIG") || ps.is_kw("COUNT"))
        && matches!(ps.t.get(ps.p + 1), Some(Tok::P("(")))
    {
        ps.p += 2;
        ps.expect("*")?;
        ps.expect(")")?;
        Raw::CountBig
    } else if ps.is_kw("ROW_NUMBER") {
        ps.p += 1;
        ps.expect("(")?;
        ps.expect(")")?;
        ps.expect_kw("OVER")?;
        ps.expect("(")?;
        ps.skip_group()?;
        Raw::RowNumber
    } else {
        match ps.peek().cloned() {
            Some(Tok::Num(n)) => {
                ps.p += 1;
                match n.parse::<i64>() {
                    Ok(i) => Raw::Const(Value::Int(i), SqlType::Int),
                    Err(_) => Raw::Const(Value::F64(n.parse().unwrap_or(0.0)), SqlType::Float),
                }
            }
            Some(Tok::P("-")) => {
                ps.p += 1;
                let n = ps.number()? as i64;
                Raw::Const(Value::Int(-n), SqlType::Int)
            }
            Some(Tok::Str(s)) => {
                ps.p += 1;
                let n = s.chars().count().max(1) as u16;
                Raw::Const(Value::Str(s), SqlType::NVarChar(Some(n)))
            }
            Some(Tok::AtAt(v)) => {
                ps.p += 1;
                at_at(&v)
            }
            Some(Tok::Id(..)) => {
                let c = ps.name()?.pop().unwrap();
                if ps.punct(".") {
                    let m = ps.ident()?;
                    if !m.eq_ignore_ascii_case("STAsText") {
                        return Err(syntax_err(None));
                    }
                    ps.expect("(")?;
                    ps.expect(")")?;
                    Raw::StAsText(c)
                } else {
                    Raw::Col(c)
                }
            }
            other => return Err(syntax_err(other.as_ref())),
        }
    };
    let alias = if ps.kw("AS") {
        Some(ps.ident()?)
    } else {
        match ps.peek() {
            Some(Tok::Id(s, q)) if *q || !RESERVED.iter().any(|r| s.eq_ignore_ascii_case(r)) => {
                Some(ps.ident()?)
            }
            _ => None,
        }
    };
    Ok((raw, alias))
}

fn at_at(v: &str) -> Raw {
    let s = |x: &str| {
        Raw::Const(
            Value::Str(x.to_string()),
            SqlType::NVarChar(Some(x.chars().count() as u16)),
        )
    };
    match v.to_ascii_uppercase().as_str() {
        "VERSION" => {
            s("Microsoft SQL Server 2022 (RTM-CU12) - 16.0.4120.1 (X64) (dag TDS test server)")
        }
        "SERVERNAME" => s("dagtds"),
        "LANGUAGE" => s("us_english"),
        "SPID" => Raw::Const(Value::Int(51), SqlType::SmallInt),
        "MAX_PRECISION" => Raw::Const(Value::Int(38), SqlType::TinyInt),
        "TEXTSIZE" => Raw::Const(Value::Int(2147483647), SqlType::Int),
        _ => Raw::Const(Value::Int(0), SqlType::Int),
    }
}

// ---------------------------------------------------------------- planning

impl Session<'_> {
    fn find_table(&self, parts: &[String]) -> Result<usize, SqlError> {
        let (schema, name) = match parts {
            [n] => ("dbo", n.as_str()),
            [.., s, n] => (s.as_str(), n.as_str()),
            [] => return Err(syntax_err(None)),
        };
        self.cfg()
            .tables
            .iter()
            .position(|t| {
                t.schema.eq_ignore_ascii_case(schema) && t.name.eq_ignore_ascii_case(name)
            })
            .ok_or_else(|| {
                err(
                    208,
                    16,
                    format!("Invalid object name '{}'.", parts.join(".")),
                )
            })
    }

    fn plan(&mut self, sql: &str, params: &[Param]) -> Result<Plan, SqlError> {
        let upper = sql.to_uppercase();
        let trimmed = upper.trim().trim_end_matches(';').trim();
        if trimmed.is_empty() {
            return Ok(Plan::Ok);
        }
        if upper.contains("SYS.DM_DB_PARTITION_STATS") || upper.contains("SYS.PARTITIONS") {
            let dmv = upper.contains("SYS.DM_DB_PARTITION_STATS");
            if dmv && self.cfg().deny_dmv {
                return Err(err(
                    300,
                    14,
                    format!(
                        "VIEW DATABASE STATE permission denied in database '{}'.",
                        self.cfg().database
                    ),
                ));
            }
            return Ok(self.tables_query(params, dmv));
        }
        if upper.contains("IS_PRIMARY_KEY") {
            return self.pk_query(params);
        }
        if upper.contains("SYS.COLUMNS") {
            return self.columns_query(params);
        }
        if !trimmed.starts_with("SELECT") {
            // SET ..., USE, BEGIN/COMMIT, IF ...: nothing to do.
            return Ok(Plan::Ok);
        }
        let mut ps = Parser {
            t: tokenize(sql)?,
            p: 0,
            params,
        };
        self.select(&mut ps)
    }

    fn object_param(&self, params: &[Param]) -> Option<usize> {
        let Value::Str(s) = &params.first()?.value else {
            return None;
        };
        let t = tokenize(s).ok()?;
        let parts: Vec<String> = t
            .into_iter()
            .filter_map(|t| match t {
                Tok::Id(s, _) => Some(s),
                _ => None,
            })
            .collect();
        self.find_table(&parts).ok()
    }

    fn tables_query(&self, params: &[Param], dmv: bool) -> Plan {
        let schema = match params.first().map(|p| &p.value) {
            Some(Value::Str(s)) => s.clone(),
            _ => "dbo".into(),
        };
        let cols = vec![
            ncol("schema_name", SqlType::NVarChar(Some(128)), false),
            ncol("table_name", SqlType::NVarChar(Some(128)), false),
            ncol("row_count", SqlType::BigInt, true),
            ncol("avg_row_bytes", SqlType::Float, true),
        ];
        let mut ts: Vec<&Table> = self
            .cfg()
            .tables
            .iter()
            .filter(|t| t.schema.eq_ignore_ascii_case(&schema))
            .collect();
        ts.sort_by(|a, b| a.name.cmp(&b.name));
        let rows = ts
            .into_iter()
            .map(|t| {
                let avg = if dmv && t.rows > 0 {
                    Value::F64(est_row_bytes(t))
                } else {
                    Value::Null
                };
                vec![
                    Value::Str(t.schema.clone()),
                    Value::Str(t.name.clone()),
                    Value::Int(t.rows as i64),
                    avg,
                ]
            })
            .collect();
        Plan::Rows(cols, rows)
    }

    fn columns_query(&self, params: &[Param]) -> Result<Plan, SqlError> {
        let cols = vec![
            ncol("column_id", SqlType::Int, false),
            ncol("name", SqlType::NVarChar(Some(128)), true),
            ncol("type_name", SqlType::NVarChar(Some(128)), false),
            ncol("base_type", SqlType::NVarChar(Some(128)), true),
            ncol("max_length", SqlType::SmallInt, false),
            ncol("precision", SqlType::TinyInt, false),
            ncol("scale", SqlType::TinyInt, false),
            ncol("is_nullable", SqlType::Bit, true),
            ncol("is_identity", SqlType::Bit, false),
            ncol("is_computed", SqlType::Bit, false),
        ];
        let mut rows = Vec::new();
        if let Some(ti) = self.object_param(params) {
            for (i, c) in self.cfg().tables[ti].columns.iter().enumerate() {
                let (name, base, len, p, s) = catalog_type(&c.ty);
                rows.push(vec![
                    Value::Int(i as i64 + 1),
                    Value::Str(c.name.clone()),
                    Value::Str(name.into()),
                    base.map_or(Value::Null, |b| Value::Str(b.into())),
                    Value::Int(len as i64),
                    Value::Int(p as i64),
                    Value::Int(s as i64),
                    Value::Bool(c.nullable),
                    Value::Bool(c.identity),
                    Value::Bool(c.computed),
                ]);
            }
        }
        Ok(Plan::Rows(cols, rows))
    }

    fn pk_query(&self, params: &[Param]) -> Result<Plan, SqlError> {
        let cols = vec![
            ncol("key_ordinal", SqlType::TinyInt, false),
            ncol("name", SqlType::NVarChar(Some(128)), true),
        ];
        let mut rows = Vec::new();
        if let Some(ti) = self.object_param(params) {
            for (i, k) in self.cfg().tables[ti].primary_key.iter().enumerate() {
                rows.push(vec![Value::Int(i as i64 + 1), Value::Str(k.clone())]);
            }
        }
        Ok(Plan::Rows(cols, rows))
    }

    fn select(&mut self, ps: &mut Parser) -> Result<Plan, SqlError> {
        ps.expect_kw("SELECT")?;
        let mut top: Option<u64> = None;
        if ps.kw("TOP") {
            let paren = ps.punct("(");
            top = Some(ps.number()?);
            if paren {
                ps.expect(")")?;
            }
        }
        let mut raws = vec![parse_item(ps)?];
        while ps.punct(",") {
            raws.push(parse_item(ps)?);
        }
        if !ps.kw("FROM") {
            // Constant select: SELECT 1, SELECT @@VERSION, ...
            let mut cols = Vec::new();
            let mut row = Vec::new();
            for (r, alias) in raws {
                let Raw::Const(v, ty) = r else {
                    return Err(err(207, 16, "Invalid column name.".into()));
                };
                cols.push(ncol(alias.as_deref().unwrap_or(""), ty, true));
                row.push(v);
            }
            return Ok(Plan::Rows(cols, vec![row]));
        }
        // FROM ( SELECT ..., ROW_NUMBER() OVER (...) AS rn FROM t ) AS x WHERE (x.rn - 1) % @P = 0
        let mut step = 1u64;
        let ti;
        if ps.punct("(") {
            ps.expect_kw("SELECT")?;
            loop {
                parse_item(ps)?;
                if !ps.punct(",") {
                    break;
                }
            }
            ps.expect_kw("FROM")?;
            ti = self.find_table(&ps.name()?)?;
            ps.expect(")")?;
            ps.kw("AS");
            ps.ident()?;
            ps.expect_kw("WHERE")?;
            while !ps.punct("%") {
                if ps.peek().is_none() {
                    return Err(syntax_err(None));
                }
                ps.p += 1;
            }
            step = match ps.peek().cloned() {
                Some(Tok::Param(n)) => {
                    ps.p += 1;
                    match ps.param(&n)?.value {
                        Value::Int(i) if i > 0 => i as u64,
                        _ => return Err(err(8134, 16, "Divide by zero error encountered.".into())),
                    }
                }
                Some(Tok::Num(_)) => ps.number()?.max(1),
                other => return Err(syntax_err(other.as_ref())),
            };
            ps.expect("=")?;
            ps.number()?;
        } else {
            ti = self.find_table(&ps.name()?)?;
            // optional table alias
            if ps.kw("AS")
                || matches!(ps.peek(), Some(Tok::Id(s, false)) if !RESERVED.iter().any(|r| s.eq_ignore_ascii_case(r)))
            {
                ps.ident()?;
            }
        }
        let table = &self.cfg().tables[ti];
        let colidx = |name: &str| -> Result<usize, SqlError> {
            table
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| err(207, 16, format!("Invalid column name '{name}'.")))
        };
        let pred = if ps.kw("WHERE") {
            Some(parse_or(ps, table, &colidx)?)
        } else {
            None
        };
        if ps.kw("ORDER") {
            ps.expect_kw("BY")?;
            loop {
                let n = ps.name()?.pop().unwrap();
                colidx(&n)?;
                let _ = ps.kw("ASC") || ps.kw("DESC");
                if !ps.punct(",") {
                    break;
                }
            }
        }
        ps.punct(";");
        if ps.peek().is_some() {
            return Err(syntax_err(ps.peek()));
        }

        // Aggregates: MIN/MAX/COUNT_BIG
        let aggregate = raws
            .iter()
            .any(|(r, _)| matches!(r, Raw::Min(_) | Raw::Max(_) | Raw::CountBig));
        let n = table.rows;
        let (range, exact) = narrow(table, pred.as_ref());
        if aggregate {
            let mut cols = Vec::new();
            let mut row = Vec::new();
            let count = if exact {
                range.end - range.start
            } else {
                let mut buf = vec![Value::Null; table.columns.len()];
                let mut c = 0;
                for i in range.clone() {
                    (table.row)(i, &mut buf);
                    if pred.as_ref().is_none_or(|p| eval(p, &buf)) {
                        c += 1;
                    }
                }
                c
            };
            let fill = table.key.as_ref().unwrap_or(&table.row);
            for (r, alias) in &raws {
                match r {
                    Raw::CountBig => {
                        cols.push(ncol(alias.as_deref().unwrap_or(""), SqlType::BigInt, true));
                        row.push(Value::Int(count as i64));
                    }
                    Raw::Min(c) | Raw::Max(c) => {
                        let ci = colidx(c)?;
                        let col = &table.columns[ci];
                        cols.push(ncol(alias.as_deref().unwrap_or(""), col.ty, true));
                        let first_key = table
                            .primary_key
                            .first()
                            .is_some_and(|k| k.eq_ignore_ascii_case(&col.name));
                        if n == 0 || pred.is_some() || !first_key {
                            // General path: scan (small tables / tests only).
                            let mut best: Option<Value> = None;
                            let mut buf = vec![Value::Null; table.columns.len()];
                            for i in range.clone() {
                                (table.row)(i, &mut buf);
                                if pred.as_ref().is_some_and(|p| !eval(p, &buf)) {
                                    continue;
                                }
                                let v = &buf[ci];
                                if matches!(v, Value::Null) {
                                    continue;
                                }
                                let s = scale_of(&col.ty);
                                let better = match &best {
                                    None => true,
                                    Some(b) => {
                                        let o = cmp_values(v, s, b, s);
                                        if matches!(r, Raw::Min(_)) {
                                            o == Some(Ordering::Less)
                                        } else {
                                            o == Some(Ordering::Greater)
                                        }
                                    }
                                };
                                if better {
                                    best = Some(v.clone());
                                }
                            }
                            row.push(best.unwrap_or(Value::Null));
                        } else {
                            let mut buf = vec![Value::Null; table.columns.len()];
                            fill(if matches!(r, Raw::Min(_)) { 0 } else { n - 1 }, &mut buf);
                            row.push(buf[ci].clone());
                        }
                    }
                    _ => return Err(err(8120, 16, "Column is invalid in the select list because it is not contained in an aggregate function.".into())),
                }
            }
            return Ok(Plan::Rows(cols, vec![row]));
        }

        // Data
        let mut cols = Vec::new();
        let mut items = Vec::new();
        for (r, alias) in &raws {
            match r {
                Raw::Star => {
                    for (i, c) in table.columns.iter().enumerate() {
                        cols.push(c.clone());
                        items.push(Item {
                            src: i,
                            conv: Conv::None,
                        });
                    }
                }
                Raw::Col(c) => {
                    let i = colidx(c)?;
                    let mut col = table.columns[i].clone();
                    if let Some(a) = alias {
                        col.name = a.clone();
                    }
                    cols.push(col);
                    items.push(Item {
                        src: i,
                        conv: Conv::None,
                    });
                }
                Raw::Cast(c, ty) => {
                    let i = colidx(c)?;
                    let src = &table.columns[i];
                    let mut col = Col::new(alias.as_deref().unwrap_or(""), *ty, src.nullable);
                    col.computed = src.computed;
                    cols.push(col);
                    items.push(Item {
                        src: i,
                        conv: Conv::Cast(*ty),
                    });
                }
                Raw::StAsText(c) => {
                    let i = colidx(c)?;
                    let src = &table.columns[i];
                    if !matches!(src.ty, SqlType::Geography | SqlType::Geometry) {
                        return Err(err(
                            258,
                            15,
                            format!("Cannot call methods on {}.", super::type_sql(&src.ty)),
                        ));
                    }
                    cols.push(Col::new(
                        alias.as_deref().unwrap_or(""),
                        SqlType::NVarChar(None),
                        true,
                    ));
                    items.push(Item {
                        src: i,
                        conv: Conv::StAsText,
                    });
                }
                Raw::RowNumber | Raw::Const(..) => {
                    return Err(err(
                        4104,
                        16,
                        "Only column selects are supported by the test server.".into(),
                    ));
                }
                _ => unreachable!(),
            }
        }
        let mut range = range;
        if let Some(t) = top {
            range.end = range.end.min(range.start + t);
        }
        // A DropAfterRows fault armed for this table fires on this data query.
        let drop_after = if step == 1 {
            let mut f = self.faults.lock().unwrap();
            let full = format!("{}.{}", table.schema, table.name);
            let pos = f.iter().position(|x| match x {
                Fault::DropAfterRows { table: t, .. } => {
                    t.eq_ignore_ascii_case(&table.name) || t.eq_ignore_ascii_case(&full)
                }
                _ => false,
            });
            pos.map(|p| match f.remove(p) {
                Fault::DropAfterRows { rows, .. } => rows,
                _ => unreachable!(),
            })
        } else {
            None
        };
        Ok(Plan::Scan(Scan {
            table: ti,
            cols,
            items,
            range,
            pred: if exact { None } else { pred },
            step,
            drop_after,
        }))
    }
}

// ---------------------------------------------------------------- predicates

fn parse_or(
    ps: &mut Parser,
    table: &Table,
    colidx: &dyn Fn(&str) -> Result<usize, SqlError>,
) -> Result<Expr, SqlError> {
    let mut v = vec![parse_and(ps, table, colidx)?];
    while ps.kw("OR") {
        v.push(parse_and(ps, table, colidx)?);
    }
    Ok(if v.len() == 1 {
        v.pop().unwrap()
    } else {
        Expr::Or(v)
    })
}

fn parse_and(
    ps: &mut Parser,
    table: &Table,
    colidx: &dyn Fn(&str) -> Result<usize, SqlError>,
) -> Result<Expr, SqlError> {
    let mut v = vec![parse_atom(ps, table, colidx)?];
    while ps.kw("AND") {
        v.push(parse_atom(ps, table, colidx)?);
    }
    Ok(if v.len() == 1 {
        v.pop().unwrap()
    } else {
        Expr::And(v)
    })
}

fn parse_atom(
    ps: &mut Parser,
    table: &Table,
    colidx: &dyn Fn(&str) -> Result<usize, SqlError>,
) -> Result<Expr, SqlError> {
    if ps.punct("(") {
        let e = parse_or(ps, table, colidx)?;
        ps.expect(")")?;
        return Ok(e);
    }
    let name = ps.name()?.pop().unwrap();
    let col = colidx(&name)?;
    if ps.kw("IS") {
        let not = ps.kw("NOT");
        ps.expect_kw("NULL")?;
        return Ok(Expr::IsNull { col, not });
    }
    let op = match ps.peek() {
        Some(Tok::P("=")) => Op::Eq,
        Some(Tok::P("<")) => Op::Lt,
        Some(Tok::P("<=")) => Op::Le,
        Some(Tok::P(">")) => Op::Gt,
        Some(Tok::P(">=")) => Op::Ge,
        Some(Tok::P("<>")) => Op::Ne,
        other => return Err(syntax_err(other)),
    };
    ps.p += 1;
    let cty = table.columns[col].ty;
    let (rhs, rscale) = match ps.peek().cloned() {
        Some(Tok::Param(n)) => {
            ps.p += 1;
            let p = ps.param(&n)?;
            coerce(&p.value, p.scale, &cty)
        }
        Some(Tok::Id(k, false)) if k.eq_ignore_ascii_case("CAST") => {
            ps.p += 1;
            ps.expect("(")?;
            let (v, s) = match ps.peek().cloned() {
                Some(Tok::Param(n)) => {
                    ps.p += 1;
                    let p = ps.param(&n)?;
                    (p.value.clone(), p.scale)
                }
                Some(Tok::Str(s)) => {
                    ps.p += 1;
                    (Value::Str(s), 0)
                }
                other => return Err(syntax_err(other.as_ref())),
            };
            ps.expect_kw("AS")?;
            let ty = ps.sql_type()?;
            ps.expect(")")?;
            let (v, s) = coerce(&v, s, &ty);
            coerce(&v, s, &cty)
        }
        Some(Tok::Str(s)) => {
            ps.p += 1;
            coerce(&Value::Str(s), 0, &cty)
        }
        Some(Tok::Num(n)) => {
            ps.p += 1;
            let (v, s) = parse_dec(&n).unwrap_or((0, 0));
            (Value::Dec(v), s)
        }
        Some(Tok::P("-")) => {
            ps.p += 1;
            let n = match ps.peek() {
                Some(Tok::Num(n)) => n.clone(),
                other => return Err(syntax_err(other)),
            };
            ps.p += 1;
            let (v, s) = parse_dec(&n).unwrap_or((0, 0));
            (Value::Dec(-v), s)
        }
        other => return Err(syntax_err(other.as_ref())),
    };
    Ok(Expr::Cmp {
        col,
        scale: scale_of(&cty),
        op,
        rhs,
        rscale,
    })
}

/// Parses decimal text into (unscaled, scale).
fn parse_dec(s: &str) -> Option<(i128, u8)> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    if i.is_empty() && f.is_empty() {
        return None;
    }
    let digits = format!("{i}{f}");
    if !digits.chars().all(|c| c.is_ascii_digit()) || f.len() > 38 {
        return None;
    }
    let v: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some((if neg { -v } else { v }, f.len() as u8))
}

fn num2(s: &str) -> Option<u32> {
    s.parse().ok()
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.fffffff]]][ ][+-HH:MM]` into (days, ticks, offset minutes).
fn parse_datetime(s: &str) -> Option<(u32, u64, Option<i16>)> {
    let s = s.trim();
    let date = s.get(..10)?;
    let mut it = date.split('-');
    let (y, m, d) = (
        it.next()?.parse::<i64>().ok()?,
        num2(it.next()?)?,
        num2(it.next()?)?,
    );
    let days = days_from_ymd(y, m, d) as u32;
    let rest = s[10..].trim_start_matches(['T', ' ']);
    if rest.is_empty() {
        return Some((days, 0, None));
    }
    let (time, off) = match rest.find(['+', '-']) {
        Some(p) => (rest[..p].trim(), Some(rest[p..].trim())),
        None => (rest.trim(), None),
    };
    let ticks = parse_time(time)?;
    let off = match off {
        None => None,
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (h, mi) = o[1..].split_once(':')?;
            Some(sign * (h.parse::<i16>().ok()? * 60 + mi.parse::<i16>().ok()?))
        }
    };
    Some((days, ticks, off))
}

fn parse_time(t: &str) -> Option<u64> {
    let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut p = hms.split(':');
    let h = p.next()?.parse::<u64>().ok()?;
    let m = p.next()?.parse::<u64>().ok()?;
    let s = p.next().map_or(Some(0), |x| x.parse::<u64>().ok())?;
    let mut f = frac.to_string();
    f.truncate(7);
    while f.len() < 7 {
        f.push('0');
    }
    Some((h * 3600 + m * 60 + s) * 10_000_000 + f.parse::<u64>().ok()?)
}

/// Converts an operand (a parameter, typically text) to a column's type domain: (value, scale).
fn coerce(v: &Value, scale: u8, ty: &SqlType) -> (Value, u8) {
    let Value::Str(s) = v else {
        return (v.clone(), scale);
    };
    let parsed = match ty {
        SqlType::Decimal(..) | SqlType::Numeric(..) | SqlType::Money | SqlType::SmallMoney => {
            parse_dec(s).map(|(u, sc)| (Value::Dec(u), sc))
        }
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
            s.trim().parse::<i64>().ok().map(|i| (Value::Int(i), 0))
        }
        SqlType::Bit => match s.trim() {
            "1" | "true" | "TRUE" => Some((Value::Bool(true), 0)),
            "0" | "false" | "FALSE" => Some((Value::Bool(false), 0)),
            _ => None,
        },
        SqlType::Real | SqlType::Float => s.trim().parse::<f64>().ok().map(|f| (Value::F64(f), 0)),
        SqlType::Date => parse_datetime(s).map(|(d, _, _)| (Value::Date(d), 0)),
        SqlType::Time(_) => parse_time(s.trim()).map(|t| (Value::Time(t), 0)),
        SqlType::DateTime | SqlType::SmallDateTime | SqlType::DateTime2(_) => {
            parse_datetime(s).map(|(days, ticks, _)| (Value::DateTime2 { days, ticks }, 0))
        }
        SqlType::DateTimeOffset(_) => parse_datetime(s).map(|(days, ticks, off)| {
            let off = off.unwrap_or(0);
            let utc = days as i64 * TICKS_PER_DAY as i64 + ticks as i64 - off as i64 * 600_000_000;
            (
                Value::DateTimeOffset {
                    days: utc.div_euclid(TICKS_PER_DAY as i64) as u32,
                    ticks: utc.rem_euclid(TICKS_PER_DAY as i64) as u64,
                    offset_min: off,
                },
                0,
            )
        }),
        SqlType::UniqueIdentifier => parse_guid(s).map(|g| (Value::Guid(g), 0)),
        _ => None,
    };
    parsed.unwrap_or_else(|| (v.clone(), scale))
}

/// (days since 0001-01-01, 100 ns ticks) of a date/time value, UTC for datetimeoffset.
fn instant(v: &Value) -> Option<(i64, u64)> {
    Some(match *v {
        Value::Date(d) => (d as i64, 0),
        Value::Time(t) => (0, t),
        Value::DateTime2 { days, ticks } => (days as i64, ticks),
        Value::DateTimeOffset { days, ticks, .. } => (days as i64, ticks),
        Value::DateTime { days, ticks300 } => (
            DAYS_1900 + days as i64,
            (ticks300 as u64 * 10_000_000).div_ceil(300),
        ),
        Value::SmallDateTime { days, minutes } => {
            (DAYS_1900 + days as i64, minutes as u64 * 600_000_000)
        }
        _ => return None,
    })
}

fn num(v: &Value, scale: u8) -> Option<(i128, u8)> {
    Some(match *v {
        Value::Int(i) => (i as i128, 0),
        Value::Bool(b) => (b as i128, 0),
        Value::Dec(d) => (d, scale),
        Value::Money(m) => (m as i128, 4),
        _ => return None,
    })
}

fn as_f64(v: &Value, scale: u8) -> Option<f64> {
    match *v {
        Value::F32(f) => Some(f as f64),
        Value::F64(f) => Some(f),
        _ => num(v, scale).map(|(u, s)| u as f64 / 10f64.powi(s as i32)),
    }
}

/// SQL Server's uniqueidentifier sort order, over the .NET byte layout: bytes 10..16, 8..10,
/// 6..8, 4..6, 0..4.
fn guid_sort_key(g: &[u8; 16]) -> [u8; 16] {
    let w = wire::guid_wire(g);
    let order = [10, 11, 12, 13, 14, 15, 8, 9, 6, 7, 4, 5, 0, 1, 2, 3];
    let mut k = [0u8; 16];
    for (i, o) in order.iter().enumerate() {
        k[i] = w[*o];
    }
    k
}

/// Compares two values (NULL: unknown). Integers and decimals by value, strings by UTF-16 code
/// units (binary), dates chronologically.
fn cmp_values(a: &Value, ascale: u8, b: &Value, bscale: u8) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Str(x), Value::Str(y)) => Some(x.encode_utf16().cmp(y.encode_utf16())),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
        // rowversion against bigint: SQL Server converts the 8 bytes (big-endian) to bigint.
        (Value::Bytes(x), Value::Int(y)) if x.len() == 8 => {
            Some(i64::from_be_bytes(x[..].try_into().ok()?).cmp(y))
        }
        (Value::Int(x), Value::Bytes(y)) if y.len() == 8 => {
            Some(x.cmp(&i64::from_be_bytes(y[..].try_into().ok()?)))
        }
        (Value::Guid(x), Value::Guid(y)) => Some(guid_sort_key(x).cmp(&guid_sort_key(y))),
        (Value::F32(_) | Value::F64(_), _) | (_, Value::F32(_) | Value::F64(_)) => {
            as_f64(a, ascale)?.partial_cmp(&as_f64(b, bscale)?)
        }
        _ => {
            if let (Some((x, xs)), Some((y, ys))) = (num(a, ascale), num(b, bscale)) {
                let s = xs.max(ys);
                match (
                    x.checked_mul(POW10[(s - xs) as usize]),
                    y.checked_mul(POW10[(s - ys) as usize]),
                ) {
                    (Some(x), Some(y)) => Some(x.cmp(&y)),
                    _ => as_f64(a, ascale)?.partial_cmp(&as_f64(b, bscale)?),
                }
            } else {
                Some(instant(a)?.cmp(&instant(b)?))
            }
        }
    }
}

fn eval(e: &Expr, row: &[Value]) -> bool {
    match e {
        Expr::And(v) => v.iter().all(|x| eval(x, row)),
        Expr::Or(v) => v.iter().any(|x| eval(x, row)),
        Expr::IsNull { col, not } => matches!(row[*col], Value::Null) != *not,
        Expr::Cmp {
            col,
            scale,
            op,
            rhs,
            rscale,
        } => match cmp_values(&row[*col], *scale, rhs, *rscale) {
            None => false,
            Some(o) => match op {
                Op::Eq => o == Ordering::Equal,
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                Op::Ge => o != Ordering::Less,
                Op::Ne => o != Ordering::Equal,
            },
        },
    }
}

/// `<>` makes a predicate non-monotone in key order.
fn has_ne(e: &Expr) -> bool {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().any(has_ne),
        Expr::Cmp { op, .. } => *op == Op::Ne,
        Expr::IsNull { .. } => false,
    }
}

fn cols_of(e: &Expr, out: &mut Vec<usize>) {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|x| cols_of(x, out)),
        Expr::IsNull { col, .. } | Expr::Cmp { col, .. } => out.push(*col),
    }
}

/// The row range a predicate can match, found by binary search with the cheap key function, and
/// whether that range is exact (every conjunct was a key-range bound, so no per-row filter is
/// needed). Each top-level conjunct over key columns only is assumed monotone in key order (true
/// for the range predicates the connector builds) and classified as a lower or upper bound by
/// evaluating it at both ends of the table.
fn narrow(table: &Table, pred: Option<&Expr>) -> (Range<u64>, bool) {
    let n = table.rows;
    let Some(pred) = pred else {
        return (0..n, true);
    };
    if n == 0 {
        return (0..0, true);
    }
    let key_cols: Vec<usize> = table
        .primary_key
        .iter()
        .filter_map(|k| {
            table
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(k))
        })
        .collect();
    let conjuncts: Vec<&Expr> = match pred {
        Expr::And(v) => v.iter().collect(),
        other => vec![other],
    };
    let fill = table.key.as_ref().unwrap_or(&table.row);
    let mut buf = vec![Value::Null; table.columns.len()];
    let mut at = |i: u64, e: &Expr| {
        fill(i, &mut buf);
        eval(e, &buf)
    };
    let (mut lo, mut hi) = (0u64, n);
    let mut exact = true;
    // An equality on a key column is the pair of bounds >= and <=.
    let mut split: Vec<Expr> = Vec::new();
    for c in &conjuncts {
        if let Expr::Cmp {
            col,
            scale,
            op: Op::Eq,
            rhs,
            rscale,
        } = c
        {
            for op in [Op::Ge, Op::Le] {
                split.push(Expr::Cmp {
                    col: *col,
                    scale: *scale,
                    op,
                    rhs: rhs.clone(),
                    rscale: *rscale,
                });
            }
        }
    }
    let conjuncts: Vec<&Expr> = conjuncts
        .into_iter()
        .filter(|c| !matches!(c, Expr::Cmp { op: Op::Eq, .. }))
        .chain(split.iter())
        .collect();
    for c in conjuncts {
        let mut used = Vec::new();
        cols_of(c, &mut used);
        if key_cols.is_empty() || !used.iter().all(|u| key_cols.contains(u)) || has_ne(c) {
            exact = false;
            continue;
        }
        let first = at(0, c);
        let last = at(n - 1, c);
        match (first, last) {
            (true, true) => {
                // True at both ends: all rows for a plain comparison; a compound conjunct (an
                // OR) need not be monotone, so it stays in the per-row filter.
                if !matches!(
                    c,
                    Expr::Cmp {
                        op: Op::Lt | Op::Le | Op::Gt | Op::Ge,
                        ..
                    }
                ) {
                    exact = false;
                }
            }
            (false, false) => {
                // False at both ends (e.g. an equality in the middle): not a one-sided bound;
                // leave it to the per-row filter.
                exact = false;
            }
            (false, true) => {
                // lower bound: first index where it holds
                let (mut a, mut b) = (0u64, n - 1);
                while a < b {
                    let m = a + (b - a) / 2;
                    if at(m, c) { b = m } else { a = m + 1 }
                }
                lo = lo.max(a);
            }
            (true, false) => {
                // upper bound: first index where it stops holding
                let (mut a, mut b) = (0u64, n - 1);
                while a < b {
                    let m = a + (b - a) / 2;
                    if at(m, c) { a = m + 1 } else { b = m }
                }
                hi = hi.min(a);
            }
        }
    }
    if lo > hi {
        lo = hi;
    }
    (lo..hi, exact)
}
