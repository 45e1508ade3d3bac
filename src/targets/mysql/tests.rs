use super::ddl::decimal_bytes;
use super::load::{Piece, produce, upsert_clause};
use super::names::*;
use super::*;
use crate::config::Secret;
use crate::model::ColType;
use crate::model::Column;
use crate::model::ColumnOrigin;
use crate::model::fingerprint::Digest128;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int32Array,
    Int64Array, LargeBinaryArray, StringArray, TimestampMicrosecondArray,
};
use iceberg::io::FileIO;
use std::sync::Arc;

/// Data files in the tests are local.
fn local_io() -> FileIO {
    FileIO::new_with_fs()
}

fn col(name: &str, ty: ColType, nullable: bool) -> Column {
    Column {
        name: name.into(),
        ty,
        nullable,
    }
}

/// 40 x varchar(63): too wide only for InnoDB's in-page limit.
fn narrow_table(name: &str) -> TableInfo {
    let mut t = TableInfo::new(
        name,
        (0..40)
            .map(|i| col(&format!("c{i}"), ColType::String, false))
            .collect(),
        None,
        0,
    );
    t.origin = (0..40).map(|_| spec("varchar(63)")).collect();
    t
}

fn spec(declared: &str) -> ColumnOrigin {
    ColumnOrigin {
        expr: String::new(),
        declared: declared.into(),
        identity: false,
        computed: false,
    }
}

fn config(database: &str) -> MysqlTargetConfig {
    MysqlTargetConfig {
        url: Secret::new("mysql://root@127.0.0.1:3306"),
        user: None,
        password: None,
        database: database.into(),
        create_tables: true,
        insert_bytes: 2048,
    }
}

/// A table with every type, nullable, plus its key; source types like SQL Server's.
fn every_type(name: &str) -> TableInfo {
    let cols = [
        ("id", ColType::Int32, false, "int"),
        ("flag", ColType::Bool, true, "bit"),
        ("tiny", ColType::Int32, true, "tinyint"),
        ("small", ColType::Int32, true, "smallint"),
        ("big", ColType::Int64, true, "bigint"),
        ("f32", ColType::Float32, true, "real"),
        ("f64", ColType::Float64, true, "float"),
        (
            "dec",
            ColType::Decimal {
                precision: 38,
                scale: 10,
            },
            true,
            "decimal(38,10)",
        ),
        ("day", ColType::Date, true, "date"),
        ("ts", ColType::Timestamp, true, "datetime2(7)"),
        ("tz", ColType::TimestampTz, true, "datetimeoffset(7)"),
        ("name", ColType::String, true, "nvarchar(100)"),
        ("notes", ColType::String, true, "nvarchar(max)"),
        ("guid", ColType::String, true, "uniqueidentifier"),
        ("bin", ColType::Binary, true, "varbinary(16)"),
        ("blob", ColType::Binary, true, "varbinary(max)"),
    ];
    let mut info = TableInfo::new(
        name,
        cols.iter()
            .map(|(n, t, null, _)| col(n, *t, *null))
            .collect(),
        Some("id".into()),
        0,
    );
    info.origin = cols.iter().map(|c| spec(c.3)).collect();
    info.primary_key = vec!["id".into()];
    info
}

fn target(database: &str) -> MysqlTarget {
    MysqlTarget::new(&config(database)).unwrap()
}

#[test]
fn url_parts_and_overrides_and_no_password_anywhere() {
    let mut cfg = config("");
    cfg.url = Secret::new("mysql://lo%40der:s3cr%2Ft@db.example:3307/sales");
    let t = MysqlTarget::new(&cfg).unwrap();
    assert_eq!(t.database(), "sales");
    assert_eq!(t.describe_location(), "mysql db.example:3307/sales");
    assert!(!format!("{t:?}").contains("s3cr"), "{t:?}");
    cfg.database = "other".into();
    cfg.password = Some(Secret::new("hunter2"));
    let t = MysqlTarget::new(&cfg).unwrap();
    assert_eq!(t.database(), "other");
    assert!(!format!("{t:?}").contains("hunter2"));

    for bad in [
        "not a url s3cr",
        "postgres://u:s3cr@h/db",
        "mysql://u:s3cr@/db",
    ] {
        cfg.url = Secret::new(bad);
        let e = MysqlTarget::new(&cfg).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Config);
        assert!(!e.to_string().contains("s3cr"), "{e}");
    }
    cfg.url = Secret::new("mysql://u@h");
    cfg.database = String::new();
    assert!(MysqlTarget::new(&cfg).is_err());
}

