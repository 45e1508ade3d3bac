use super::*;

#[test]
fn an_append_run_upserts_by_key_once_even_when_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let t = SqliteTarget {
        path: dir.path().join("target.db"),
    };
    let io = iceberg::io::FileIO::new_with_fs();
    let mut info = table("T", true);
    let f0 = parquet(
        dir.path(),
        "a.parquet",
        &[(1, "one"), (2, "two"), (3, "three")],
    );
    full_load(&t, &info, "run1", &[f0]);
    assert_eq!(
        rows(&t, "T"),
        owned(&[(1, "one"), (2, "two"), (3, "three")])
    );

    // Run 2 moves an updated row 2 and new rows 4, 5 in two files.
    info.incremental.as_mut().unwrap().append = true;
    let g0 = parquet(dir.path(), "b0.parquet", &[(2, "TWO"), (4, "four")]);
    let g1 = parquet(dir.path(), "b1.parquet", &[(5, "five")]);
    assert!(t.prepare_append(&info, "run2").unwrap().is_empty());
    let d = t.load_unit_append(&info, "run2", 0, &g0, &io, 1).unwrap();
    assert_eq!(d.rows, 2);
    // A crash here; the resumed load finds unit 0 done and applies only unit 1.
    let done = t.prepare_append(&info, "run2").unwrap();
    assert_eq!(done, HashSet::from([0]));
    t.load_unit_append(&info, "run2", 1, &g1, &io, 1).unwrap();
    let want = owned(&[
        (1, "one"),
        (2, "TWO"),
        (3, "three"),
        (4, "four"),
        (5, "five"),
    ]);
    assert_eq!(rows(&t, "T"), want);
    assert_eq!(t.count(&info).unwrap(), 5);
}

#[test]
fn an_append_run_of_a_keyless_table_appends_each_unit_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = SqliteTarget {
        path: dir.path().join("target.db"),
    };
    let io = iceberg::io::FileIO::new_with_fs();
    let mut info = table("K", false);
    info.incremental.as_mut().unwrap().append = true;
    // No live table yet: the append creates it.
    let f = parquet(dir.path(), "k.parquet", &[(1, "x"), (1, "x")]);
    assert!(t.prepare_append(&info, "run1").unwrap().is_empty());
    t.load_unit_append(&info, "run1", 0, &f, &io, 8).unwrap();
    assert_eq!(t.prepare_append(&info, "run1").unwrap(), HashSet::from([0]));
    // Applying a recorded unit again fails on its ledger row, and its rows roll back with it.
    assert!(t.load_unit_append(&info, "run1", 0, &f, &io, 8).is_err());
    assert_eq!(rows(&t, "K"), owned(&[(1, "x"); 2]));
    // The next run appends the same rows again: a keyless table keeps every row.
    t.load_unit_append(&info, "run2", 0, &f, &io, 8).unwrap();
    assert_eq!(rows(&t, "K"), owned(&[(1, "x"); 4]));
}

#[test]
fn an_append_into_a_table_without_the_key_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let t = SqliteTarget {
        path: dir.path().join("target.db"),
    };
    let mut info = table("T", true);
    // Made by a full run before the table was incremental: no key.
    let plain = TableInfo {
        incremental: None,
        ..info.clone()
    };
    let f = parquet(dir.path(), "a.parquet", &[(1, "one")]);
    full_load(&t, &plain, "run1", &[f]);
    info.incremental.as_mut().unwrap().append = true;
    let e = t.prepare_append(&info, "run2").unwrap_err();
    assert!(e.message.contains("table T"), "{e}");
    assert!(e.message.contains("(ID)"), "{e}");
    assert!(e.message.contains("full refresh"), "{e}");
}

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, StringArray};

use crate::model::{ColType, Column, Incremental};

fn table(name: &str, keyed: bool) -> TableInfo {
    let mut t = TableInfo::new(
        name,
        vec![
            Column {
                name: "ID".into(),
                ty: ColType::Int64,
                nullable: false,
            },
            Column {
                name: "NAME".into(),
                ty: ColType::String,
                nullable: true,
            },
        ],
        keyed.then(|| "ID".to_string()),
        0,
    );
    if keyed {
        t.primary_key = vec!["ID".into()];
    }
    t.incremental = Some(Incremental {
        cursor: "ID".into(),
        low: None,
        high: None,
        append: false,
    });
    t
}

fn parquet(dir: &Path, file: &str, rows: &[(i64, &str)]) -> String {
    let ids: ArrayRef = Arc::new(Int64Array::from(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
    ));
    let names: ArrayRef = Arc::new(StringArray::from(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_from_iter([("ID", ids), ("NAME", names)]).unwrap();
    let path = dir.join(file);
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    path.display().to_string()
}

fn rows(t: &SqliteTarget, table: &str) -> Vec<(i64, String)> {
    let c = reader::open(&t.path, false).unwrap();
    let mut st = c
        .prepare(&format!(
            "SELECT ID, NAME FROM {} ORDER BY ID, NAME",
            quote(table)
        ))
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
}

fn owned(rows: &[(i64, &str)]) -> Vec<(i64, String)> {
    rows.iter().map(|(i, n)| (*i, n.to_string())).collect()
}

/// A full load of run 1 as the load task does it.
fn full_load(t: &SqliteTarget, info: &TableInfo, run: &str, files: &[String]) {
    let io = iceberg::io::FileIO::new_with_fs();
    assert!(t.prepare(info, run).unwrap().is_empty());
    for (i, f) in files.iter().enumerate() {
        t.load_unit(info, run, i as u32, f, &io, 2).unwrap();
    }
    t.publish(&info.name, run).unwrap();
}
