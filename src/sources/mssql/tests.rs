use super::chunks::{Param, cursor_condition, row_compare};
use super::connect::parse_url;
use super::types::{SqlDecl, map_type};
use super::wire::{
    EPOCH_DAYS_FROM_0001, EPOCH_DAYS_FROM_1900, date_text, datetime_micros, datetime2_micros,
    time_text,
};
use super::*;
use crate::model::codec::decimal_text;
use crate::model::{ColType, Column, ColumnOrigin};

#[test]
fn cursor_ranges_compare_at_the_columns_own_type() {
    use crate::model::{CursorValue as V, Incremental};
    let mut info = TableInfo::new(
        "T",
        vec![
            Column {
                name: "ID".into(),
                ty: ColType::Int64,
                nullable: false,
            },
            Column {
                name: "UPD".into(),
                ty: ColType::Timestamp,
                nullable: true,
            },
        ],
        None,
        0,
    );
    info.origin = ["bigint", "datetime2(3)"]
        .iter()
        .map(|t| ColumnOrigin {
            expr: String::new(),
            declared: t.to_string(),
            identity: false,
            computed: false,
        })
        .collect();
    let range = |cursor: &str, low, high, append| {
        let mut i = info.clone();
        i.incremental = Some(Incremental {
            cursor: cursor.into(),
            low,
            high,
            append,
        });
        let mut params = Vec::new();
        let sql = cursor_condition(&i, &mut params).unwrap();
        let shown: Vec<String> = params
            .iter()
            .map(|p| match p {
                Param::Int(n) => n.to_string(),
                Param::Text(t) => t.clone(),
            })
            .collect();
        (sql, shown)
    };
    // 2026-01-01T00:00:00.5 as microseconds since the epoch.
    let t = 1_767_225_600_500_000;
    assert_eq!(
        range("UPD", Some(V::Micros(t)), Some(V::Micros(t + 1)), true),
        (
            "[UPD] > CAST(@P1 AS datetime2(3)) AND [UPD] <= CAST(@P2 AS datetime2(3))".into(),
            vec![
                "2026-01-01T00:00:00.500000".into(),
                "2026-01-01T00:00:00.500001".into()
            ]
        )
    );
    assert_eq!(
        range("ID", None, Some(V::Int(9)), false),
        ("([ID] <= @P1 OR [ID] IS NULL)".into(), vec!["9".into()])
    );
    assert_eq!(
        range("ID", None, Some(V::Int(9)), true),
        ("[ID] <= @P1".into(), vec!["9".into()])
    );
    assert_eq!(range("ID", None, None, false).0, "[ID] IS NULL");
}

#[test]
fn row_values_expand_into_and_or() {
    let keys = vec!["A".to_string(), "B".to_string()];
    let types = vec!["nvarchar(20)".to_string(), "int".to_string()];
    assert_eq!(
        row_compare(&keys, &types, &[1, 2], true),
        "([A] > CAST(@P1 AS nvarchar(20)) OR ([A] = CAST(@P1 AS nvarchar(20)) AND [B] >= CAST(@P2 AS int)))"
    );
    assert_eq!(
        row_compare(&keys[..1], &types[..1], &[3], false),
        "[A] < CAST(@P3 AS nvarchar(20))"
    );
}

#[test]
fn date_and_time_arithmetic_hits_the_edges() {
    assert_eq!(date_text(0), "1970-01-01");
    assert_eq!(date_text(-EPOCH_DAYS_FROM_0001), "0001-01-01");
    assert_eq!(date_text(2_932_896), "9999-12-31");
    assert_eq!(time_text(863_999_999_999, 7), "23:59:59.9999999");
    assert_eq!(time_text(0, 0), "00:00:00");
    // 9999-12-31 23:59:59.9999999 loses its last digit and says so.
    let (us, lost) = datetime2_micros(3_652_058, 863_999_999_999, 7);
    assert!(lost);
    assert_eq!(us, (2_932_896i64 + 1) * 86_400_000_000 - 1);
    let (_, lost) = datetime2_micros(0, 10, 7);
    assert!(!lost);
    // datetime tick 299 of a second is .997 as SQL Server shows it.
    assert_eq!(datetime_micros(EPOCH_DAYS_FROM_1900 as i32, 299), 997_000);
    assert_eq!(datetime_micros(EPOCH_DAYS_FROM_1900 as i32, 1), 3_000);
    assert_eq!(datetime_micros(EPOCH_DAYS_FROM_1900 as i32, 2), 7_000);
}

#[test]
fn decimals_keep_every_digit() {
    let max38 = 10i128.pow(38) - 1;
    assert_eq!(
        decimal_text(max38, 10),
        "9999999999999999999999999999.9999999999"
    );
    assert_eq!(decimal_text(-5, 4), "-0.0005");
    assert_eq!(
        decimal_text(-max38, 0),
        "-99999999999999999999999999999999999999"
    );
}

#[test]
fn types_map_as_the_table_says() {
    let d = |t: &str| SqlDecl::parse(t).unwrap();
    assert_eq!(
        map_type(&d("money"), "[M]").unwrap().1,
        "CAST([M] AS decimal(19,4)) AS [M]"
    );
    assert_eq!(
        map_type(&d("varchar(50)"), "[V]").unwrap().1,
        "CAST([V] AS nvarchar(50)) AS [V]"
    );
    assert_eq!(
        map_type(&d("varchar(max)"), "[V]").unwrap().1,
        "CAST([V] AS nvarchar(max)) AS [V]"
    );
    assert_eq!(
        map_type(&d("geography"), "[G]").unwrap().1,
        "[G].STAsText() AS [G]"
    );
    assert_eq!(
        map_type(&d("datetimeoffset(7)"), "[T]").unwrap().0,
        ColType::TimestampTz
    );
    assert!(map_type(&d("vector(3)"), "[X]").is_none());
    assert_eq!(d("nvarchar(50)").display(), "nvarchar(50)");
    assert_eq!(d("decimal(38, 10)").display(), "decimal(38,10)");
}

#[test]
fn urls_of_every_form_parse_and_errors_hide_the_password() {
    let c = parse_url("mssql://sa:p%40ss@db.example:1444/WorldZone").unwrap();
    assert_eq!(c.get_addr(), "db.example:1444");
    let c = parse_url("Server=tcp:db,1433;Database=WorldZone;User Id=sa;Password=secret").unwrap();
    assert_eq!(c.get_addr(), "db:1433");
    let e = parse_url("mssql://sa:secret@db:notaport/x").unwrap_err();
    assert!(!e.to_string().contains("secret"), "{e}");
}