#[test]
fn names_are_quoted_checked_and_shortened_deterministically() {
    assert_eq!(quote("a`b"), "`a``b`");
    let run = "20261124194000123_abcd";
    assert_eq!(
        stage_name("ORDERS", run),
        "ORDERS__dag_20261124194000123_abcd"
    );
    assert_eq!(
        old_name("ORDERS", run),
        "ORDERS__dag_old_20261124194000123_abcd"
    );
    assert!(is_stage_name(&stage_name("ORDERS", run), "ORDERS"));
    assert!(is_stage_name(&old_name("ORDERS", run), "ORDERS"));
    assert!(!is_stage_name("ORDERS__dag_archive", "ORDERS"));
    assert!(!is_stage_name(&stage_name("ORDERS", run), "ORDER"));

    let long = "T".repeat(50);
    let s = stage_name(&long, run);
    assert_eq!(s.chars().count(), 64);
    assert!(
        s.starts_with(&"T".repeat(46)) && s.contains("__dag_"),
        "{s}"
    );
    assert_eq!(s, stage_name(&long, run));
    assert_ne!(s, stage_name(&long, "20261124194000123_abce"));
    assert_ne!(s, old_name(&long, run));
    let long2 = format!("{}U", "T".repeat(49));
    assert_ne!(s, stage_name(&long2, run));
    let wide = "é".repeat(64);
    assert_eq!(stage_name(&wide, run).chars().count(), 64);
    check_name(&stage_name(&wide, run), "table").unwrap();

    assert_eq!(stage_of(&stage_comment("A for B", run)), Some("A for B"));
    assert_eq!(stage_of("dag run x for T"), Some("T"));
    assert_eq!(stage_of("orders of 2024"), None);

    check_name(&"x".repeat(64), "table").unwrap();
    let e = check_name(&"x".repeat(65), "table").unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::Config);
    assert!(
        e.message.contains(&"x".repeat(65)) && e.message.contains("64"),
        "{e}"
    );
    assert!(check_name("a ", "table").is_err());
    assert!(check_name("", "table").is_err());
    assert!(check_name("a\0", "table").is_err());
    assert!(check_name("smile😀", "table").is_err());
    assert!(check_run("x y").is_err());
    check_run(run).unwrap();

    let t = target("db");
    let mut info = every_type(&"x".repeat(65));
    let e = t.create_table_sql(&info, "s", "c").unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::Config);
    info.name = "ok".into();
    info.columns[1].name = "ID".into();
    let e = t.create_table_sql(&info, "s", "c").unwrap_err();
    assert!(e.message.contains("ignore case"), "{e}");
}

#[test]
fn upserts_update_the_non_key_columns() {
    let mut t = TableInfo::new(
        "t",
        vec![
            col("k", ColType::Int32, false),
            col("v`w", ColType::String, true),
        ],
        None,
        0,
    );
    assert_eq!(upsert_clause(&t), "", "keyless: plain inserts");
    t.primary_key = vec!["K".into()];
    assert_eq!(
        upsert_clause(&t),
        " ON DUPLICATE KEY UPDATE `v``w` = VALUES(`v``w`)"
    );
    t.primary_key = vec!["k".into(), "v`w".into()];
    assert_eq!(upsert_clause(&t), " ON DUPLICATE KEY UPDATE `k` = `k`");
}

#[test]
fn ddl_of_every_type() {
    let t = target("db");
    let info = every_type("T");
    let sql = t.create_table_sql(&info, "T", "dag run r for T").unwrap();
    assert_eq!(
        sql,
        "CREATE TABLE IF NOT EXISTS `db`.`T` (\n  \
           `id` INT NOT NULL,\n  \
           `flag` BOOLEAN,\n  \
           `tiny` TINYINT UNSIGNED,\n  \
           `small` SMALLINT,\n  \
           `big` BIGINT,\n  \
           `f32` FLOAT,\n  \
           `f64` DOUBLE,\n  \
           `dec` DECIMAL(38,10),\n  \
           `day` DATE,\n  \
           `ts` DATETIME(6),\n  \
           `tz` DATETIME(6),\n  \
           `name` VARCHAR(100),\n  \
           `notes` LONGTEXT,\n  \
           `guid` CHAR(36),\n  \
           `bin` VARBINARY(16),\n  \
           `blob` LONGBLOB,\n  \
           PRIMARY KEY (`id`)\n\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin \
         COMMENT='dag run r for T'"
    );
    assert_eq!(decimal_bytes(38, 10), 18);
    assert_eq!(decimal_bytes(19, 4), 9);
    assert_eq!(decimal_bytes(10, 0), 5);

    // Unknown source types: plain INT, unbounded text; a quote in a comment is doubled.
    let mut bare = every_type("B");
    bare.origin.clear();
    bare.primary_key.clear();
    let sql = t.create_table_sql(&bare, "B", "it's \\ here").unwrap();
    assert!(
        sql.contains("`tiny` INT,") && sql.contains("`name` LONGTEXT,"),
        "{sql}"
    );
    assert!(!sql.contains("PRIMARY KEY"), "{sql}");
    assert!(sql.ends_with("COMMENT='it''s \\\\ here'"), "{sql}");
}

/// 66 columns of nvarchar(255): over the 65,535-byte row limit as VARCHAR(255) in utf8mb4.
fn wide(name: &str) -> TableInfo {
    let mut info = TableInfo::new(
        name,
        (0..66)
            .map(|i| col(&format!("c{i}"), ColType::String, i != 0))
            .collect(),
        None,
        0,
    );
    info.origin = (0..66).map(|_| spec("nvarchar(255)")).collect();
    info.primary_key = vec!["c0".into()];
    info
}

