//! The double's in-memory StarRocks: databases, tables (definition, raw DDL, rows in the text
//! form StarRocks returns), external catalogs, and the transactions behind labels.
//!
//! Both front doors (Stream Load over HTTP and SQL over the MySQL protocol) change this one
//! state under one mutex, so a label taken by a Stream Load is taken for INSERT too (StarRocks
//! keeps one label namespace per database) and information_schema.loads lists both kinds.

use std::collections::{BTreeMap, HashMap};

use super::types::SrType;
use super::util;
use super::{CatalogReader, Cell, Fault, KeyModel, LabelState, RequestLog};

/// A column of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: SrType,
    pub nullable: bool,
    pub comment: Option<String>,
}

/// What CREATE TABLE declared.
#[derive(Clone, Debug)]
pub struct TableDef {
    pub columns: Vec<Column>,
    pub model: KeyModel,
    pub keys: Vec<String>,
    pub comment: String,
    /// Partition column (expression or column partitioning), if any.
    pub partition: Option<String>,
    /// The CREATE TABLE text before the table name.
    pub ddl_head: String,
    /// The CREATE TABLE text after the table name.
    pub ddl_tail: String,
}

impl TableDef {
    /// Index of a column, matched case-insensitively as StarRocks does.
    pub fn col_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    pub fn key_indices(&self) -> Vec<usize> {
        self.keys.iter().filter_map(|k| self.col_index(k)).collect()
    }

    /// The DDL text with the table's current qualified name.
    pub fn ddl(&self, db: &str, table: &str) -> String {
        format!(
            "{}{}.{}{}",
            self.ddl_head,
            quote_ident(db),
            quote_ident(table),
            self.ddl_tail
        )
    }
}

