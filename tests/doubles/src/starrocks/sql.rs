//! The SQL the double understands over the MySQL port: a small lexer and recursive-descent
//! parser for exactly the statement shapes the StarRocks loader sends, the probes MySQL
//! clients send on connect, and a few conveniences for tests.
//!
//! Exists because the loader's DDL, table swaps, verification reads and "load from the lake
//! inside StarRocks" mode go through SQL; the double validates DDL like StarRocks where that is
//! cheap, so DDL that the double accepts is DDL a cluster would accept.
//!
//! Statements: CREATE DATABASE; CREATE TABLE (columns, DUPLICATE/PRIMARY/UNIQUE KEY, COMMENT,
//! PARTITION BY date_trunc(..)/columns, DISTRIBUTED BY HASH/RANDOM, ORDER BY, PROPERTIES);
//! CREATE TABLE .. LIKE; CREATE EXTERNAL CATALOG; ALTER TABLE COMMENT/SWAP WITH/RENAME;
//! DROP TABLE/DATABASE/CATALOG; TRUNCATE TABLE; INSERT INTO/OVERWRITE [WITH LABEL] [(cols)]
//! SELECT/VALUES; SELECT cols/*/COUNT(*) FROM a table, an external catalog table or
//! information_schema.{tables,columns,schemata,loads} with `WHERE c = lit [AND ..]`,
//! `c IN (..)`, ORDER BY, LIMIT; SELECT of @@variables, literals and VERSION()-style functions;
//! SET; USE; SHOW DATABASES/TABLES/CREATE TABLE/CATALOGS; BEGIN/COMMIT/ROLLBACK (no-ops).
//!
//! Choices where StarRocks is more lenient than the double: column DEFAULTs, AUTO_INCREMENT,
//! aggregate tables, RANGE/LIST partitions and indexes are refused as unsupported; a table
//! without a key clause is DUPLICATE KEY on its first column. INSERT runs with StarRocks'
//! default `enable_insert_strict = true` (any rejected row fails the statement and the job is
//! CANCELLED); `SET enable_insert_strict = false` drops rejected rows instead.

use std::collections::HashMap;

use super::mysql::SERVER_VERSION;
use super::store::{self, Column, Table, TableDef, TxnKind};
use super::types::{SrType, ValueError};
use super::util;
use super::{Cell, Fault, KeyModel, LabelState, Shared};

/// Per-connection state.
pub struct Session {
    pub user: String,
    pub db: Option<String>,
    pub conn_id: u32,
    /// Session variables set with SET (lower-case names).
    pub vars: HashMap<String, String>,
}

impl Session {
    pub fn new(user: &str, conn_id: u32) -> Session {
        Session {
            user: user.to_string(),
            db: None,
            conn_id,
            vars: HashMap::new(),
        }
    }
}

/// A result column.
#[derive(Clone, Debug)]
pub struct ColDef {
    pub name: String,
    pub org_name: String,
    pub table: String,
    pub schema: String,
    pub ty: SrType,
    pub nullable: bool,
}

impl ColDef {
    fn expr(name: &str, ty: SrType) -> ColDef {
        ColDef {
            name: name.to_string(),
            org_name: String::new(),
            table: String::new(),
            schema: String::new(),
            ty,
            nullable: true,
        }
    }
}

/// An error answered with an ERR packet.
#[derive(Clone, Debug, PartialEq)]
pub struct SqlError {
    pub code: u16,
    pub state: &'static str,
    pub msg: String,
}

fn err(code: u16, state: &'static str, msg: impl Into<String>) -> SqlError {
    SqlError {
        code,
        state,
        msg: msg.into(),
    }
}

/// Analysis errors (StarRocks reports most of them as 1064).
fn analysis(msg: impl Into<String>) -> SqlError {
    err(1064, "42000", msg)
}

fn unsupported(what: &str) -> SqlError {
    err(
        1235,
        "42000",
        format!("{what} is not supported by this test double"),
    )
}

fn unknown_db(db: &str) -> SqlError {
    err(1049, "42000", format!("Unknown database '{db}'"))
}

fn unknown_table(db: &str, t: &str) -> SqlError {
    err(1051, "42S02", format!("Unknown table '{db}.{t}'"))
}

/// What a statement produced.
pub enum Outcome {
    Ok {
        affected: u64,
        info: String,
    },
    Rows {
        columns: Vec<ColDef>,
        rows: Vec<Vec<Cell>>,
    },
    Err(SqlError),
    /// Done, but the connection must be dropped without an answer (injected fault).
    Drop {
        affected: u64,
    },
}

fn ok() -> Result<Outcome, SqlError> {
    Ok(Outcome::Ok {
        affected: 0,
        info: String::new(),
    })
}

/// Runs one statement.
pub fn execute(shared: &Shared, session: &mut Session, sql: &str) -> Outcome {
    match run(shared, session, sql) {
        Ok(o) => o,
        Err(e) => Outcome::Err(e),
    }
}

// ------------------------------------------------------------------------------------ lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// Bare word (keyword or identifier), as written.
    Word(String),
    /// Backquoted identifier.
    Ident(String),
    Str(String),
    Num(String),
    Sym(char),
    /// `@@name` (with any `session.`-style prefix) or `@name`.
    Var(String),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn lex(sql: &str) -> Result<Vec<Token>, SqlError> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word_byte = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if (c == b'-' && b.get(i + 1) == Some(&b'-')) || c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            match sql[i + 2..].find("*/") {
                Some(e) => i = i + 2 + e + 2,
                None => return Err(analysis("unterminated comment")),
            }
            continue;
        }
        let tok = if c == b'`' {
            let mut s = Vec::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(analysis("unterminated quoted identifier")),
                    Some(b'`') if b.get(i + 1) == Some(&b'`') => {
                        s.push(b'`');
                        i += 2;
                    }
                    Some(b'`') => {
                        i += 1;
                        break;
                    }
                    Some(&x) => {
                        s.push(x);
                        i += 1;
                    }
                }
            }
            Tok::Ident(String::from_utf8_lossy(&s).into_owned())
        } else if c == b'\'' || c == b'"' {
            let q = c;
            let mut s = Vec::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(analysis("unterminated string literal")),
                    Some(&x) if x == q && b.get(i + 1) == Some(&q) => {
                        s.push(q);
                        i += 2;
                    }
                    Some(&x) if x == q => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let Some(&e) = b.get(i + 1) else {
                            return Err(analysis("unterminated string literal"));
                        };
                        match e {
                            b'0' => s.push(0),
                            b'b' => s.push(8),
                            b'n' => s.push(b'\n'),
                            b'r' => s.push(b'\r'),
                            b't' => s.push(b'\t'),
                            b'Z' => s.push(0x1a),
                            b'%' | b'_' => {
                                s.push(b'\\');
                                s.push(e);
                            }
                            other => s.push(other),
                        }
                        i += 2;
                    }
                    Some(&x) => {
                        s.push(x);
                        i += 1;
                    }
                }
            }
            Tok::Str(String::from_utf8_lossy(&s).into_owned())
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    i = j;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            if i < b.len() && word_byte(b[i]) {
                // An identifier starting with digits.
                while i < b.len() && word_byte(b[i]) {
                    i += 1;
                }
                Tok::Word(sql[start..i].to_string())
            } else {
                Tok::Num(sql[start..i].to_string())
            }
        } else if c == b'@' {
            i += 1;
            if b.get(i) == Some(&b'@') {
                i += 1;
            }
            while i < b.len() && (word_byte(b[i]) || b[i] == b'.') {
                i += 1;
            }
            Tok::Var(sql[start..i].to_string())
        } else if word_byte(c) {
            while i < b.len() && word_byte(b[i]) {
                i += 1;
            }
            Tok::Word(sql[start..i].to_string())
        } else {
            i += 1;
            // Multi-byte UTF-8 starts are word bytes, so this is ASCII.
            Tok::Sym(c as char)
        };
        out.push(Token { tok, start, end: i });
    }
    Ok(out)
}

// ----------------------------------------------------------------------------------- parser

struct P<'a> {
    t: Vec<Token>,
    i: usize,
    sql: &'a str,
}

impl<'a> P<'a> {
    fn new(sql: &'a str) -> Result<P<'a>, SqlError> {
        let mut t = lex(sql)?;
        while t.last().is_some_and(|x| x.tok == Tok::Sym(';')) {
            t.pop();
        }
        Ok(P { t, i: 0, sql })
    }

    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.t.get(self.i + n).map(|t| &t.tok)
    }

    fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        matches!(self.peek_at(n), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.is_kw_at(0, kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        if kws.iter().enumerate().all(|(n, k)| self.is_kw_at(n, k)) {
            self.i += kws.len();
            true
        } else {
            false
        }
    }

    fn near(&self) -> String {
        match self.t.get(self.i) {
            Some(t) => {
                let rest: String = self.sql[t.start..].chars().take(40).collect();
                format!("near '{rest}'")
            }
            None => "at the end of the statement".to_string(),
        }
    }

    fn syntax(&self, expected: &str) -> SqlError {
        err(
            1064,
            "42000",
            format!(
                "You have an error in your SQL syntax: expected {expected} {}",
                self.near()
            ),
        )
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.syntax(kw))
        }
    }

    fn is_sym(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Sym(c))
    }

    fn eat_sym(&mut self, c: char) -> bool {
        if self.is_sym(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, c: char) -> Result<(), SqlError> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(self.syntax(&format!("'{c}'")))
        }
    }

    fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Tok::Word(w)) | Some(Tok::Ident(w)) => {
                let w = w.clone();
                self.i += 1;
                Ok(w)
            }
            _ => Err(self.syntax("an identifier")),
        }
    }

    /// `a[.b[.c]]` with the byte span of the whole name.
    fn name(&mut self) -> Result<(Vec<String>, usize, usize), SqlError> {
        let start = self.t.get(self.i).map_or(self.sql.len(), |t| t.start);
        let mut parts = vec![self.ident()?];
        while self.is_sym('.') {
            self.i += 1;
            parts.push(self.ident()?);
        }
        let end = self.t[self.i - 1].end;
        Ok((parts, start, end))
    }

    fn ident_list(&mut self) -> Result<Vec<String>, SqlError> {
        self.expect_sym('(')?;
        let mut v = vec![self.ident()?];
        while self.eat_sym(',') {
            v.push(self.ident()?);
        }
        self.expect_sym(')')?;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.syntax("a string literal")),
        }
    }

    fn number(&mut self) -> Result<u64, SqlError> {
        match self.peek() {
            Some(Tok::Num(n)) => {
                let v = n
                    .parse()
                    .map_err(|_| analysis(format!("'{n}' is not a valid integer here")))?;
                self.i += 1;
                Ok(v)
            }
            _ => Err(self.syntax("a number")),
        }
    }

    /// A literal: string, number (optionally negative), NULL, TRUE, FALSE.
    fn literal(&mut self) -> Result<Cell, SqlError> {
        let neg = self.eat_sym('-');
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.i += 1;
                Ok(Some(if neg { format!("-{n}") } else { n }.into_bytes()))
            }
            Some(Tok::Str(s)) if !neg => {
                self.i += 1;
                Ok(Some(s.into_bytes()))
            }
            Some(Tok::Word(w)) if !neg && w.eq_ignore_ascii_case("NULL") => {
                self.i += 1;
                Ok(None)
            }
            Some(Tok::Word(w)) if !neg && w.eq_ignore_ascii_case("TRUE") => {
                self.i += 1;
                Ok(Some(b"1".to_vec()))
            }
            Some(Tok::Word(w)) if !neg && w.eq_ignore_ascii_case("FALSE") => {
                self.i += 1;
                Ok(Some(b"0".to_vec()))
            }
            _ => Err(self.syntax("a literal")),
        }
    }

    fn at_end(&self) -> bool {
        self.i >= self.t.len()
    }

    fn expect_end(&self) -> Result<(), SqlError> {
        if self.at_end() {
            Ok(())
        } else if self.is_sym(';') {
            Err(unsupported("more than one statement in one query"))
        } else {
            Err(self.syntax("the end of the statement"))
        }
    }

    fn span_text(&self, from: usize, to: usize) -> String {
        let s = self.t[from].start;
        let e = self.t[to - 1].end;
        self.sql[s..e].to_string()
    }
}

/// Names StarRocks allows here: letters, digits and `_`.
fn check_name(kind: &str, name: &str) -> Result<(), SqlError> {
    if !name.is_empty()
        && name.len() <= 1024
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(())
    } else {
        Err(analysis(format!(
            "Incorrect {kind} name '{name}': only letters, digits and '_' are allowed"
        )))
    }
}

// -------------------------------------------------------------------------------- dispatch

fn run(shared: &Shared, s: &mut Session, sql: &str) -> Result<Outcome, SqlError> {
    let mut p = P::new(sql)?;
    if p.at_end() {
        return Err(err(1065, "42000", "Query was empty"));
    }
    let first = match p.peek() {
        Some(Tok::Word(w)) => w.to_ascii_uppercase(),
        Some(Tok::Sym('(')) => "(".to_string(),
        _ => return Err(p.syntax("a statement")),
    };
    match first.as_str() {
        "SELECT" | "(" => {
            let sel = parse_select(&mut p)?;
            p.expect_end()?;
            let (columns, rows) = run_select(shared, s, &sel)?;
            Ok(Outcome::Rows { columns, rows })
        }
        "CREATE" => {
            p.i += 1;
            if p.eat_kw("DATABASE") || p.eat_kw("SCHEMA") {
                create_database(shared, &mut p)
            } else if p.eat_kw("TABLE") {
                create_table(shared, s, &mut p)
            } else if p.eat_kws(&["EXTERNAL", "CATALOG"]) {
                create_catalog(shared, &mut p)
            } else {
                Err(unsupported(&format!("CREATE {}", p.near())))
            }
        }
        "ALTER" => {
            p.i += 1;
            p.expect_kw("TABLE")?;
            alter_table(shared, s, &mut p)
        }
        "DROP" => {
            p.i += 1;
            drop_stmt(shared, s, &mut p)
        }
        "TRUNCATE" => {
            p.i += 1;
            p.eat_kw("TABLE");
            let (parts, _, _) = p.name()?;
            p.expect_end()?;
            let (db, t) = resolve(s, &parts)?;
            let mut st = shared.lock();
            let tab = st
                .table_mut(&db, &t)
                .ok_or_else(|| unknown_table(&db, &t))?;
            tab.rows.clear();
            ok()
        }
        "INSERT" => {
            p.i += 1;
            insert(shared, s, &mut p)
        }
        "SET" => {
            p.i += 1;
            set_stmt(s, &mut p);
            ok()
        }
        "USE" => {
            p.i += 1;
            let (parts, _, _) = p.name()?;
            p.expect_end()?;
            let db = parts.last().cloned().unwrap_or_default();
            if !shared.lock().dbs.contains_key(&db) {
                return Err(unknown_db(&db));
            }
            s.db = Some(db);
            ok()
        }
        "SHOW" => {
            p.i += 1;
            show(shared, s, &mut p)
        }
        "BEGIN" | "COMMIT" | "ROLLBACK" | "START" => ok(),
        _ => Err(unsupported(&format!("the statement {}", p.near()))),
    }
}

/// `[catalog.]db.table` or `table` (current database) to (db, table).
fn resolve(s: &Session, parts: &[String]) -> Result<(String, String), SqlError> {
    match parts {
        [t] => match &s.db {
            Some(db) => Ok((db.clone(), t.clone())),
            None => Err(err(1046, "3D000", "No database selected")),
        },
        [db, t] => Ok((db.clone(), t.clone())),
        [c, db, t] if c.eq_ignore_ascii_case("default_catalog") => Ok((db.clone(), t.clone())),
        _ => Err(analysis(format!(
            "'{}' is not a table of the internal catalog",
            parts.join(".")
        ))),
    }
}

// ------------------------------------------------------------------------------------- DDL

fn create_database(shared: &Shared, p: &mut P) -> Result<Outcome, SqlError> {
    let if_not_exists = p.eat_kws(&["IF", "NOT", "EXISTS"]);
    let (parts, _, _) = p.name()?;
    p.expect_end()?;
    let db = parts.last().cloned().unwrap_or_default();
    check_name("database", &db)?;
    let mut st = shared.lock();
    if st.dbs.contains_key(&db) {
        if if_not_exists {
            return ok();
        }
        return Err(err(
            1007,
            "HY000",
            format!("Can't create database '{db}'; database exists"),
        ));
    }
    st.dbs.insert(db, store::Database::default());
    ok()
}