#[test]
fn wide_tables_and_keys_fit_the_row_limits() {
    let t = target("db");
    let sql = t.create_table_sql(&wide("W"), "W", "c").unwrap();
    let texts = sql.matches(" TEXT").count();
    // 66 x 1022 bytes is 67,452; two TEXT columns bring it to 65,417 (+ 9 null bytes).
    assert_eq!(texts, 2, "{sql}");
    assert!(
        sql.contains("`c0` VARCHAR(255) NOT NULL"),
        "key stays VARCHAR: {sql}"
    );
    assert!(
        sql.contains("`c1` TEXT,") && sql.contains("`c2` TEXT,"),
        "{sql}"
    );
    assert!(sql.contains("`c3` VARCHAR(255),"), "{sql}");

    // Many short columns: InnoDB's in-page limit (32 x VARCHAR(63) fit, 33 do not).
    let narrow = narrow_table("N");
    let sql = t.create_table_sql(&narrow, "N", "c").unwrap();
    // 31 x 253 + 9 x 21 + 26 = 8,058 bytes; with 8 TEXT columns 8,264.
    assert_eq!(sql.matches(" TEXT").count(), 9, "{sql}");

    // Unbounded key columns share InnoDB's 3,072-byte key.
    let mut k = TableInfo::new(
        "K",
        vec![
            col("a", ColType::String, false),
            col("b", ColType::String, false),
            col("n", ColType::Int64, false),
            col("bin", ColType::Binary, false),
        ],
        None,
        0,
    );
    k.primary_key = vec!["a".into()];
    let sql = t.create_table_sql(&k, "K", "c").unwrap();
    assert!(sql.contains("`a` VARCHAR(768) NOT NULL"), "{sql}");
    assert!(sql.contains("`b` LONGTEXT NOT NULL"), "{sql}");
    k.primary_key = vec!["a".into(), "n".into(), "b".into(), "bin".into()];
    let sql = t.create_table_sql(&k, "K", "c").unwrap();
    // (3072 - 8) / 3 = 1021 bytes each: 255 characters, 1021 bytes.
    assert!(sql.contains("`a` VARCHAR(255) NOT NULL"), "{sql}");
    assert!(sql.contains("`b` VARCHAR(255) NOT NULL"), "{sql}");
    assert!(sql.contains("`bin` VARBINARY(1021) NOT NULL"), "{sql}");
    assert!(sql.contains("PRIMARY KEY (`a`, `n`, `b`, `bin`)"), "{sql}");
    // A key too long for InnoDB, or with a nullable column, is left out.
    k.origin = vec![spec("nvarchar(800)"), spec(""), spec(""), spec("")];
    k.primary_key = vec!["a".into()];
    let sql = t.create_table_sql(&k, "K", "c").unwrap();
    assert!(!sql.contains("PRIMARY KEY"), "{sql}");
    k.origin.clear();
    k.columns[0].nullable = true;
    assert!(
        !t.create_table_sql(&k, "K", "c")
            .unwrap()
            .contains("PRIMARY KEY")
    );
}

#[test]
fn statements_shrink_with_the_grant_but_not_below_64_kib() {
    let t = MysqlTarget::new(&MysqlTargetConfig {
        insert_bytes: 4 << 20,
        ..config("d")
    })
    .unwrap();
    assert_eq!(t.statement_bytes(1.0), 4 << 20);
    assert_eq!(t.statement_bytes(2.0), 4 << 20);
    assert_eq!(t.statement_bytes(0.25), 1 << 20);
    assert_eq!(t.statement_bytes(0.001), 64 << 10);
    // A smaller insert_bytes is kept as it is.
    assert_eq!(target("d").statement_bytes(0.001), 2048);
}