/// Backquotes an identifier, doubling backquotes in it.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// When set (benchmarks), loaded rows are validated and counted but their cells are not kept,
/// so a multi-million-row load does not measure the double's memory. Only `COUNT(*)` is then
/// meaningful.
pub static DISCARD_ROWS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A table: its definition and its rows.
#[derive(Clone, Debug)]
pub struct Table {
    pub def: TableDef,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// Adds rows as a load does: appended for DUPLICATE KEY tables; for PRIMARY KEY and UNIQUE
    /// KEY tables a row replaces the row with the same key (the last one of a batch wins).
    pub fn apply(&mut self, rows: Vec<Vec<Cell>>, overwrite: bool) {
        if overwrite {
            self.rows.clear();
        }
        if DISCARD_ROWS.load(std::sync::atomic::Ordering::Relaxed) {
            self.rows.extend(rows.into_iter().map(|_| Vec::new()));
            return;
        }
        if self.def.model == KeyModel::Duplicate {
            self.rows.extend(rows);
            return;
        }
        let keys = self.def.key_indices();
        let key_of = |r: &Vec<Cell>| keys.iter().map(|&i| r[i].clone()).collect::<Vec<_>>();
        let mut pos: HashMap<Vec<Cell>, usize> = HashMap::new();
        for (i, r) in self.rows.iter().enumerate() {
            pos.insert(key_of(r), i);
        }
        for r in rows {
            let k = key_of(&r);
            match pos.get(&k) {
                Some(&i) => self.rows[i] = r,
                None => {
                    pos.insert(k, self.rows.len());
                    self.rows.push(r);
                }
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Database {
    pub tables: BTreeMap<String, Table>,
}

/// Which front door created a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnKind {
    StreamLoad,
    Insert,
}

/// One load job / transaction attempt under a label.
#[derive(Clone, Debug)]
pub struct Txn {
    pub id: i64,
    pub db: String,
    pub label: String,
    pub table: String,
    pub kind: TxnKind,
    pub state: LabelState,
    /// Why it was aborted ("" otherwise).
    pub reason: String,
    /// Rows committed but not yet published (Publish Timeout).
    pub pending: Vec<Vec<Cell>>,
    /// INSERT OVERWRITE: publishing replaces the table's rows.
    pub overwrite: bool,
    /// get_load_state polls left before a COMMITTED transaction turns VISIBLE.
    pub polls_left: u32,
    pub scan_rows: u64,
    pub filtered_rows: u64,
    pub unselected_rows: u64,
    pub sink_rows: u64,
    pub user: String,
    pub create_ms: u128,
    pub finish_ms: Option<u128>,
    pub error_url: Option<String>,
}

/// A label that cannot be used: the status StarRocks reports for the job holding it.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelTaken {
    /// `RUNNING` (PREPARE/PREPARED) or `FINISHED` (COMMITTED/VISIBLE).
    pub existing_job_status: &'static str,
}

/// Everything the double knows, behind one mutex.
#[derive(Default)]
pub struct State {
    pub dbs: BTreeMap<String, Database>,
    /// External catalogs created with CREATE EXTERNAL CATALOG: name -> properties.
    pub catalogs: BTreeMap<String, Vec<(String, String)>>,
    pub txns: Vec<Txn>,
    pub faults: Vec<Fault>,
    pub requests: Vec<RequestLog>,
    pub queries: Vec<String>,
    pub error_logs: HashMap<String, String>,
    pub next_txn_id: i64,
    pub catalog_reader: Option<CatalogReader>,
}

/// `^[-_A-Za-z0-9]{1,128}$`, StarRocks' label rule (FeNameFormat.checkLabel).
pub fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 128
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn label_format_error(label: &str) -> String {
    format!("Label format error. regex: ^[-_A-Za-z0-9]{{1,128}}$, label: {label}")
}

impl State {
    pub fn new() -> State {
        State {
            next_txn_id: 1000,
            ..State::default()
        }
    }

    pub fn table(&self, db: &str, table: &str) -> Option<&Table> {
        self.dbs.get(db)?.tables.get(table)
    }

    pub fn table_mut(&mut self, db: &str, table: &str) -> Option<&mut Table> {
        self.dbs.get_mut(db)?.tables.get_mut(table)
    }

    /// The newest transaction under a label.
    pub fn latest_txn(&self, db: &str, label: &str) -> Option<&Txn> {
        self.txns
            .iter()
            .rev()
            .find(|t| t.db == db && t.label == label)
    }

    pub fn label_state(&self, db: &str, label: &str) -> LabelState {
        self.latest_txn(db, label)
            .map(|t| t.state)
            .unwrap_or(LabelState::Unknown)
    }

    /// Whether a label may start a new job (unknown, or its last job aborted).
    pub fn check_label(&self, db: &str, label: &str) -> Result<(), LabelTaken> {
        match self.label_state(db, label) {
            LabelState::Unknown | LabelState::Aborted => Ok(()),
            LabelState::Prepare | LabelState::Prepared => Err(LabelTaken {
                existing_job_status: "RUNNING",
            }),
            LabelState::Committed | LabelState::Visible => Err(LabelTaken {
                existing_job_status: "FINISHED",
            }),
        }
    }

    /// Starts a transaction (state PREPARE) under a free label.
    pub fn begin_txn(
        &mut self,
        db: &str,
        label: &str,
        table: &str,
        kind: TxnKind,
        user: &str,
    ) -> Result<i64, LabelTaken> {
        self.check_label(db, label)?;
        self.next_txn_id += 1;
        let id = self.next_txn_id;
        self.txns.push(Txn {
            id,
            db: db.to_string(),
            label: label.to_string(),
            table: table.to_string(),
            kind,
            state: LabelState::Prepare,
            reason: String::new(),
            pending: Vec::new(),
            overwrite: false,
            polls_left: 0,
            scan_rows: 0,
            filtered_rows: 0,
            unselected_rows: 0,
            sink_rows: 0,
            user: user.to_string(),
            create_ms: util::now_ms(),
            finish_ms: None,
            error_url: None,
        });
        Ok(id)
    }

    pub fn txn_mut(&mut self, id: i64) -> Option<&mut Txn> {
        self.txns.iter_mut().find(|t| t.id == id)
    }

    pub fn abort(&mut self, id: i64, reason: &str) {
        if let Some(t) = self.txn_mut(id) {
            t.state = LabelState::Aborted;
            t.reason = reason.to_string();
            t.pending.clear();
            t.finish_ms = Some(util::now_ms());
        }
    }

    /// Commits and publishes: the rows become visible in the table at once, atomically.
    pub fn commit_visible(
        &mut self,
        id: i64,
        rows: Vec<Vec<Cell>>,
        overwrite: bool,
    ) -> Result<(), String> {
        let (db, table) = match self.txns.iter().find(|t| t.id == id) {
            Some(t) => (t.db.clone(), t.table.clone()),
            None => return Err(format!("transaction {id} not found")),
        };
        let Some(t) = self.table_mut(&db, &table) else {
            let msg = format!("table {db}.{table} was dropped during the load");
            self.abort(id, &msg);
            return Err(msg);
        };
        t.apply(rows, overwrite);
        if let Some(t) = self.txn_mut(id) {
            t.state = LabelState::Visible;
            t.finish_ms = Some(util::now_ms());
        }
        Ok(())
    }

    /// Commits without publishing (Publish Timeout): rows stay invisible until the transaction
    /// is published by polls or [`State::publish`].
    pub fn commit_pending(&mut self, id: i64, rows: Vec<Vec<Cell>>, overwrite: bool, polls: u32) {
        if let Some(t) = self.txn_mut(id) {
            t.state = LabelState::Committed;
            t.pending = rows;
            t.overwrite = overwrite;
            t.polls_left = polls.max(1);
        }
    }

    /// Publishes a COMMITTED transaction: its rows become visible.
    pub fn publish(&mut self, id: i64) {
        let Some(t) = self.txn_mut(id) else { return };
        if t.state != LabelState::Committed {
            return;
        }
        let rows = std::mem::take(&mut t.pending);
        let overwrite = t.overwrite;
        t.state = LabelState::Visible;
        t.finish_ms = Some(util::now_ms());
        let (db, table) = (t.db.clone(), t.table.clone());
        if let Some(tab) = self.table_mut(&db, &table) {
            tab.apply(rows, overwrite);
        }
    }

    /// One get_load_state poll of a label: a COMMITTED transaction counts down to VISIBLE.
    pub fn poll(&mut self, db: &str, label: &str) -> LabelState {
        let id = match self.latest_txn(db, label) {
            Some(t) if t.state == LabelState::Committed => t.id,
            Some(t) => return t.state,
            None => return LabelState::Unknown,
        };
        let publish = match self.txn_mut(id) {
            Some(t) => {
                t.polls_left = t.polls_left.saturating_sub(1);
                t.polls_left == 0
            }
            None => false,
        };
        if publish {
            self.publish(id);
        }
        self.label_state(db, label)
    }

    /// Removes and returns the first armed fault that `matches` accepts.
    pub fn take_fault(&mut self, matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let i = self.faults.iter().position(matches)?;
        Some(self.faults.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(model: KeyModel) -> TableDef {
        TableDef {
            columns: vec![
                Column {
                    name: "k".into(),
                    ty: SrType::Int,
                    nullable: false,
                    comment: None,
                },
                Column {
                    name: "v".into(),
                    ty: SrType::String,
                    nullable: true,
                    comment: None,
                },
            ],
            model,
            keys: vec!["k".into()],
            comment: String::new(),
            partition: None,
            ddl_head: String::new(),
            ddl_tail: String::new(),
        }
    }

    fn row(k: &str, v: &str) -> Vec<Cell> {
        vec![Some(k.into()), Some(v.into())]
    }

    #[test]
    fn primary_key_tables_upsert_duplicate_tables_append() {
        let mut pk = Table {
            def: def(KeyModel::Primary),
            rows: vec![],
        };
        pk.apply(vec![row("1", "a"), row("2", "b"), row("1", "c")], false);
        assert_eq!(pk.rows, vec![row("1", "c"), row("2", "b")]);
        let mut dup = Table {
            def: def(KeyModel::Duplicate),
            rows: vec![],
        };
        dup.apply(vec![row("1", "a"), row("1", "a")], false);
        assert_eq!(dup.rows.len(), 2);
    }

    #[test]
    fn labels_are_reusable_only_after_abort() {
        let mut s = State::new();
        let a = s
            .begin_txn("db", "l", "t", TxnKind::StreamLoad, "root")
            .unwrap();
        assert_eq!(
            s.begin_txn("db", "l", "t", TxnKind::StreamLoad, "root"),
            Err(LabelTaken {
                existing_job_status: "RUNNING"
            })
        );
        s.abort(a, "x");
        assert!(s.begin_txn("db", "l", "t", TxnKind::Insert, "root").is_ok());
        assert!(
            s.begin_txn("other", "l", "t", TxnKind::Insert, "root")
                .is_ok()
        );
        assert!(!valid_label("a.b"));
        assert!(valid_label("wf-1_run_2"));
    }
}