fn create_catalog(shared: &Shared, p: &mut P) -> Result<Outcome, SqlError> {
    let if_not_exists = p.eat_kws(&["IF", "NOT", "EXISTS"]);
    let name = p.ident()?;
    if p.eat_kw("COMMENT") {
        p.string()?;
    }
    p.expect_kw("PROPERTIES")?;
    let props = properties(p)?;
    p.expect_end()?;
    if !props.iter().any(|(k, _)| k == "type") {
        return Err(analysis("Missing properties 'type'"));
    }
    let mut st = shared.lock();
    if st.catalogs.contains_key(&name) {
        if if_not_exists {
            return ok();
        }
        return Err(analysis(format!("Catalog '{name}' already exists")));
    }
    st.catalogs.insert(name, props);
    ok()
}

fn properties(p: &mut P) -> Result<Vec<(String, String)>, SqlError> {
    p.expect_sym('(')?;
    let mut props = Vec::new();
    loop {
        let k = p.string()?;
        p.expect_sym('=')?;
        let v = p.string()?;
        props.push((k, v));
        if !p.eat_sym(',') {
            break;
        }
    }
    p.expect_sym(')')?;
    Ok(props)
}

fn create_table(shared: &Shared, s: &Session, p: &mut P) -> Result<Outcome, SqlError> {
    let stmt_start = p.t[0].start;
    let stmt_end = p.t.last().map_or(p.sql.len(), |t| t.end);
    if p.eat_kw("EXTERNAL") {
        return Err(unsupported("CREATE EXTERNAL TABLE"));
    }
    let if_not_exists = p.eat_kws(&["IF", "NOT", "EXISTS"]);
    let (parts, name_start, name_end) = p.name()?;
    let (db, table) = resolve(s, &parts)?;
    check_name("table", &table)?;

    if p.eat_kw("LIKE") {
        let (src, _, _) = p.name()?;
        p.expect_end()?;
        let (sdb, stable) = resolve(s, &src)?;
        let mut st = shared.lock();
        let def = st
            .table(&sdb, &stable)
            .ok_or_else(|| unknown_table(&sdb, &stable))?
            .def
            .clone();
        return put_table(&mut st, &db, &table, def, if_not_exists);
    }

    p.expect_sym('(')?;
    let mut columns: Vec<Column> = Vec::new();
    loop {
        if p.is_kw("INDEX") || p.is_kw("PRIMARY") || p.is_kw("KEY") {
            return Err(unsupported("an index or key inside the column list"));
        }
        let name = p.ident()?;
        check_name("column", &name)?;
        if columns.iter().any(|c| c.name.eq_ignore_ascii_case(&name)) {
            return Err(err(
                1060,
                "42S21",
                format!("Duplicate column name '{name}'"),
            ));
        }
        let type_name = p.ident()?;
        let args = if p.eat_sym('(') {
            let mut a = vec![p.number()?];
            while p.eat_sym(',') {
                a.push(p.number()?);
            }
            p.expect_sym(')')?;
            Some(a)
        } else {
            None
        };
        let ty = SrType::from_parts(&type_name, args.as_deref())
            .map_err(|m| analysis(format!("column '{name}': {m}")))?;
        let mut nullable = true;
        let mut comment = None;
        loop {
            if p.eat_kws(&["NOT", "NULL"]) {
                nullable = false;
            } else if p.eat_kw("NULL") {
                nullable = true;
            } else if p.eat_kw("COMMENT") {
                comment = Some(p.string()?);
            } else if p.is_kw("DEFAULT") {
                return Err(unsupported("DEFAULT in a column definition"));
            } else if p.is_kw("AUTO_INCREMENT") {
                return Err(unsupported("AUTO_INCREMENT"));
            } else if p.is_sym(',') || p.is_sym(')') {
                break;
            } else if matches!(p.peek(), Some(Tok::Word(w)) if ["SUM", "MAX", "MIN", "REPLACE", "REPLACE_IF_NOT_NULL", "HLL_UNION", "BITMAP_UNION"].iter().any(|a| w.eq_ignore_ascii_case(a)))
            {
                return Err(unsupported("aggregate columns (AGGREGATE KEY tables)"));
            } else {
                return Err(p.syntax("NOT NULL, NULL, COMMENT, ',' or ')'"));
            }
        }
        columns.push(Column {
            name,
            ty,
            nullable,
            comment,
        });
        if p.eat_sym(')') {
            break;
        }
        p.expect_sym(',')?;
    }

    if p.eat_kw("ENGINE") {
        p.expect_sym('=')?;
        let e = p.ident()?;
        if !e.eq_ignore_ascii_case("OLAP") {
            return Err(unsupported(&format!("ENGINE = {e}")));
        }
    }
    let mut model = KeyModel::Duplicate;
    let mut keys: Option<Vec<String>> = None;
    for (kw, m) in [
        ("DUPLICATE", KeyModel::Duplicate),
        ("PRIMARY", KeyModel::Primary),
        ("UNIQUE", KeyModel::Unique),
    ] {
        if p.eat_kw(kw) {
            p.expect_kw("KEY")?;
            model = m;
            keys = Some(p.ident_list()?);
            break;
        }
    }
    if p.is_kw("AGGREGATE") {
        return Err(unsupported("AGGREGATE KEY tables"));
    }
    let mut comment = String::new();
    if p.eat_kw("COMMENT") {
        comment = p.string()?;
    }
    let mut partition = None;
    if p.eat_kw("PARTITION") {
        p.expect_kw("BY")?;
        if p.is_kw("RANGE") || p.is_kw("LIST") {
            return Err(unsupported("RANGE/LIST partitioning"));
        }
        if p.is_kw("date_trunc") || p.is_kw("time_slice") {
            p.i += 1;
            p.expect_sym('(')?;
            let unit = p.string()?;
            if !["year", "quarter", "month", "week", "day", "hour"]
                .iter()
                .any(|u| u.eq_ignore_ascii_case(&unit))
            {
                return Err(analysis(format!("Unsupported date_trunc unit '{unit}'")));
            }
            p.expect_sym(',')?;
            let col = p.ident()?;
            p.expect_sym(')')?;
            let c = columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(&col))
                .ok_or_else(|| analysis(format!("Unknown partition column '{col}'")))?;
            if !matches!(c.ty, SrType::Date | SrType::DateTime) {
                return Err(analysis(format!(
                    "date_trunc partition column '{col}' must be DATE or DATETIME, not {}",
                    c.ty
                )));
            }
            partition = Some(c.name.clone());
        } else {
            let cols = if p.is_sym('(') {
                p.ident_list()?
            } else {
                let mut v = vec![p.ident()?];
                while p.eat_sym(',') {
                    v.push(p.ident()?);
                }
                v
            };
            for c in &cols {
                if !columns.iter().any(|x| x.name.eq_ignore_ascii_case(c)) {
                    return Err(analysis(format!("Unknown partition column '{c}'")));
                }
            }
            partition = cols.first().cloned();
        }
    }
    let mut hash: Vec<String> = Vec::new();
    if p.eat_kw("DISTRIBUTED") {
        p.expect_kw("BY")?;
        if p.eat_kw("HASH") {
            hash = p.ident_list()?;
        } else if !p.eat_kw("RANDOM") {
            return Err(p.syntax("HASH or RANDOM"));
        }
        if p.eat_kw("BUCKETS") && p.number()? == 0 {
            return Err(analysis("Number of buckets must be positive"));
        }
    }
    if p.eat_kws(&["ORDER", "BY"]) {
        for c in p.ident_list()? {
            if !columns.iter().any(|x| x.name.eq_ignore_ascii_case(&c)) {
                return Err(analysis(format!("Unknown ORDER BY column '{c}'")));
            }
        }
    }
    if p.eat_kw("PROPERTIES") {
        for (k, v) in properties(p)? {
            if k == "replication_num" && !v.parse::<u32>().is_ok_and(|n| n > 0) {
                return Err(analysis(format!("Invalid replication_num: {v}")));
            }
        }
    }
    p.expect_end()?;

    // Validation, as StarRocks' CreateTableAnalyzer does where it is cheap.
    let keys = keys.unwrap_or_else(|| vec![columns[0].name.clone()]);
    for (i, k) in keys.iter().enumerate() {
        let Some(c) = columns.get(i) else {
            return Err(analysis(format!(
                "Key column '{k}' does not exist (more key columns than columns)"
            )));
        };
        if !columns.iter().any(|x| x.name.eq_ignore_ascii_case(k)) {
            return Err(analysis(format!("Key column '{k}' does not exist")));
        }
        if !c.name.eq_ignore_ascii_case(k) {
            return Err(analysis(format!(
                "Key columns should be a ordered prefix of the schema. KeyColumns[{i}] (starts from zero) is {k}, but corresponding column is {} in the previous columns declaration.",
                c.name
            )));
        }
        if matches!(c.ty, SrType::Float | SrType::Double) {
            return Err(analysis(format!(
                "Invalid data type of key column '{}': '{}'. Float or double can not used as a key, use decimal instead.",
                c.name, c.ty
            )));
        }
        if model == KeyModel::Primary {
            if c.nullable {
                return Err(analysis(format!(
                    "primary key column[{}] cannot be nullable",
                    c.name
                )));
            }
            if !c.ty.allowed_in_primary_key() {
                return Err(analysis(format!(
                    "Invalid data type of primary key column '{}': '{}'",
                    c.name, c.ty
                )));
            }
        }
    }
    let is_key = |c: &str| keys.iter().any(|k| k.eq_ignore_ascii_case(c));
    for h in &hash {
        if !columns.iter().any(|x| x.name.eq_ignore_ascii_case(h)) {
            return Err(analysis(format!(
                "Distribution column '{h}' does not exist"
            )));
        }
        if model != KeyModel::Duplicate && !is_key(h) {
            return Err(analysis(format!(
                "Distribution column '{h}' must be a key column of a {model:?} KEY table"
            )));
        }
    }
    if model == KeyModel::Primary
        && let Some(pc) = &partition
        && !is_key(pc)
    {
        return Err(analysis(format!(
            "Partition column '{pc}' must be a primary key column"
        )));
    }

    let def = TableDef {
        columns,
        model,
        keys,
        comment,
        partition,
        ddl_head: p.sql[stmt_start..name_start].to_string(),
        ddl_tail: p.sql[name_end..stmt_end].to_string(),
    };
    let mut st = shared.lock();
    put_table(&mut st, &db, &table, def, if_not_exists)
}