#[tokio::test]
async fn statements_are_cut_by_bytes_across_batches_and_locate_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let info = TableInfo::new(
        "t",
        vec![
            col("id", ColType::Int32, false),
            col("name", ColType::String, false),
        ],
        None,
        0,
    );
    let b = RecordBatch::try_new(
        info.arrow_schema(),
        vec![
            Arc::new(Int32Array::from((10..28).collect::<Vec<i32>>())),
            Arc::new(StringArray::from(
                (10..28).map(|i| format!("n{i}")).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    let f = write_parquet(dir.path(), "t.parquet", &b);
    let head = "INSERT INTO t (id, name) VALUES ";
    // Each row is 10 bytes, "(10,'n10')", and a comma between: room for four rows.
    let cap = head.len() + 4 * 10 + 3;
    let mut rx = produce(
        f,
        local_io(),
        3,
        info,
        (head.to_string(), String::new()),
        cap,
    );
    let mut got = Vec::new();
    let mut done = None;
    while let Some(p) = rx.recv().await {
        match p.unwrap() {
            Piece::Insert {
                sql,
                first_row,
                rows,
            } => {
                assert!(sql.len() <= cap, "{} > {cap}: {sql}", sql.len());
                got.push((first_row, rows, sql));
            }
            Piece::Done(d) => done = Some(d),
        }
    }
    assert_eq!(done.unwrap(), digest(&[&b]));
    let spans: Vec<(usize, usize)> = got.iter().map(|g| (g.0, g.1)).collect();
    // Batches of three rows, statements of four: statements span batches.
    assert_eq!(spans, [(0, 4), (4, 4), (8, 4), (12, 4), (16, 2)]);
    assert_eq!(
        got[1].2,
        format!("{head}(14,'n14'),(15,'n15'),(16,'n16'),(17,'n17')")
    );
    assert_eq!(got[4].2, format!("{head}(26,'n26'),(27,'n27')"));
}

// ---- Against a real server (127.0.0.1:3306) ----

/// A target on a fresh database, dropped when the guard goes; `None` (test skipped) when no
/// server listens, unless `CI=true`.
fn server(test: &str) -> Option<(MysqlTarget, DropDb)> {
    let addr: std::net::SocketAddr = "127.0.0.1:3306".parse().unwrap();
    if let Err(e) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: MariaDB at {addr} unreachable ({e}) and CI=true");
        }
        eprintln!("SKIPPED: {test}: no MySQL/MariaDB at {addr} ({e})");
        return None;
    }
    let db = format!("dag_t_{:016x}", fastrand::u64(..));
    Some((target(&db), DropDb(db)))
}

struct DropDb(String);

impl Drop for DropDb {
    fn drop(&mut self) {
        let db = self.0.clone();
        // Its own thread and runtime: the test's runtime may be gone or busy.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let t = target(&db);
                let mut c = t.pool.get_conn().await.unwrap();
                // A failed test may leave transactions open: do not wait a day for them.
                c.query_drop(format!(
                    "SET SESSION lock_wait_timeout = 10; DROP DATABASE IF EXISTS {}",
                    quote(&db)
                ))
                .await
                .unwrap();
            });
        })
        .join();
    }
}

fn write_parquet(dir: &std::path::Path, name: &str, batch: &RecordBatch) -> String {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    format!("file://{}", path.display())
}

/// Rows with the edge values of every type; `base` offsets the keys.
fn edge_batch(info: &TableInfo, base: i32) -> RecordBatch {
    let n = 6;
    let ids: Vec<i32> = (base..base + n).collect();
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(ids)),
        Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            None,
            Some(true),
            Some(false),
            Some(true),
        ])),
        Arc::new(Int32Array::from(vec![
            Some(0),
            Some(255),
            None,
            Some(1),
            Some(2),
            Some(3),
        ])),
        Arc::new(Int32Array::from(vec![
            Some(-32768),
            Some(32767),
            None,
            Some(0),
            Some(1),
            Some(-1),
        ])),
        Arc::new(Int64Array::from(vec![
            Some(i64::MIN),
            Some(i64::MAX),
            None,
            Some(0),
            Some(-1),
            Some(1),
        ])),
        Arc::new(Float32Array::from(vec![
            Some(0.0f32),
            Some(-0.0),
            None,
            Some(f32::MAX),
            Some(f32::from_bits(1)),
            Some(f32::MIN_POSITIVE),
        ])),
        Arc::new(Float64Array::from(vec![
            Some(-0.0f64),
            Some(f64::MAX),
            None,
            Some(5e-324),
            Some(f64::MIN),
            Some(0.1),
        ])),
        Arc::new(
            Decimal128Array::from(vec![
                Some(-99_999_999_999_999_999_999_999_999_999_999_999_999i128),
                Some(99_999_999_999_999_999_999_999_999_999_999_999_999),
                None,
                Some(0),
                Some(-1),
                Some(12_345_678_900),
            ])
            .with_precision_and_scale(38, 10)
            .unwrap(),
        ),
        Arc::new(Date32Array::from(vec![
            Some(-719_162),
            Some(2_932_896),
            None,
            Some(0),
            Some(-1),
            Some(19_000),
        ])),
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(-62_135_596_800_000_000),
            Some(253_402_300_799_999_999),
            None,
            Some(1),
            Some(-1),
            Some(1_700_000_000_123_456),
        ])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(1_700_000_000_000_001),
                Some(0),
                None,
                Some(-62_135_596_800_000_000),
                Some(253_402_300_799_999_999),
                Some(5),
            ])
            .with_timezone(crate::model::UTC),
        ),
        Arc::new(StringArray::from(vec![
            Some(""),
            Some("it's a \"quote\" \\ back\\slash"),
            None,
            Some("line\nbreak\r\ttab 😀 é"),
            Some("trailing  "),
            Some("nul\0inside"),
        ])),
        Arc::new(StringArray::from(vec![
            Some("x".repeat(3000)),
            Some(String::new()),
            None,
            Some("\\".into()),
            Some("'".into()),
            Some("😀".repeat(100)),
        ])),
        Arc::new(StringArray::from(vec![
            Some("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
            None,
            None,
            Some("00000000-0000-0000-0000-000000000000"),
            None,
            None,
        ])),
        Arc::new(LargeBinaryArray::from(vec![
            Some(&[0u8, 0xFF][..]),
            Some(&[][..]),
            None,
            Some(&[0x27, 0x5C, 0x00][..]),
            Some(&[0xFF; 16][..]),
            Some(&[1][..]),
        ])),
        Arc::new(LargeBinaryArray::from(vec![
            Some(&[0u8; 5000][..]),
            None,
            None,
            Some(&b"\\'"[..]),
            Some(&[][..]),
            Some(&[0xFE, 0xFF][..]),
        ])),
    ];
    RecordBatch::try_new(info.arrow_schema(), arrays).unwrap()
}

