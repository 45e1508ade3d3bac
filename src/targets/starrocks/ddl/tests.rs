use super::*;
use crate::error::ErrorKind;
use crate::model::Column;
use crate::model::ColumnOrigin;

/// The [`ColType`] `map_type` in `sources/mssql` gives each SQL Server type.
fn mssql_type(sql: &str) -> ColType {
    let t = sql.to_ascii_lowercase();
    let base = t.split('(').next().unwrap().trim();
    let args: Vec<u8> = t
        .split_once('(')
        .map(|(_, a)| {
            a.trim_end_matches(')')
                .split(',')
                .filter_map(|x| x.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    match base {
        "bit" => ColType::Bool,
        "tinyint" | "smallint" | "int" => ColType::Int32,
        "bigint" | "timestamp" | "rowversion" => ColType::Int64,
        "decimal" | "numeric" => ColType::Decimal {
            precision: args.first().copied().unwrap_or(18),
            scale: args.get(1).copied().unwrap_or(0) as i8,
        },
        "money" => ColType::Decimal {
            precision: 19,
            scale: 4,
        },
        "smallmoney" => ColType::Decimal {
            precision: 10,
            scale: 4,
        },
        "real" => ColType::Float32,
        "float" => ColType::Float64,
        "date" => ColType::Date,
        "datetime" | "smalldatetime" | "datetime2" => ColType::Timestamp,
        "datetimeoffset" => ColType::TimestampTz,
        "binary" | "varbinary" | "image" => ColType::Binary,
        // time, (n)char, (n)varchar, (n)text, xml, uniqueidentifier, sql_variant,
        // hierarchyid, geography, geometry
        _ => ColType::String,
    }
}

/// A SQL Server table from `(name, declared type, nullable)`.
fn mssql_table(name: &str, cols: &[(&str, &str, bool)], pk: &[&str]) -> TableInfo {
    let mut info = TableInfo::new(
        name,
        cols.iter()
            .map(|(n, t, nullable)| Column {
                name: n.to_string(),
                ty: mssql_type(t),
                nullable: *nullable,
            })
            .collect(),
        None,
        0,
    );
    info.origin = cols
        .iter()
        .map(|(n, t, _)| ColumnOrigin {
            expr: format!("[{n}]"),
            declared: t.to_string(),
            identity: false,
            computed: false,
        })
        .collect();
    info.primary_key = pk.iter().map(|s| s.to_string()).collect();
    info
}

/// 66 columns: every SQL Server type the source maps, then variations (names that need
/// sanitizing, other lengths and scales, NOT NULL). Key columns sit mid-table in source order.
fn wide() -> TableInfo {
    let cols: &[(&str, &str, bool)] = &[
        ("bit_col", "bit", true),
        ("LineNo", "smallint", false),
        ("tiny_col", "tinyint", true),
        ("OrderId", "int", false),
        ("small_col", "smallint", true),
        ("int_col", "int", true),
        ("big_col", "bigint", true),
        ("dec_38_10", "decimal(38,10)", true),
        ("num_9_2", "numeric(9,2)", true),
        ("money_col", "money", true),
        ("smallmoney_col", "smallmoney", true),
        ("float_col", "float", true),
        ("real_col", "real", true),
        ("date_col", "date", true),
        ("time_col", "time(7)", true),
        ("datetime_col", "datetime", true),
        ("smalldatetime_col", "smalldatetime", true),
        ("datetime2_col", "datetime2(7)", true),
        ("dto_col", "datetimeoffset(7)", true),
        ("char_10", "char(10)", true),
        ("varchar_50", "varchar(50)", true),
        ("varchar_max", "varchar(max)", true),
        ("text_col", "text", true),
        ("nchar_5", "nchar(5)", true),
        ("nvarchar_100", "nvarchar(100)", true),
        ("nvarchar_max", "nvarchar(max)", true),
        ("ntext_col", "ntext", true),
        ("xml_col", "xml", true),
        ("binary_16", "binary(16)", true),
        ("varbinary_200", "varbinary(200)", true),
        ("varbinary_max", "varbinary(max)", true),
        ("image_col", "image", true),
        ("guid_col", "uniqueidentifier", true),
        ("rowversion_col", "rowversion", false),
        ("variant_col", "sql_variant", true),
        ("hier_col", "hierarchyid", true),
        ("geog_col", "geography", true),
        ("geom_col", "geometry", true),
        ("Customer Name", "nvarchar(200)", false),
        ("e-mail", "varchar(320)", true),
        ("1st_contact", "datetime2(3)", true),
        ("Prix€", "money", true),
        ("_internal", "int", true),
        ("__shadow", "bit", true),
        ("Straße", "nvarchar(60)", true),
        ("Qty", "decimal(18,0)", false),
        ("Ratio", "decimal(5,5)", true),
        ("Amount", "numeric(38,0)", true),
        ("Big Money", "money", false),
        ("created_at", "datetime2(0)", false),
        ("updated_at", "datetimeoffset(0)", true),
        ("birth_date", "date", false),
        ("start_time", "time(0)", true),
        ("code", "char(1)", true),
        ("status", "varchar(20)", false),
        ("notes", "nvarchar(4000)", true),
        ("blob", "varbinary(8000)", true),
        ("hash", "binary(32)", false),
        ("flag", "bit", false),
        ("level", "tinyint", false),
        ("score", "real", false),
        ("weight", "float", true),
        ("ticks", "bigint", false),
        ("ver", "timestamp", false),
        ("comment", "ntext", true),
        ("doc", "xml", true),
    ];
    assert_eq!(cols.len(), 66);
    mssql_table("dbo.OrderLines", cols, &["OrderId", "LineNo"])
}

fn partitioned() -> TableInfo {
    mssql_table(
        "sales.Events",
        &[
            ("Kind", "varchar(20)", false),
            ("OccurredAt", "datetime2(3)", false),
            ("EventId", "bigint", false),
            ("Payload", "nvarchar(max)", true),
            ("Amount", "decimal(12,2)", true),
            ("Source Host", "nvarchar(64)", true),
        ],
        &["EventId", "OccurredAt"],
    )
}

/// Compares with a golden file (which ends with a newline, like every text file) and fails
/// naming the first differing line; the golden files are written by hand from the rules.
fn assert_golden(file: &str, golden: &str, sql: &str) {
    let actual = format!("{sql}\n");
    if actual == golden {
        return;
    }
    let (g, a): (Vec<&str>, Vec<&str>) = (golden.lines().collect(), actual.lines().collect());
    let n = g.iter().zip(&a).take_while(|(x, y)| x == y).count();
    panic!(
        "{file} differs at line {}:\n  golden: {:?}\n  actual: {:?}\n(golden {} lines, actual \
         {} lines; trailing newline golden {} actual {})\n--- actual output ---\n{actual}",
        n + 1,
        g.get(n),
        a.get(n),
        g.len(),
        a.len(),
        golden.ends_with('\n'),
        actual.ends_with('\n'),
    );
}

#[test]
fn wide_table_matches_golden() {
    let opts = DdlOptions {
        model: TableModel::Duplicate,
        distribution: None,
        buckets: Some(8),
        replication_num: Some(1),
        partition: None,
        comment: "dag: dbo.OrderLines from mssql sales".to_string(),
    };
    let sql = create_table("lake_copy", "OrderLines", &wide(), &opts).unwrap();
    assert_golden(
        "tests/golden/starrocks_wide.sql",
        include_str!("../../../../tests/golden/starrocks_wide.sql"),
        &sql,
    );
}

#[test]
fn partitioned_table_matches_golden() {
    let opts = DdlOptions {
        model: TableModel::Primary,
        distribution: None,
        buckets: None,
        replication_num: None,
        partition: Some("OccurredAt".to_string()),
        comment: "events of [sales].[Events]: it's a \\ test".to_string(),
    };
    let sql = create_table("analytics", "Events", &partitioned(), &opts).unwrap();
    assert_golden(
        "tests/golden/starrocks_partitioned.sql",
        include_str!("../../../../tests/golden/starrocks_partitioned.sql"),
        &sql,
    );
}

#[test]
fn golden_mismatch_names_the_line() {
    let r = std::panic::catch_unwind(|| assert_golden("g.sql", "a\nb\nc\n", "a\nB\nc"));
    let msg = r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("g.sql differs at line 2"), "{msg}");
    assert!(msg.contains("golden: Some(\"b\")") && msg.contains("actual: Some(\"B\")"));
    assert_golden("g.sql", "a\nb\n", "a\nb");
}

#[test]
fn column_types_follow_the_mapping() {
    let info = wide();
    let ty = |name: &str| {
        let i = info.columns.iter().position(|c| c.name == name).unwrap();
        column_type(&info, i).unwrap()
    };
    assert_eq!(ty("tiny_col"), "SMALLINT");
    assert_eq!(ty("small_col"), "SMALLINT");
    assert_eq!(ty("int_col"), "INT");
    assert_eq!(ty("nvarchar_100"), "VARCHAR(300)");
    assert_eq!(ty("nvarchar_max"), "VARCHAR(1048576)");
    assert_eq!(ty("notes"), "VARCHAR(12000)");
    assert_eq!(ty("varbinary_200"), "VARBINARY(200)");
    assert_eq!(ty("image_col"), "VARBINARY(1048576)");
    assert_eq!(ty("dto_col"), "DATETIME");
    // Without a declared source type (SQLite sources): INT and the widest lengths.
    let plain = TableInfo::new(
        "t",
        vec![
            Column {
                name: "a".into(),
                ty: ColType::Int32,
                nullable: true,
            },
            Column {
                name: "s".into(),
                ty: ColType::String,
                nullable: true,
            },
        ],
        None,
        0,
    );
    assert_eq!(column_type(&plain, 0).unwrap(), "INT");
    assert_eq!(column_type(&plain, 1).unwrap(), "VARCHAR(1048576)");
    // Over a million characters: capped.
    let big = mssql_table("t", &[("s", "varchar(400000)", true)], &[]);
    assert_eq!(column_type(&big, 0).unwrap(), "VARCHAR(1048576)");
    let bad = TableInfo::new(
        "t",
        vec![Column {
            name: "d".into(),
            ty: ColType::Decimal {
                precision: 40,
                scale: 2,
            },
            nullable: true,
        }],
        None,
        0,
    );
    assert_eq!(column_type(&bad, 0).unwrap_err().kind, ErrorKind::Data);
}

fn opts(model: TableModel) -> DdlOptions {
    DdlOptions {
        model,
        comment: "c".into(),
        ..DdlOptions::default()
    }
}

#[test]
fn keyed_incremental_tables_are_created_primary_key() {
    let mut keyed = mssql_table("t", &[("id", "int", false), ("v", "int", true)], &["id"]);
    let keyless = mssql_table("u", &[("id", "int", false)], &[]);
    assert_eq!(
        model_for(TableModel::Duplicate, &keyed),
        TableModel::Duplicate
    );
    let inc = Some(crate::model::Incremental {
        cursor: "id".into(),
        low: None,
        high: None,
        append: true,
    });
    keyed.incremental = inc.clone();
    assert_eq!(
        model_for(TableModel::Duplicate, &keyed),
        TableModel::Primary
    );
    let sql = create_table(
        "db",
        "t",
        &keyed,
        &opts(model_for(TableModel::Duplicate, &keyed)),
    )
    .unwrap();
    assert!(sql.contains("\nPRIMARY KEY(`id`)\n"), "{sql}");
    // Without a key there is nothing to upsert by: appends into the configured model.
    let keyless = TableInfo {
        incremental: inc,
        ..keyless
    };
    assert_eq!(
        model_for(TableModel::Duplicate, &keyless),
        TableModel::Duplicate
    );
}

#[test]
fn duplicate_key_without_primary_key_is_first_keyable_column_and_random() {
    let info = mssql_table(
        "t",
        &[
            ("f", "float", true),
            ("b", "varbinary(10)", true),
            ("d", "date", true),
            ("n", "int", true),
        ],
        &[],
    );
    let sql = create_table("db", "t", &info, &opts(TableModel::Duplicate)).unwrap();
    assert!(
        sql.contains("(\n  `d` DATE NULL,\n  `f` DOUBLE NULL,"),
        "{sql}"
    );
    assert!(sql.contains("\nDUPLICATE KEY(`d`)\n"), "{sql}");
    assert!(sql.ends_with("\nDISTRIBUTED BY RANDOM"), "{sql}");
    let mut hash = opts(TableModel::Duplicate);
    hash.distribution = Some(Distribution::Hash);
    let e = create_table("db", "t", &info, &hash).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    let floats = mssql_table("t", &[("f", "float", true), ("r", "real", true)], &[]);
    let e = create_table("db", "t", &floats, &opts(TableModel::Duplicate)).unwrap_err();
    assert!(e.message.contains("no column can be"), "{e}");
}

#[test]
fn duplicate_key_uses_keyable_prefix_of_primary_key() {
    let info = mssql_table(
        "t",
        &[
            ("v", "nvarchar(10)", true),
            ("f", "float", false),
            ("a", "int", false),
        ],
        &["a", "f"],
    );
    let sql = create_table("db", "t", &info, &opts(TableModel::Duplicate)).unwrap();
    assert!(sql.contains("DUPLICATE KEY(`a`)"), "{sql}");
    assert!(sql.contains("DISTRIBUTED BY HASH(`a`)"), "{sql}");
    let mut random = opts(TableModel::Duplicate);
    random.distribution = Some(Distribution::Random);
    let sql = create_table("db", "t", &info, &random).unwrap();
    assert!(sql.contains("DISTRIBUTED BY RANDOM"), "{sql}");
}

#[test]
fn primary_key_rules_are_enforced() {
    let err = |info: &TableInfo, o: &DdlOptions| {
        let e = create_table("db", "t", info, o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config, "{e}");
        e.message
    };
    let p = opts(TableModel::Primary);
    let none = mssql_table("dbo.T", &[("a", "int", false)], &[]);
    assert!(err(&none, &p).contains("needs a source primary key"));
    let dec = mssql_table("dbo.T", &[("a", "decimal(10,0)", false)], &["a"]);
    let m = err(&dec, &p);
    assert!(
        m.contains("dbo.T") && m.contains("column a") && m.contains("DECIMAL"),
        "{m}"
    );
    let float = mssql_table("dbo.T", &[("a", "float", false)], &["a"]);
    assert!(err(&float, &p).contains("column a"));
    let bin = mssql_table("dbo.T", &[("a", "binary(8)", false)], &["a"]);
    assert!(err(&bin, &p).contains("column a"));
    let nullable = mssql_table("dbo.T", &[("a", "int", true)], &["a"]);
    assert!(err(&nullable, &p).contains("nullable"));
    // int 4 + nvarchar(42) 126 + 2 terminator: over 128 encoded.
    let long = mssql_table(
        "dbo.T",
        &[("a", "int", false), ("s", "nvarchar(42)", false)],
        &["a", "s"],
    );
    let m = err(&long, &p);
    assert!(m.contains("128") && m.contains("s VARCHAR(126)"), "{m}");
    let ok = mssql_table(
        "dbo.T",
        &[("a", "int", false), ("s", "nvarchar(30)", false)],
        &["a", "s"],
    );
    assert!(create_table("db", "t", &ok, &p).is_ok());
    let mut random = p.clone();
    random.distribution = Some(Distribution::Random);
    assert!(err(&ok, &random).contains("random"));
    let part = mssql_table(
        "dbo.T",
        &[("a", "int", false), ("d", "date", false)],
        &["a"],
    );
    let mut by_day = p.clone();
    by_day.partition = Some("d".into());
    assert!(err(&part, &by_day).contains("partition column d"));
}

#[test]
fn partition_column_must_be_a_date() {
    let info = mssql_table(
        "t",
        &[("a", "int", false), ("s", "varchar(5)", true)],
        &["a"],
    );
    let mut o = opts(TableModel::Duplicate);
    o.partition = Some("s".into());
    assert!(
        create_table("db", "t", &info, &o)
            .unwrap_err()
            .message
            .contains("DATE")
    );
    o.partition = Some("missing".into());
    assert!(create_table("db", "t", &info, &o).is_err());
    o.partition = Some("A".into());
    assert!(create_table("db", "t", &info, &o).is_err());
}

#[test]
fn other_statements() {
    assert_eq!(
        create_database("d`b"),
        "CREATE DATABASE IF NOT EXISTS `d``b`"
    );
    assert_eq!(
        create_like("db", "t__stage", "t"),
        "CREATE TABLE IF NOT EXISTS `db`.`t__stage` LIKE `db`.`t`"
    );
    assert_eq!(
        swap("db", "t", "t__stage"),
        "ALTER TABLE `db`.`t` SWAP WITH `t__stage`"
    );
    assert_eq!(rename("db", "a", "b"), "ALTER TABLE `db`.`a` RENAME `b`");
    assert_eq!(drop_table("db", "t"), "DROP TABLE IF EXISTS `db`.`t` FORCE");
    assert_eq!(
        set_comment("db", "t", r"it's C:\x"),
        r"ALTER TABLE `db`.`t` COMMENT = 'it\'s C:\\x'"
    );
}