fn put_table(
    st: &mut store::State,
    db: &str,
    table: &str,
    def: TableDef,
    if_not_exists: bool,
) -> Result<Outcome, SqlError> {
    let d = st.dbs.get_mut(db).ok_or_else(|| unknown_db(db))?;
    if d.tables.contains_key(table) {
        if if_not_exists {
            return ok();
        }
        return Err(err(
            1050,
            "42S01",
            format!("Table '{table}' already exists"),
        ));
    }
    d.tables.insert(
        table.to_string(),
        Table {
            def,
            rows: Vec::new(),
        },
    );
    ok()
}

fn alter_table(shared: &Shared, s: &Session, p: &mut P) -> Result<Outcome, SqlError> {
    let (parts, _, _) = p.name()?;
    let (db, t) = resolve(s, &parts)?;
    if p.eat_kw("COMMENT") {
        p.eat_sym('=');
        let c = p.string()?;
        p.expect_end()?;
        let mut st = shared.lock();
        st.table_mut(&db, &t)
            .ok_or_else(|| unknown_table(&db, &t))?
            .def
            .comment = c;
        return ok();
    }
    if p.eat_kws(&["SWAP", "WITH"]) {
        let other = p.ident()?;
        p.expect_end()?;
        let mut st = shared.lock();
        let d = st.dbs.get_mut(&db).ok_or_else(|| unknown_db(&db))?;
        if !d.tables.contains_key(&t) {
            return Err(unknown_table(&db, &t));
        }
        let Some(b) = d.tables.remove(&other) else {
            return Err(unknown_table(&db, &other));
        };
        if other == t {
            d.tables.insert(other, b);
            return ok();
        }
        let a = d.tables.insert(t.clone(), b);
        if let Some(a) = a {
            d.tables.insert(other, a);
        }
        return ok();
    }
    if p.eat_kw("RENAME") {
        let new = p.ident()?;
        p.expect_end()?;
        check_name("table", &new)?;
        let mut st = shared.lock();
        let d = st.dbs.get_mut(&db).ok_or_else(|| unknown_db(&db))?;
        if d.tables.contains_key(&new) {
            return Err(err(1050, "42S01", format!("Table '{new}' already exists")));
        }
        let tab = d.tables.remove(&t).ok_or_else(|| unknown_table(&db, &t))?;
        d.tables.insert(new, tab);
        return ok();
    }
    Err(unsupported(&format!("ALTER TABLE {}", p.near())))
}

fn drop_stmt(shared: &Shared, s: &Session, p: &mut P) -> Result<Outcome, SqlError> {
    if p.eat_kw("TABLE") {
        let if_exists = p.eat_kws(&["IF", "EXISTS"]);
        let (parts, _, _) = p.name()?;
        p.eat_kw("FORCE");
        p.expect_end()?;
        let (db, t) = resolve(s, &parts)?;
        let mut st = shared.lock();
        let removed = st.dbs.get_mut(&db).and_then(|d| d.tables.remove(&t));
        if removed.is_none() && !if_exists {
            return Err(unknown_table(&db, &t));
        }
        return ok();
    }
    if p.eat_kw("DATABASE") || p.eat_kw("SCHEMA") {
        let if_exists = p.eat_kws(&["IF", "EXISTS"]);
        let db = p.ident()?;
        p.eat_kw("FORCE");
        p.expect_end()?;
        let mut st = shared.lock();
        if st.dbs.remove(&db).is_none() && !if_exists {
            return Err(err(
                1008,
                "HY000",
                format!("Can't drop database '{db}'; database doesn't exist"),
            ));
        }
        return ok();
    }
    if p.eat_kw("CATALOG") {
        let if_exists = p.eat_kws(&["IF", "EXISTS"]);
        let name = p.ident()?;
        p.expect_end()?;
        let mut st = shared.lock();
        if st.catalogs.remove(&name).is_none() && !if_exists {
            return Err(analysis(format!("Unknown catalog '{name}'")));
        }
        return ok();
    }
    Err(unsupported(&format!("DROP {}", p.near())))
}

fn set_stmt(s: &mut Session, p: &mut P) {
    // SET NAMES / CHARACTER SET and anything unparsed are accepted and ignored.
    loop {
        for scope in ["SESSION", "GLOBAL", "LOCAL"] {
            if p.eat_kw(scope) {
                break;
            }
        }
        let name = match p.peek().cloned() {
            Some(Tok::Word(w)) | Some(Tok::Ident(w)) => {
                p.i += 1;
                w
            }
            Some(Tok::Var(v)) => {
                p.i += 1;
                v
            }
            _ => return,
        };
        let assigns = p.eat_sym('=') || (p.is_sym(':') && p.peek_at(1) == Some(&Tok::Sym('=')));
        if !assigns {
            return;
        }
        if p.is_sym(':') {
            p.i += 1;
            p.eat_sym('=');
        }
        let value = match p.peek().cloned() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) | Some(Tok::Num(w)) => {
                p.i += 1;
                w
            }
            _ => return,
        };
        s.vars.insert(var_name(&name), value);
        if !p.eat_sym(',') {
            return;
        }
    }
}