/// Digests of each column alone, so a mismatch names its column.
fn per_column(batches: &[RecordBatch]) -> Vec<(String, Digest128)> {
    let schema = batches[0].schema();
    (0..schema.fields().len())
        .map(|i| {
            let mut d = Digest128::default();
            for b in batches {
                d.add_batch(&b.project(&[i]).unwrap()).unwrap();
            }
            (schema.field(i).name().clone(), d)
        })
        .collect()
}

async fn read_all(t: &MysqlTarget, info: &TableInfo, batch_rows: usize) -> Vec<RecordBatch> {
    let mut rx = t.scan(info, batch_rows);
    let mut out = Vec::new();
    while let Some(b) = rx.recv().await {
        out.push(b.unwrap());
    }
    out
}

async fn read_back(t: &MysqlTarget, info: &TableInfo, batch_rows: usize) -> Digest128 {
    let mut rx = t.scan(info, batch_rows);
    let mut d = Digest128::default();
    while let Some(b) = rx.recv().await {
        let b = b.unwrap();
        assert_eq!(b.schema(), info.arrow_schema());
        assert!(b.num_rows() <= batch_rows);
        d.add_batch(&b).unwrap();
    }
    d
}

fn digest(batches: &[&RecordBatch]) -> Digest128 {
    let mut d = Digest128::default();
    for b in batches {
        d.add_batch(&positive_zero(b)).unwrap();
    }
    d
}

/// The batch as MariaDB stores it: a DOUBLE or FLOAT column turns -0.0 into 0.0 (the
/// expression `-0e0` keeps its sign; storing it does not, whatever the protocol).
fn positive_zero(b: &RecordBatch) -> RecordBatch {
    let cols: Vec<ArrayRef> = b
        .columns()
        .iter()
        .map(|a| match a.data_type() {
            arrow_schema::DataType::Float32 => {
                let f = a.as_any().downcast_ref::<Float32Array>().unwrap();
                Arc::new(f.unary::<_, arrow_array::types::Float32Type>(|v| {
                    if v == 0.0 { 0.0 } else { v }
                })) as ArrayRef
            }
            arrow_schema::DataType::Float64 => {
                let f = a.as_any().downcast_ref::<Float64Array>().unwrap();
                Arc::new(f.unary::<_, arrow_array::types::Float64Type>(|v| {
                    if v == 0.0 { 0.0 } else { v }
                })) as ArrayRef
            }
            _ => a.clone(),
        })
        .collect();
    RecordBatch::try_new(b.schema(), cols).unwrap()
}

#[tokio::test]
async fn loads_units_once_publishes_once_and_reads_back_the_same_values() {
    let Some((t, _guard)) = server("mysql full cycle") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let info = every_type("every type");
    let b0 = edge_batch(&info, 0);
    let b1 = edge_batch(&info, 100);
    let f0 = write_parquet(dir.path(), "0.parquet", &b0);
    let f1 = write_parquet(dir.path(), "1.parquet", &b1);
    let run = "20261124194000123_abcd";

    t.check().await.unwrap();
    t.check().await.unwrap();
    assert!(!t.is_published(&info, run).await.unwrap());
    assert!(t.prepare(&info, run).await.unwrap().is_empty());
    let d0 = t
        .load_unit(&info, run, 0, &f0, &local_io(), 4)
        .await
        .unwrap();
    let mut raw = Digest128::default();
    raw.add_batch(&b0).unwrap();
    // The digest of the rows as read from the data file.
    assert_eq!(d0, raw);
    // A crash before publish: the retry sees unit 0 done and loads only unit 1.
    let done = t.prepare(&info, run).await.unwrap();
    assert_eq!(done, HashSet::from([0]));
    let d1 = t
        .load_unit(&info, run, 1, &f1, &local_io(), 4)
        .await
        .unwrap();
    assert_eq!(d1.rows, 6);
    // Loading a recorded unit again inserts nothing and answers its recorded digest.
    assert_eq!(
        t.load_unit(&info, run, 0, &f0, &local_io(), 4)
            .await
            .unwrap(),
        d0
    );
    assert_eq!(t.prepare(&info, run).await.unwrap(), HashSet::from([0, 1]));
    let stage = TableInfo {
        name: stage_name(&info.name, run),
        ..info.clone()
    };
    assert_eq!(t.count(&stage).await.unwrap(), 12);

    t.publish(&info, run).await.unwrap();
    assert!(t.is_published(&info, run).await.unwrap());
    t.publish(&info, run).await.unwrap();
    assert!(t.is_published(&info, run).await.unwrap());
    // After publishing, prepare creates nothing and reports every unit done.
    assert_eq!(t.prepare(&info, run).await.unwrap(), HashSet::from([0, 1]));
    assert_eq!(t.count(&info).await.unwrap(), 12);

    let expect = digest(&[&b0, &b1]);
    let back = read_all(&t, &info, 5).await;
    assert_eq!(
        per_column(&back),
        per_column(&[positive_zero(&b0), positive_zero(&b1)])
    );
    assert_eq!(read_back(&t, &info, 5).await, expect);
    assert_eq!(read_back(&t, &info, 1000).await, expect);

    // The text protocol reads the same values (floats aside: MariaDB prints FLOAT with 6
    // digits in text).
    let text_info = TableInfo {
        columns: info
            .columns
            .iter()
            .filter(|c| !matches!(c.ty, ColType::Float32))
            .cloned()
            .collect(),
        ..info.clone()
    };
    let cols = text_info
        .columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut rx = scan::scan(
        t.pool.clone(),
        format!("SELECT {cols} FROM {}", t.qualified(&info.name)),
        text_info.clone(),
        7,
        false,
    );
    let mut text_digest = Digest128::default();
    while let Some(b) = rx.recv().await {
        text_digest.add_batch(&b.unwrap()).unwrap();
    }
    let mut lake = Digest128::default();
    for b in [&b0, &b1] {
        let idx: Vec<usize> = (0..info.columns.len()).filter(|i| *i != 5).collect();
        lake.add_batch(&positive_zero(b).project(&idx).unwrap())
            .unwrap();
    }
    assert_eq!(text_digest, lake);

    // A second run replaces the table; a stale staging table of a third run goes too.
    let run2 = "20261124194500000_0001";
    let stale = "20261124190000000_ffff";
    t.prepare(&info, stale).await.unwrap();
    t.load_unit(&info, stale, 0, &f1, &local_io(), 100)
        .await
        .unwrap();
    t.prepare(&info, run2).await.unwrap();
    t.load_unit(&info, run2, 0, &f1, &local_io(), 100)
        .await
        .unwrap();
    assert!(!t.is_published(&info, run2).await.unwrap());
    assert_eq!(t.count(&info).await.unwrap(), 12, "readers still see run 1");
    t.publish(&info, run2).await.unwrap();
    t.publish(&info, run2).await.unwrap();
    assert!(t.is_published(&info, run2).await.unwrap());
    assert!(!t.is_published(&info, run).await.unwrap());
    assert_eq!(read_back(&t, &info, 64).await, digest(&[&b1]));
    let mut c = t.conn().await.unwrap();
    let mut names: Vec<String> = c
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (t.database(),),
        )
        .await
        .unwrap();
    names.sort();
    assert_eq!(names, vec![LEDGER.to_string(), info.name.clone()]);
    let runs: Vec<String> = c
        .query(format!(
            "SELECT DISTINCT run_id FROM {}",
            t.qualified(LEDGER)
        ))
        .await
        .unwrap();
    assert_eq!(runs, vec![run2.to_string()]);
    // The first run, retried late, would start over: its ledger rows are gone.
    assert!(t.prepare(&info, run).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crash_after_the_swap_ends_published_once() {
    let Some((t, _guard)) = server("mysql publish after crash") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut info = every_type(&"L".repeat(60));
    info.name = "L".repeat(60); // staging names get shortened
    let b = edge_batch(&info, 0);
    let f = write_parquet(dir.path(), "0.parquet", &b);
    t.check().await.unwrap();
    let run1 = "20261124194000123_0001";
    let run2 = "20261124194000123_0002";
    t.prepare(&info, run1).await.unwrap();
    t.load_unit(&info, run1, 0, &f, &local_io(), 3)
        .await
        .unwrap();
    t.publish(&info, run1).await.unwrap();
    t.prepare(&info, run2).await.unwrap();
    t.load_unit(&info, run2, 7, &f, &local_io(), 3)
        .await
        .unwrap();
    let d = digest(&[&b]);
    // The swap of run 2 happens, then the process dies before any cleanup.
    let mut c = t.conn().await.unwrap();
    c.query_drop(format!(
        "RENAME TABLE {t} TO {o}, {s} TO {t}",
        t = t.qualified(&info.name),
        o = t.qualified(&old_name(&info.name, run2)),
        s = t.qualified(&stage_name(&info.name, run2))
    ))
    .await
    .unwrap();
    assert!(t.is_published(&info, run2).await.unwrap());
    t.publish(&info, run2).await.unwrap();
    assert!(t.is_published(&info, run2).await.unwrap());
    assert_eq!(read_back(&t, &info, 4).await, d);
    let n: Option<u64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (t.database(),),
        )
        .await
        .unwrap();
    assert_eq!(n, Some(2), "only the table and the ledger remain");
    // Publishing a run whose staging table is gone fails clearly, touching nothing.
    let e = t.publish(&info, run1).await.unwrap_err();
    assert!(e.message.contains("missing"), "{e}");
    assert_eq!(read_back(&t, &info, 4).await, d);
}