/// `@@session.x`, `@@x`, `x` -> `x` (lower case).
fn var_name(raw: &str) -> String {
    let n = raw.trim_start_matches('@').to_ascii_lowercase();
    for prefix in ["session.", "global.", "local."] {
        if let Some(rest) = n.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    n
}

fn system_var(s: &Session, name: &str) -> Result<Cell, SqlError> {
    if let Some(v) = s.vars.get(name) {
        return Ok(Some(v.clone().into_bytes()));
    }
    let v = match name {
        "max_allowed_packet" => "33554432",
        "wait_timeout" => "28800",
        "interactive_timeout" => "3600",
        "net_write_timeout" | "net_read_timeout" => "60",
        "socket" => return Ok(None),
        "version" => SERVER_VERSION,
        "version_comment" => "StarRocks version 3.3 (test double)",
        "auto_increment_increment" => "1",
        "autocommit" => "1",
        "character_set_client"
        | "character_set_connection"
        | "character_set_results"
        | "character_set_server"
        | "character_set_database" => "utf8",
        "collation_connection" | "collation_server" | "collation_database" => "utf8_general_ci",
        "sql_mode" => "ONLY_FULL_GROUP_BY",
        "time_zone" | "system_time_zone" => "Asia/Shanghai",
        "tx_isolation" | "transaction_isolation" => "REPEATABLE-READ",
        "tx_read_only" | "transaction_read_only" => "0",
        "lower_case_table_names" => "0",
        "license" => "Apache License 2.0",
        "query_timeout" => "300",
        "sql_select_limit" => "18446744073709551615",
        "init_connect" => "",
        "performance_schema" => "0",
        "enable_insert_strict" => "true",
        "language" => "/starrocks/share/english/",
        _ => {
            return Err(err(
                1193,
                "HY000",
                format!("Unknown system variable '{name}'"),
            ));
        }
    };
    Ok(Some(v.as_bytes().to_vec()))
}

fn show(shared: &Shared, s: &Session, p: &mut P) -> Result<Outcome, SqlError> {
    let text = |v: &str| Some(v.as_bytes().to_vec());
    if p.eat_kw("DATABASES") || p.eat_kw("SCHEMAS") {
        p.expect_end()?;
        let st = shared.lock();
        let mut rows = vec![vec![text("information_schema")]];
        rows.extend(st.dbs.keys().map(|d| vec![text(d)]));
        return Ok(Outcome::Rows {
            columns: vec![ColDef::expr("Database", SrType::Varchar(256))],
            rows,
        });
    }
    if p.eat_kw("TABLES") {
        let db = if p.eat_kw("FROM") || p.eat_kw("IN") {
            p.ident()?
        } else {
            s.db.clone()
                .ok_or_else(|| err(1046, "3D000", "No database selected"))?
        };
        p.expect_end()?;
        let st = shared.lock();
        let d = st.dbs.get(&db).ok_or_else(|| unknown_db(&db))?;
        return Ok(Outcome::Rows {
            columns: vec![ColDef::expr(
                &format!("Tables_in_{db}"),
                SrType::Varchar(256),
            )],
            rows: d.tables.keys().map(|t| vec![text(t)]).collect(),
        });
    }
    if p.eat_kws(&["CREATE", "TABLE"]) {
        let (parts, _, _) = p.name()?;
        p.expect_end()?;
        let (db, t) = resolve(s, &parts)?;
        let st = shared.lock();
        let tab = st.table(&db, &t).ok_or_else(|| unknown_table(&db, &t))?;
        return Ok(Outcome::Rows {
            columns: vec![
                ColDef::expr("Table", SrType::Varchar(256)),
                ColDef::expr("Create Table", SrType::String),
            ],
            rows: vec![vec![text(&t), text(&tab.def.ddl(&db, &t))]],
        });
    }
    if p.eat_kw("CATALOGS") {
        p.expect_end()?;
        let st = shared.lock();
        let mut rows = vec![vec![
            text("default_catalog"),
            text("Internal"),
            text("An internal catalog contains this cluster's self-managed tables."),
        ]];
        for (name, props) in &st.catalogs {
            let ty = props
                .iter()
                .find(|(k, _)| k == "type")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            rows.push(vec![text(name), text(&ty), None]);
        }
        return Ok(Outcome::Rows {
            columns: vec![
                ColDef::expr("Catalog", SrType::Varchar(256)),
                ColDef::expr("Type", SrType::Varchar(256)),
                ColDef::expr("Comment", SrType::Varchar(256)),
            ],
            rows,
        });
    }
    Err(unsupported(&format!("SHOW {}", p.near())))
}

// ---------------------------------------------------------------------------------- SELECT

#[derive(Clone, Debug)]
enum Expr {
    Star,
    Col(Vec<String>),
    CountStar,
    Var(String),
    Func(String),
    Lit(Cell),
}

#[derive(Clone, Debug)]
struct Item {
    expr: Expr,
    name: String,
}

#[derive(Clone, Debug)]
struct Select {
    items: Vec<Item>,
    from: Option<Vec<String>>,
    /// Conjunction of `column IN (values)` (`=` is a one-value IN).
    filter: Vec<(String, Vec<Cell>)>,
    order: Vec<(String, bool)>,
    limit: Option<(usize, usize)>,
}

fn parse_select(p: &mut P) -> Result<Select, SqlError> {
    if p.eat_sym('(') {
        let s = parse_select(p)?;
        p.expect_sym(')')?;
        return Ok(s);
    }
    p.expect_kw("SELECT")?;
    let mut items = Vec::new();
    loop {
        let from = p.i;
        let expr = if p.eat_sym('*') {
            Expr::Star
        } else if p.is_kw("COUNT") && p.peek_at(1) == Some(&Tok::Sym('(')) {
            p.i += 2;
            if !p.eat_sym('*') {
                if matches!(p.peek(), Some(Tok::Num(_))) {
                    p.i += 1;
                } else {
                    return Err(unsupported("COUNT of an expression"));
                }
            }
            p.expect_sym(')')?;
            Expr::CountStar
        } else if let Some(Tok::Var(v)) = p.peek().cloned() {
            p.i += 1;
            Expr::Var(v)
        } else if matches!(p.peek(), Some(Tok::Word(_))) && p.peek_at(1) == Some(&Tok::Sym('(')) {
            let f = p.ident()?.to_ascii_uppercase();
            p.expect_sym('(')?;
            p.expect_sym(')')?;
            Expr::Func(f)
        } else if matches!(p.peek(), Some(Tok::Word(w)) if ["CURRENT_TIMESTAMP", "CURRENT_USER", "NULL", "TRUE", "FALSE"].iter().any(|k| w.eq_ignore_ascii_case(k)))
        {
            let w = p.ident()?.to_ascii_uppercase();
            match w.as_str() {
                "NULL" => Expr::Lit(None),
                "TRUE" => Expr::Lit(Some(b"1".to_vec())),
                "FALSE" => Expr::Lit(Some(b"0".to_vec())),
                _ => Expr::Func(w),
            }
        } else if matches!(p.peek(), Some(Tok::Word(_)) | Some(Tok::Ident(_))) {
            let (parts, _, _) = p.name()?;
            if p.is_sym('.') {
                return Err(p.syntax("a column"));
            }
            Expr::Col(parts)
        } else {
            Expr::Lit(p.literal()?)
        };
        let written = match &expr {
            Expr::Col(parts) => parts.last().cloned().unwrap_or_default(),
            _ => p.span_text(from, p.i),
        };
        let name = if p.eat_kw("AS") {
            p.ident().or_else(|_| p.string())?
        } else if matches!(p.peek(), Some(Tok::Ident(_)))
            || matches!(p.peek(), Some(Tok::Word(w)) if !["FROM", "WHERE", "ORDER", "LIMIT", "UNION", "GROUP"].iter().any(|k| w.eq_ignore_ascii_case(k)))
        {
            p.ident()?
        } else {
            written
        };
        items.push(Item { expr, name });
        if !p.eat_sym(',') {
            break;
        }
    }
    let from = if p.eat_kw("FROM") {
        let (parts, _, _) = p.name()?;
        // An optional table alias.
        let alias = p.eat_kw("AS")
            || matches!(p.peek(), Some(Tok::Ident(_)))
            || matches!(p.peek(), Some(Tok::Word(w)) if !["WHERE", "ORDER", "LIMIT", "GROUP", "UNION"].iter().any(|k| w.eq_ignore_ascii_case(k)));
        if alias {
            p.ident()?;
        }
        Some(parts)
    } else {
        None
    };
    let mut filter = Vec::new();
    if p.eat_kw("WHERE") {
        loop {
            let (col, _, _) = p.name()?;
            let col = col.last().cloned().unwrap_or_default();
            if p.eat_sym('=') {
                filter.push((col, vec![p.literal()?]));
            } else if p.eat_kw("IN") {
                p.expect_sym('(')?;
                let mut vals = vec![p.literal()?];
                while p.eat_sym(',') {
                    vals.push(p.literal()?);
                }
                p.expect_sym(')')?;
                filter.push((col, vals));
            } else {
                return Err(unsupported(&format!(
                    "this WHERE condition (only `column = literal` and `column IN (..)` joined by AND) {}",
                    p.near()
                )));
            }
            if !p.eat_kw("AND") {
                break;
            }
        }
    }
    let mut order = Vec::new();
    if p.eat_kws(&["ORDER", "BY"]) {
        loop {
            let (col, _, _) = p.name()?;
            let desc = if p.eat_kw("DESC") {
                true
            } else {
                p.eat_kw("ASC");
                false
            };
            order.push((col.last().cloned().unwrap_or_default(), desc));
            if !p.eat_sym(',') {
                break;
            }
        }
    }
    let mut limit = None;
    if p.eat_kw("LIMIT") {
        let a = p.number()? as usize;
        if p.eat_sym(',') {
            let b = p.number()? as usize;
            limit = Some((a, b));
        } else if p.eat_kw("OFFSET") {
            let off = p.number()? as usize;
            limit = Some((off, a));
        } else {
            limit = Some((0, a));
        }
    }
    Ok(Select {
        items,
        from,
        filter,
        order,
        limit,
    })
}

/// Name, type and nullability of a source column.
type SourceColumn = (String, SrType, bool);

/// Rows and typed columns of a FROM source.
struct Source {
    schema: String,
    table: String,
    columns: Vec<SourceColumn>,
    rows: Vec<Vec<Cell>>,
}

fn text_cell(s: impl AsRef<str>) -> Cell {
    Some(s.as_ref().as_bytes().to_vec())
}

fn num_cell(n: impl ToString) -> Cell {
    Some(n.to_string().into_bytes())
}

fn data_type(t: &SrType) -> (&'static str, String) {
    match t {
        SrType::Boolean => ("boolean", "boolean".into()),
        SrType::TinyInt => ("tinyint", "tinyint(4)".into()),
        SrType::SmallInt => ("smallint", "smallint(6)".into()),
        SrType::Int => ("int", "int(11)".into()),
        SrType::BigInt => ("bigint", "bigint(20)".into()),
        SrType::LargeInt => ("bigint unsigned", "largeint(40)".into()),
        SrType::Float => ("float", "float".into()),
        SrType::Double => ("double", "double".into()),
        SrType::Decimal(p, s) => ("decimal", format!("decimal({p},{s})")),
        SrType::Date => ("date", "date".into()),
        SrType::DateTime => ("datetime", "datetime".into()),
        SrType::Char(n) => ("char", format!("char({n})")),
        SrType::Varchar(n) => ("varchar", format!("varchar({n})")),
        SrType::String => ("varchar", "varchar(65533)".into()),
        SrType::Varbinary(n) => ("varbinary", format!("varbinary({n})")),
    }
}

fn info_schema(st: &store::State, view: &str) -> Result<Source, SqlError> {
    let v = |n: &str| (n.to_string(), SrType::Varchar(512), true);
    let b = |n: &str| (n.to_string(), SrType::BigInt, true);
    let (columns, rows): (Vec<SourceColumn>, Vec<Vec<Cell>>) =
        match view.to_ascii_lowercase().as_str() {
            "schemata" => (
                vec![
                    v("CATALOG_NAME"),
                    v("SCHEMA_NAME"),
                    v("DEFAULT_CHARACTER_SET_NAME"),
                    v("DEFAULT_COLLATION_NAME"),
                    v("SQL_PATH"),
                ],
                st.dbs
                    .keys()
                    .map(|d| {
                        vec![
                            text_cell("def"),
                            text_cell(d),
                            text_cell("utf8"),
                            text_cell("utf8_general_ci"),
                            None,
                        ]
                    })
                    .collect(),
            ),
            "tables" => {
                let mut rows = Vec::new();
                for (d, db) in &st.dbs {
                    for (t, tab) in &db.tables {
                        rows.push(vec![
                            text_cell("def"),
                            text_cell(d),
                            text_cell(t),
                            text_cell("BASE TABLE"),
                            text_cell("StarRocks"),
                            num_cell(tab.rows.len()),
                            text_cell(&tab.def.comment),
                        ]);
                    }
                }
                (
                    vec![
                        v("TABLE_CATALOG"),
                        v("TABLE_SCHEMA"),
                        v("TABLE_NAME"),
                        v("TABLE_TYPE"),
                        v("ENGINE"),
                        b("TABLE_ROWS"),
                        v("TABLE_COMMENT"),
                    ],
                    rows,
                )
            }
            "columns" => {
                let mut rows = Vec::new();
                for (d, db) in &st.dbs {
                    for (t, tab) in &db.tables {
                        let keys = tab.def.key_indices();
                        for (i, c) in tab.def.columns.iter().enumerate() {
                            let (dt, ct) = data_type(&c.ty);
                            let key = if !keys.contains(&i) {
                                ""
                            } else {
                                match tab.def.model {
                                    KeyModel::Primary => "PRI",
                                    KeyModel::Unique => "UNI",
                                    KeyModel::Duplicate => "DUP",
                                }
                            };
                            rows.push(vec![
                                text_cell("def"),
                                text_cell(d),
                                text_cell(t),
                                text_cell(&c.name),
                                num_cell(i + 1),
                                None,
                                text_cell(if c.nullable { "YES" } else { "NO" }),
                                text_cell(dt),
                                text_cell(&ct),
                                text_cell(key),
                                text_cell(c.comment.as_deref().unwrap_or("")),
                            ]);
                        }
                    }
                }
                (
                    vec![
                        v("TABLE_CATALOG"),
                        v("TABLE_SCHEMA"),
                        v("TABLE_NAME"),
                        v("COLUMN_NAME"),
                        b("ORDINAL_POSITION"),
                        v("COLUMN_DEFAULT"),
                        v("IS_NULLABLE"),
                        v("DATA_TYPE"),
                        v("COLUMN_TYPE"),
                        v("COLUMN_KEY"),
                        v("COLUMN_COMMENT"),
                    ],
                    rows,
                )
            }
            "loads" => {
                // LoadsSystemTable.java: load jobs and stream load tasks, ordered by id.
                let rows = st
                    .txns
                    .iter()
                    .map(|t| {
                        let state = match t.state {
                            LabelState::Prepare | LabelState::Unknown => "LOADING",
                            LabelState::Prepared => "PREPARED",
                            LabelState::Committed => "COMMITTED",
                            LabelState::Visible => "FINISHED",
                            LabelState::Aborted => "CANCELLED",
                        };
                        let done = matches!(t.state, LabelState::Visible | LabelState::Aborted);
                        vec![
                            num_cell(t.id),
                            text_cell(&t.label),
                            text_cell(&t.db),
                            text_cell(&t.table),
                            text_cell(&t.user),
                            text_cell(state),
                            text_cell(if done {
                                "ETL:100%; LOAD:100%"
                            } else {
                                "ETL:0%; LOAD:0%"
                            }),
                            text_cell(match t.kind {
                                TxnKind::StreamLoad => "STREAM_LOAD",
                                TxnKind::Insert => "INSERT",
                            }),
                            num_cell(t.scan_rows),
                            num_cell(t.filtered_rows),
                            num_cell(t.unselected_rows),
                            num_cell(t.sink_rows),
                            text_cell(util::datetime_string(t.create_ms)),
                            t.finish_ms.map(|ms| util::datetime_string(ms).into_bytes()),
                            (t.state == LabelState::Aborted).then(|| t.reason.clone().into_bytes()),
                            t.error_url.clone().map(String::into_bytes),
                            num_cell(t.id),
                        ]
                    })
                    .collect();
                (
                    vec![
                        b("ID"),
                        v("LABEL"),
                        v("DB_NAME"),
                        v("TABLE_NAME"),
                        v("USER"),
                        v("STATE"),
                        v("PROGRESS"),
                        v("TYPE"),
                        b("SCAN_ROWS"),
                        b("FILTERED_ROWS"),
                        b("UNSELECTED_ROWS"),
                        b("SINK_ROWS"),
                        (String::from("CREATE_TIME"), SrType::DateTime, true),
                        (String::from("LOAD_FINISH_TIME"), SrType::DateTime, true),
                        v("ERROR_MSG"),
                        v("TRACKING_URL"),
                        b("JOB_ID"),
                    ],
                    rows,
                )
            }
            _ => {
                return Err(unknown_table("information_schema", view));
            }
        };
    Ok(Source {
        schema: "information_schema".into(),
        table: view.to_string(),
        columns,
        rows,
    })
}

/// Reads a FROM source. `wanted` names the columns for an external catalog read.
fn source(
    shared: &Shared,
    s: &Session,
    parts: &[String],
    wanted: &[String],
) -> Result<Source, SqlError> {
    if parts.len() == 2 && parts[0].eq_ignore_ascii_case("information_schema") {
        return info_schema(&shared.lock(), &parts[1]);
    }
    if parts.len() == 3 && !parts[0].eq_ignore_ascii_case("default_catalog") {
        let rows = read_external(shared, &parts[0], &parts[1], &parts[2], wanted)?;
        return Ok(Source {
            schema: parts[1].clone(),
            table: parts[2].clone(),
            columns: wanted
                .iter()
                .map(|w| (w.clone(), SrType::String, true))
                .collect(),
            rows,
        });
    }
    let (db, t) = resolve(s, parts)?;
    let st = shared.lock();
    if !st.dbs.contains_key(&db) {
        return Err(unknown_db(&db));
    }
    let tab = st.table(&db, &t).ok_or_else(|| unknown_table(&db, &t))?;
    Ok(Source {
        schema: db.clone(),
        table: t.clone(),
        columns: tab
            .def
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty, c.nullable))
            .collect(),
        rows: tab.rows.clone(),
    })
}