#[tokio::test]
async fn a_reader_that_gives_up_stops_the_query() {
    let Some((t, _guard)) = server("mysql abandoned scan") else {
        return;
    };
    t.check().await.unwrap();
    let mut c = t.conn().await.unwrap();
    let (d, n) = (t.qualified("digits"), t.qualified("many"));
    c.query_drop(format!(
        "CREATE TABLE {d} (v BIGINT); INSERT INTO {d} VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9); \
         CREATE TABLE {n} (v BIGINT, pad VARCHAR(300)); \
         INSERT INTO {n} SELECT a.v + 10 * b.v + 100 * c.v + 1000 * e.v + 10000 * f.v, REPEAT('x', 300) \
         FROM {d} a, {d} b, {d} c, {d} e, {d} f, {d} g WHERE g.v < 3"
    ))
    .await
    .unwrap();
    let info = TableInfo::new(
        "many",
        vec![
            col("v", ColType::Int64, true),
            col("pad", ColType::String, true),
        ],
        None,
        0,
    );
    let kills = || async {
        let mut k = t.conn().await.unwrap();
        let row: Option<(String, u64)> = k
            .query_first("SHOW GLOBAL STATUS LIKE 'Com_kill'")
            .await
            .unwrap();
        row.unwrap().1
    };
    let kills_before = kills().await;
    let started = std::time::Instant::now();
    let mut rx = t.scan(&info, 100);
    assert_eq!(rx.recv().await.unwrap().unwrap().num_rows(), 100);
    drop(rx);
    // The scan's query ends on the server soon, well before 300,000 rows could be read.
    let mut busy = true;
    for _ in 0..50 {
        let running: Option<u64> = c
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE DB IS NULL AND INFO LIKE 'SELECT `v`, `pad` FROM%'",
                (),
            )
            .await
            .unwrap();
        if running == Some(0) {
            busy = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!busy, "the abandoned scan still runs");
    assert!(kills().await > kills_before, "the query was killed");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(t.count(&info).await.unwrap(), 300_000);
}

#[tokio::test]
async fn concurrent_loaders_neither_deadlock_nor_double_a_unit() {
    let Some((t, _guard)) = server("mysql concurrent loads") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let info = every_type("conc");
    let run = "20261124194000123_abcd";
    let files: Vec<String> = (0..6)
        .map(|u| {
            write_parquet(
                dir.path(),
                &format!("{u}.parquet"),
                &edge_batch(&info, u * 100),
            )
        })
        .collect();
    t.check().await.unwrap();
    t.prepare(&info, run).await.unwrap();
    // Every unit twice, all at once.
    let mut tasks = Vec::new();
    for (u, f) in files.iter().enumerate() {
        for _ in 0..2 {
            let (t, info, f) = (t.clone(), info.clone(), f.clone());
            tasks.push(tokio::spawn(async move {
                t.load_unit(&info, run, u as u32, &f, &local_io(), 2).await
            }));
        }
    }
    for task in tasks {
        match task.await.unwrap() {
            Ok(d) => assert_eq!(d.rows, 6),
            Err(e) => assert!(e.retryable, "{e}"),
        }
    }
    // Retry what failed (as the scheduler would).
    let done = t.prepare(&info, run).await.unwrap();
    for (u, f) in files.iter().enumerate() {
        if !done.contains(&(u as u32)) {
            t.load_unit(&info, run, u as u32, f, &local_io(), 2)
                .await
                .unwrap();
        }
    }
    t.publish(&info, run).await.unwrap();
    assert_eq!(t.count(&info).await.unwrap(), 36);
    let batches: Vec<RecordBatch> = (0..6).map(|u| edge_batch(&info, u * 100)).collect();
    let expect = digest(&batches.iter().collect::<Vec<_>>());
    assert_eq!(read_back(&t, &info, 10).await, expect);
}

#[tokio::test]
async fn wide_table_is_created_and_filled_on_the_server() {
    let Some((t, _guard)) = server("mysql wide table") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let info = wide("wide");
    // Every column at its full 255 characters, 4-byte ones included.
    let arrays: Vec<ArrayRef> = (0..66)
        .map(|i| {
            Arc::new(StringArray::from(vec![
                format!("{i:03}{}", "x".repeat(252)),
                "😀".repeat(255),
            ])) as ArrayRef
        })
        .collect();
    let b = RecordBatch::try_new(info.arrow_schema(), arrays).unwrap();
    let f = write_parquet(dir.path(), "w.parquet", &b);
    t.check().await.unwrap();
    let run = "20261124194000123_abcd";
    t.prepare(&info, run).await.unwrap();
    // insert_bytes (2048) is smaller than one row: each row goes alone.
    let d = t
        .load_unit(&info, run, 0, &f, &local_io(), 10)
        .await
        .unwrap();
    t.publish(&info, run).await.unwrap();
    assert_eq!(d.rows, 2);
    assert_eq!(read_back(&t, &info, 10).await, digest(&[&b]));

    // Also the 40 x VARCHAR(63) table that only InnoDB's page limit refuses.
    let narrow = narrow_table("narrow");
    let mut c = t.conn().await.unwrap();
    c.query_drop(t.create_table_sql(&narrow, "narrow", "n").unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_values_fail_with_table_column_and_value() {
    let Some((t, _guard)) = server("mysql bad values") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut info = TableInfo::new(
        "bad",
        vec![
            col("id", ColType::Int32, false),
            col("code", ColType::String, true),
            col("x", ColType::Float64, true),
        ],
        None,
        0,
    );
    info.origin = vec![spec("int"), spec("varchar(3)"), spec("float")];
    t.check().await.unwrap();
    let run = "20261124194000123_abcd";
    t.prepare(&info, run).await.unwrap();

    let too_long = RecordBatch::try_new(
        info.arrow_schema(),
        vec![
            Arc::new(Int32Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec!["abc", "abcd"])),
            Arc::new(Float64Array::from(vec![1.0, 2.0])),
        ],
    )
    .unwrap();
    let f = write_parquet(dir.path(), "long.parquet", &too_long);
    let e = t
        .load_unit(&info, run, 0, &f, &local_io(), 10)
        .await
        .unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::Data, "{e}");
    let s = e.to_string();
    assert!(
        s.contains("table bad") && s.contains("column code") && s.contains("'abcd'"),
        "{s}"
    );
    assert!(!s.contains("root@"), "{s}");

    let nan = RecordBatch::try_new(
        info.arrow_schema(),
        vec![
            Arc::new(Int32Array::from(vec![1])),
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(Float64Array::from(vec![f64::NAN])),
        ],
    )
    .unwrap();
    let f = write_parquet(dir.path(), "nan.parquet", &nan);
    let e = t
        .load_unit(&info, run, 1, &f, &local_io(), 10)
        .await
        .unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::Data);
    assert!(
        e.to_string().contains("column x") && e.to_string().contains("NaN"),
        "{e}"
    );
    // Nothing of either unit stayed.
    let stage = TableInfo {
        name: stage_name("bad", run),
        ..info.clone()
    };
    assert_eq!(t.count(&stage).await.unwrap(), 0);
    assert!(t.prepare(&info, run).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_value_is_named_from_a_later_statement_and_batch() {
    let Some((t, _guard)) = server("mysql bad value later") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut info = TableInfo::new(
        "later",
        vec![
            col("id", ColType::Int32, false),
            col("code", ColType::String, false),
            col("pad", ColType::String, false),
        ],
        None,
        0,
    );
    info.origin = vec![spec("int"), spec("varchar(3)"), spec("varchar(300)")];
    t.check().await.unwrap();
    let run = "20261124194000123_abcd";
    t.prepare(&info, run).await.unwrap();
    // Rows of about 220 bytes and statements of at most 2048: about nine rows each, and
    // batches of four, so row 37 is in the fifth statement and the tenth batch.
    let b = RecordBatch::try_new(
        info.arrow_schema(),
        vec![
            Arc::new(Int32Array::from((0..60).collect::<Vec<i32>>())),
            Arc::new(StringArray::from(
                (0..60)
                    .map(|i| {
                        if i == 37 {
                            "wxyz".to_string()
                        } else {
                            format!("{i:03}")
                        }
                    })
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(vec!["p".repeat(200); 60])),
        ],
    )
    .unwrap();
    let f = write_parquet(dir.path(), "later.parquet", &b);
    let e = t
        .load_unit(&info, run, 0, &f, &local_io(), 4)
        .await
        .unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::Data, "{e}");
    let s = e.to_string();
    assert!(s.contains("column code") && s.contains("'wxyz'"), "{s}");
}

#[tokio::test]
async fn existing_tables_are_copied_when_not_created() {
    let Some((t, _guard)) = server("mysql create_tables = false") else {
        return;
    };
    let mut cfg = config(t.database());
    cfg.create_tables = false;
    let manual = MysqlTarget::new(&cfg).unwrap();
    let e = manual.check().await.unwrap_err();
    assert_eq!(e.kind, crate::error::ErrorKind::Config, "{e}");
    t.check().await.unwrap();
    manual.check().await.unwrap();
    let info = TableInfo::new("m", vec![col("v", ColType::Int64, true)], None, 0);
    let run = "20261124194000123_abcd";
    let e = manual.prepare(&info, run).await.unwrap_err();
    assert!(e.message.contains("does not exist"), "{e}");
    let mut c = t.conn().await.unwrap();
    c.query_drop(format!(
        "CREATE TABLE {} (v BIGINT, extra INT DEFAULT 7) COMMENT 'mine'",
        t.qualified("m")
    ))
    .await
    .unwrap();
    manual.prepare(&info, run).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let b = RecordBatch::try_new(
        info.arrow_schema(),
        vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
    )
    .unwrap();
    let f = write_parquet(dir.path(), "m.parquet", &b);
    manual
        .load_unit(&info, run, 0, &f, &local_io(), 10)
        .await
        .unwrap();
    manual.publish(&info, run).await.unwrap();
    assert!(manual.is_published(&info, run).await.unwrap());
    assert_eq!(read_back(&manual, &info, 10).await, digest(&[&b]));
    let extra: Vec<i64> = c
        .query(format!("SELECT extra FROM {}", t.qualified("m")))
        .await
        .unwrap();
    assert_eq!(extra, vec![7, 7], "the user's own columns are kept");
}