/// Calls the test's catalog reader (outside the state lock) for `catalog.ns.table`.
fn read_external(
    shared: &Shared,
    catalog: &str,
    ns: &str,
    table: &str,
    columns: &[String],
) -> Result<Vec<Vec<Cell>>, SqlError> {
    let reader = {
        let st = shared.lock();
        if !st.catalogs.contains_key(catalog) {
            return Err(analysis(format!(
                "Unknown catalog '{catalog}' (create it with CREATE EXTERNAL CATALOG first)"
            )));
        }
        st.catalog_reader.clone().ok_or_else(|| {
            analysis(format!(
                "catalog '{catalog}' has no reader: the test must call set_catalog_reader"
            ))
        })?
    };
    let rows = reader(catalog, ns, table, columns).map_err(|m| {
        err(
            1064,
            "HY000",
            format!("Failed to read {catalog}.{ns}.{table}: {m}"),
        )
    })?;
    if let Some(bad) = rows.iter().find(|r| r.len() != columns.len()) {
        return Err(err(
            1064,
            "HY000",
            format!(
                "catalog reader returned a row of {} cells for {} columns",
                bad.len(),
                columns.len()
            ),
        ));
    }
    Ok(rows)
}

fn compare_cells(a: &Cell, b: &Cell) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (None, None) => Equal,
        (None, _) => Less,
        (_, None) => Greater,
        (Some(x), Some(y)) => {
            let num = |v: &[u8]| std::str::from_utf8(v).ok()?.parse::<f64>().ok();
            match (num(x), num(y)) {
                (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(Equal),
                _ => x.cmp(y),
            }
        }
    }
}

fn run_select(
    shared: &Shared,
    s: &Session,
    sel: &Select,
) -> Result<(Vec<ColDef>, Vec<Vec<Cell>>), SqlError> {
    let Some(from) = &sel.from else {
        let mut cols = Vec::new();
        let mut row = Vec::new();
        for it in &sel.items {
            let (ty, v) = match &it.expr {
                Expr::Var(name) => (SrType::Varchar(256), system_var(s, &var_name(name))?),
                Expr::Lit(c) => (SrType::Varchar(256), c.clone()),
                Expr::Func(f) => match f.as_str() {
                    "VERSION" => (SrType::Varchar(64), text_cell(SERVER_VERSION)),
                    "CURRENT_VERSION" => (SrType::Varchar(64), text_cell("3.3.0-double")),
                    "DATABASE" | "SCHEMA" => (
                        SrType::Varchar(256),
                        s.db.as_deref().map(|d| d.as_bytes().to_vec()),
                    ),
                    "USER" | "SESSION_USER" | "SYSTEM_USER" => (
                        SrType::Varchar(256),
                        text_cell(format!("'{}'@'127.0.0.1'", s.user)),
                    ),
                    "CURRENT_USER" => {
                        (SrType::Varchar(256), text_cell(format!("'{}'@'%'", s.user)))
                    }
                    "CONNECTION_ID" => (SrType::BigInt, num_cell(s.conn_id)),
                    "NOW" | "CURRENT_TIMESTAMP" => (
                        SrType::DateTime,
                        text_cell(util::datetime_string(util::now_ms())),
                    ),
                    "LAST_INSERT_ID" => (SrType::BigInt, num_cell(0)),
                    _ => return Err(unsupported(&format!("the function {f}()"))),
                },
                Expr::Star | Expr::Col(_) | Expr::CountStar => {
                    return Err(err(
                        1054,
                        "42S22",
                        format!("Unknown column '{}' in 'field list'", it.name),
                    ));
                }
            };
            cols.push(ColDef::expr(&it.name, ty));
            row.push(v);
        }
        return Ok((cols, vec![row]));
    };
    let wanted: Vec<String> = sel
        .items
        .iter()
        .filter_map(|i| match &i.expr {
            Expr::Col(p) => p.last().cloned(),
            _ => None,
        })
        .collect();
    if from.len() == 3
        && !from[0].eq_ignore_ascii_case("default_catalog")
        && sel
            .items
            .iter()
            .any(|i| matches!(i.expr, Expr::Star | Expr::CountStar))
    {
        return Err(unsupported(
            "SELECT * or COUNT(*) from an external catalog table",
        ));
    }
    let src = source(shared, s, from, &wanted)?;
    let find = |name: &str, clause: &str| {
        src.columns
            .iter()
            .position(|(c, _, _)| c.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                err(
                    1054,
                    "42S22",
                    format!("Unknown column '{name}' in '{clause}'"),
                )
            })
    };
    let mut rows = src.rows.clone();
    for (col, allowed) in &sel.filter {
        let i = find(col, "where clause")?;
        rows.retain(|r| r[i].is_some() && allowed.contains(&r[i]));
    }
    if !sel.order.is_empty() {
        let keys: Vec<(usize, bool)> = sel
            .order
            .iter()
            .map(|(c, d)| find(c, "order clause").map(|i| (i, *d)))
            .collect::<Result<_, _>>()?;
        rows.sort_by(|a, b| {
            for &(i, desc) in &keys {
                let o = compare_cells(&a[i], &b[i]);
                let o = if desc { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let counting = sel.items.iter().any(|i| matches!(i.expr, Expr::CountStar));
    if counting {
        if !sel.items.iter().all(|i| matches!(i.expr, Expr::CountStar)) {
            return Err(unsupported(
                "COUNT(*) mixed with other select items (no GROUP BY)",
            ));
        }
        let n = rows.len();
        let cols = sel
            .items
            .iter()
            .map(|i| ColDef::expr(&i.name.to_ascii_lowercase(), SrType::BigInt))
            .collect();
        let row = sel.items.iter().map(|_| num_cell(n)).collect();
        let mut out = vec![row];
        if let Some((off, _)) = sel.limit
            && off > 0
        {
            out.clear();
        }
        return Ok((cols, out));
    }
    if let Some((off, n)) = sel.limit {
        rows = rows.into_iter().skip(off).take(n).collect();
    }
    let mut cols = Vec::new();
    let mut picks = Vec::new();
    for it in &sel.items {
        match &it.expr {
            Expr::Star => {
                for (i, (c, ty, nullable)) in src.columns.iter().enumerate() {
                    cols.push(ColDef {
                        name: c.clone(),
                        org_name: c.clone(),
                        table: src.table.clone(),
                        schema: src.schema.clone(),
                        ty: *ty,
                        nullable: *nullable,
                    });
                    picks.push(Pick::Col(i));
                }
            }
            Expr::Col(parts) => {
                let name = parts.last().cloned().unwrap_or_default();
                let i = find(&name, "field list")?;
                let (c, ty, nullable) = &src.columns[i];
                cols.push(ColDef {
                    name: it.name.clone(),
                    org_name: c.clone(),
                    table: src.table.clone(),
                    schema: src.schema.clone(),
                    ty: *ty,
                    nullable: *nullable,
                });
                picks.push(Pick::Col(i));
            }
            Expr::Lit(c) => {
                cols.push(ColDef::expr(&it.name, SrType::Varchar(256)));
                picks.push(Pick::Value(c.clone()));
            }
            Expr::Var(v) => {
                cols.push(ColDef::expr(&it.name, SrType::Varchar(256)));
                picks.push(Pick::Value(system_var(s, &var_name(v))?));
            }
            Expr::Func(f) => return Err(unsupported(&format!("{f}() with FROM"))),
            Expr::CountStar => return Err(unsupported("COUNT(*) mixed with other select items")),
        }
    }
    let out = rows
        .into_iter()
        .map(|r| {
            picks
                .iter()
                .map(|p| match p {
                    Pick::Col(i) => r[*i].clone(),
                    Pick::Value(v) => v.clone(),
                })
                .collect()
        })
        .collect();
    Ok((cols, out))
}

enum Pick {
    Col(usize),
    Value(Cell),
}

// ---------------------------------------------------------------------------------- INSERT

enum InsertSource {
    Values(Vec<Vec<Cell>>),
    Select(Select),
}

fn insert(shared: &Shared, s: &mut Session, p: &mut P) -> Result<Outcome, SqlError> {
    let overwrite = if p.eat_kw("OVERWRITE") {
        true
    } else {
        p.expect_kw("INTO")?;
        false
    };
    p.eat_kw("TABLE");
    let (parts, _, _) = p.name()?;
    let (db, table) = resolve(s, &parts)?;
    if p.is_kw("PARTITION") || p.is_kw("TEMPORARY") {
        return Err(unsupported("INSERT into named partitions"));
    }
    let mut label = None;
    if p.eat_kws(&["WITH", "LABEL"]) {
        label = Some(p.ident()?);
    }
    let target_cols = if p.is_sym('(')
        && !(p
            .peek_at(1)
            .is_some_and(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("SELECT"))))
    {
        Some(p.ident_list()?)
    } else {
        None
    };
    let src = if p.eat_kw("VALUES") {
        let mut rows = Vec::new();
        loop {
            p.expect_sym('(')?;
            let mut r = vec![p.literal()?];
            while p.eat_sym(',') {
                r.push(p.literal()?);
            }
            p.expect_sym(')')?;
            rows.push(r);
            if !p.eat_sym(',') {
                break;
            }
        }
        InsertSource::Values(rows)
    } else {
        InsertSource::Select(parse_select(p)?)
    };
    p.expect_end()?;

    let label =
        label.unwrap_or_else(|| format!("insert_{}", util::uuid_string().replace('-', "_")));
    if !store::valid_label(&label) {
        return Err(analysis(store::label_format_error(&label)));
    }

    // Analysis, then the transaction (the label is taken here), as StarRocks orders them.
    let (txn_id, def, targets) = {
        let mut st = shared.lock();
        if !st.dbs.contains_key(&db) {
            return Err(unknown_db(&db));
        }
        let def = st
            .table(&db, &table)
            .ok_or_else(|| unknown_table(&db, &table))?
            .def
            .clone();
        let targets: Vec<usize> = match &target_cols {
            None => (0..def.columns.len()).collect(),
            Some(names) => {
                let mut v = Vec::new();
                for n in names {
                    let i = def.col_index(n).ok_or_else(|| {
                        err(1054, "42S22", format!("Unknown column '{n}' in '{table}'"))
                    })?;
                    if v.contains(&i) {
                        return Err(analysis(format!("Column '{n}' specified twice")));
                    }
                    v.push(i);
                }
                v
            }
        };
        for (i, c) in def.columns.iter().enumerate() {
            if !targets.contains(&i) && !c.nullable {
                return Err(analysis(format!(
                    "'{}' must be explicitly mentioned in column permutation",
                    c.name
                )));
            }
        }
        let width = match &src {
            InsertSource::Values(rows) => rows.first().map_or(0, Vec::len),
            InsertSource::Select(sel) if sel.items.iter().any(|i| matches!(i.expr, Expr::Star)) => {
                targets.len()
            }
            InsertSource::Select(sel) => sel.items.len(),
        };
        if width != targets.len() {
            return Err(err(
                1136,
                "21S01",
                format!(
                    "Column count doesn't match value count: {} target columns, {} values",
                    targets.len(),
                    width
                ),
            ));
        }
        if let InsertSource::Select(sel) = &src
            && let Some(from) = &sel.from
            && from.len() == 3
            && !from[0].eq_ignore_ascii_case("default_catalog")
            && !st.catalogs.contains_key(&from[0])
        {
            return Err(analysis(format!(
                "Unknown catalog '{}' (create it with CREATE EXTERNAL CATALOG first)",
                from[0]
            )));
        }
        let id = st
            .begin_txn(&db, &label, &table, TxnKind::Insert, &s.user)
            .map_err(|_| analysis(format!("Label [{label}] has already been used.")))?;
        (id, def, targets)
    };

    let fail = |msg: String| -> SqlError {
        shared.lock().abort(txn_id, &msg);
        err(1064, "HY000", msg)
    };
    let rows: Vec<Vec<Cell>> = match src {
        InsertSource::Values(rows) => rows,
        InsertSource::Select(mut sel) => {
            let external = sel
                .from
                .as_ref()
                .is_some_and(|f| f.len() == 3 && !f[0].eq_ignore_ascii_case("default_catalog"));
            if external && sel.items.iter().any(|i| matches!(i.expr, Expr::Star)) {
                // SELECT * from the lake: ask the reader for the target's columns.
                sel.items = targets
                    .iter()
                    .map(|&i| Item {
                        expr: Expr::Col(vec![def.columns[i].name.clone()]),
                        name: def.columns[i].name.clone(),
                    })
                    .collect();
            }
            match run_select(shared, s, &sel) {
                Ok((cols, rows)) => {
                    if cols.len() != targets.len() {
                        return Err(fail(format!(
                            "Column count doesn't match value count: {} target columns, {} values",
                            targets.len(),
                            cols.len()
                        )));
                    }
                    rows
                }
                Err(e) => return Err(fail(e.msg)),
            }
        }
    };

    let strict = !s
        .vars
        .get("enable_insert_strict")
        .is_some_and(|v| v.eq_ignore_ascii_case("false") || v == "0");
    let mut out = Vec::with_capacity(rows.len());
    let mut filtered = 0u64;
    let mut first_error = None;
    for r in &rows {
        if r.len() != targets.len() {
            return Err(fail(format!(
                "Column count doesn't match value count: {} target columns, {} values",
                targets.len(),
                r.len()
            )));
        }
        let mut row: Vec<Cell> = vec![None; def.columns.len()];
        let mut bad = None;
        for (v, &ci) in r.iter().zip(&targets) {
            let col = &def.columns[ci];
            match v {
                None if !col.nullable => {
                    bad = Some(format!("NULL value in non-nullable column '{}'", col.name));
                }
                None => {}
                Some(v) => match col.ty.from_text(v) {
                    Ok(x) => row[ci] = Some(x),
                    Err(e @ (ValueError::Conversion(_) | ValueError::TooLong(_))) => {
                        bad = Some(format!("column '{}': {}", col.name, e.message()));
                    }
                },
            }
            if bad.is_some() {
                break;
            }
        }
        match bad {
            Some(b) => {
                filtered += 1;
                first_error.get_or_insert(b);
            }
            None => out.push(row),
        }
    }
    if filtered > 0 && strict {
        let msg = format!(
            "Insert has filtered data in strict mode. txn_id = {txn_id}, first rejected row: {}",
            first_error.unwrap_or_default()
        );
        {
            let mut st = shared.lock();
            if let Some(t) = st.txn_mut(txn_id) {
                t.scan_rows = rows.len() as u64;
                t.filtered_rows = filtered;
            }
        }
        return Err(fail(msg));
    }
    let loaded = out.len() as u64;
    let fault = {
        let mut st = shared.lock();
        if let Some(t) = st.txn_mut(txn_id) {
            t.scan_rows = rows.len() as u64;
            t.filtered_rows = filtered;
            t.sink_rows = loaded;
        }
        st.commit_visible(txn_id, out, overwrite)
            .map_err(|m| err(1064, "HY000", m))?;
        st.take_fault(|f| matches!(f, Fault::LoseInsertResponse { .. }) && f.matches_label(&label))
    };
    if fault.is_some() {
        return Ok(Outcome::Drop { affected: loaded });
    }
    Ok(Outcome::Ok {
        affected: loaded,
        info: format!("{{'label':'{label}', 'status':'VISIBLE', 'txnId':'{txn_id}'}}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexer_handles_quotes_escapes_and_comments() {
        let t = lex("SELECT `a``b`, 'it''s \\'x\\'' -- c\n, \"q\" /* z */ FROM t;").unwrap();
        let toks: Vec<Tok> = t.into_iter().map(|t| t.tok).collect();
        assert_eq!(toks[1], Tok::Ident("a`b".into()));
        assert_eq!(toks[3], Tok::Str("it's 'x'".into()));
        assert_eq!(toks[5], Tok::Str("q".into()));
        assert_eq!(toks[6], Tok::Word("FROM".into()));
    }
}
