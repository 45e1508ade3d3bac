use super::countries::country_id;
use super::data::{COUNTRY_LIST, PLACES};
use super::values::{
    MAX_DAY, MAX_MICROS, MICROS_PER_DAY, MIN_DAY, MIN_MICROS, ascii_slug, push_decimal,
    push_timestamp,
};
use super::*;
use crate::model::calendar::{civil_from_days, days_from_civil};
use rusqlite::types::Value;

const SMALL: u64 = 5_000;

fn generate(dir: &Path) -> PathBuf {
    let path = dir.join("demo.sqlite");
    assert!(ensure(&path, SMALL).unwrap());
    path
}

fn fresh() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(generate(dir.path())).unwrap();
    (dir, conn)
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// (name, declared type, not null, primary key) of every column of `table`.
fn columns(conn: &Connection, table: &str) -> Vec<(String, String, bool, bool)> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap();
    stmt.query_map([], |r| {
        let pk: i64 = r.get(5)?;
        Ok((r.get(1)?, r.get(2)?, r.get(3)?, pk > 0))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

const TABLES: [&str; 4] = ["AGENTSVES", "TRANSACTIONS", "COUNTRIES", "CURRENCY_RATES"];

/// Every value of every column of every data table: (table, column, declared type, value).
fn for_each_value(conn: &Connection, mut f: impl FnMut(&str, &str, &str, &Value)) {
    for table in TABLES {
        let cols = columns(conn, table);
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, (name, decl, _, _)) in cols.iter().enumerate() {
                f(table, name, decl, &row.get::<_, Value>(i).unwrap());
            }
        }
    }
}

/// (precision, scale) of a `TEXT DECIMAL(p,s)` / `TEXT NUMERIC(p,s)` / `TEXT MONEY` type.
fn decimal_type(decl: &str) -> Option<(u32, u32)> {
    let decl = decl.strip_prefix("TEXT ")?;
    if decl == "MONEY" {
        return Some((19, 4));
    }
    let args = decl
        .strip_prefix("DECIMAL(")
        .or_else(|| decl.strip_prefix("NUMERIC("))?;
    let (p, s) = args.strip_suffix(')')?.split_once(',')?;
    Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
}

/// Checks `s` against DECIMAL(p,s) and returns its unscaled value.
fn parse_decimal(s: &str, precision: u32, scale: u32) -> Result<i128, String> {
    let negative = s.starts_with('-');
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, "0"));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return Err(format!("{s:?} is not plain decimal notation"));
    }
    if body.contains('.') && frac.len() > scale as usize {
        return Err(format!("{s:?} has more than {scale} fraction digits"));
    }
    if int.trim_start_matches('0').len() > (precision - scale) as usize {
        return Err(format!(
            "{s:?} has more than {} integer digits",
            precision - scale
        ));
    }
    let mut unscaled: i128 = format!("{int}{frac:0<width$}", width = scale as usize)
        [..int.len() + scale as usize]
        .parse()
        .map_err(|e| format!("{s:?}: {e}"))?;
    if negative {
        if unscaled == 0 {
            return Err(format!("{s:?} is a negative zero"));
        }
        unscaled = -unscaled;
    }
    Ok(unscaled)
}

/// Days since the epoch of a valid `YYYY-MM-DD` in 0001..=9999.
fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let days = days_from_civil(y, m, d);
    (y >= 1 && civil_from_days(days) == (y, m, d)).then_some(days)
}

/// Microseconds since the epoch of a valid `YYYY-MM-DD HH:MM:SS[.ffffff]`.
fn parse_timestamp(s: &str, fraction: bool) -> Option<i64> {
    let days = parse_date(s.get(..10)?)?;
    let rest = s.get(10..)?;
    let b = rest.as_bytes();
    if b.len() != if fraction { 16 } else { 9 } || b[0] != b' ' || b[3] != b':' || b[6] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { rest.get(r)?.parse().ok() };
    let (h, mi, sec) = (num(1..3)?, num(4..6)?, num(7..9)?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let micros = if fraction {
        (b[9] == b'.').then_some(())?;
        num(10..16)?
    } else {
        0
    };
    Some(days * MICROS_PER_DAY + ((h * 60 + mi) * 60 + sec) * 1_000_000 + micros)
}

#[test]
fn creates_a_complete_database_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("demo.sqlite");
    assert!(ensure(&path, SMALL).unwrap());
    let conn = Connection::open(&path).unwrap();
    assert_eq!(count(&conn, "AGENTSVES"), 9_066);
    assert_eq!(count(&conn, "TRANSACTIONS"), 5_000);
    assert_eq!(count(&conn, "COUNTRIES"), 249);
    assert_eq!(count(&conn, "CURRENCY_RATES"), 2_000);
    for (table, rows) in [
        ("AGENTSVES", 9_066),
        ("TRANSACTIONS", 5_000),
        ("COUNTRIES", 249),
    ] {
        let (min, max): (i64, i64) = conn
            .query_row(
                &format!("SELECT MIN(rowid), MAX(rowid) FROM {table}"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((min, max), (1, rows), "{table} ids are 1..={rows}");
    }
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let amount_type: String = conn
        .query_row(
            "SELECT type FROM pragma_table_info('TRANSACTIONS') WHERE name = 'AMOUNT'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(amount_type, "TEXT DECIMAL(18,2)");
    let agent_columns = columns(&conn, "AGENTSVES");
    assert_eq!(agent_columns.len(), 66);
    assert_eq!(agent_columns[0].0, "AGENT_ID");
    for table in TABLES {
        let cols = columns(&conn, table);
        let keys: Vec<_> = cols.iter().filter(|c| c.3).map(|c| c.1.as_str()).collect();
        let expected: &[&str] = if table == "CURRENCY_RATES" {
            &[]
        } else {
            &["INTEGER"]
        };
        assert_eq!(keys, expected, "{table} primary key");
        for (name, ..) in cols {
            assert!(
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{name}"
            );
        }
    }
    let orphans: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM TRANSACTIONS WHERE AGENT_ID NOT BETWEEN 1 AND 9066",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
    let duplicates: i64 = conn
        .query_row(
            "SELECT COUNT(*) - (SELECT COUNT(*) FROM
                (SELECT DISTINCT CURRENCY, RATE_DATE, RATE, SOURCE FROM CURRENCY_RATES))
             FROM CURRENCY_RATES",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        duplicates, 20,
        "one double-loaded batch of exact duplicates"
    );
    drop(conn);

    assert!(
        !ensure(&path, SMALL).unwrap(),
        "a complete database is kept"
    );
    let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["demo.sqlite"], "no temporary files remain");
}

#[test]
fn regenerates_an_incomplete_or_resized_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate(dir.path());

    let conn = Connection::open(&path).unwrap();
    conn.execute("DELETE FROM _dag_demo_meta WHERE key = 'big_rows'", [])
        .unwrap();
    conn.execute("DELETE FROM TRANSACTIONS WHERE TXN_ID > 10", [])
        .unwrap();
    drop(conn);
    assert!(ensure(&path, SMALL).unwrap(), "missing meta row: rebuilt");
    let conn = Connection::open(&path).unwrap();
    assert_eq!(count(&conn, "TRANSACTIONS"), 5_000);
    drop(conn);
    assert!(!ensure(&path, SMALL).unwrap());

    assert!(ensure(&path, 1_234).unwrap(), "different size: rebuilt");
    let conn = Connection::open(&path).unwrap();
    assert_eq!(count(&conn, "TRANSACTIONS"), 1_234);
    drop(conn);

    fs::write(&path, b"not a database").unwrap();
    assert!(ensure(&path, SMALL).unwrap(), "garbage: rebuilt");
    assert!(!ensure(&path, SMALL).unwrap());
}

#[test]
fn removes_only_stale_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".demo.sqlite.tmp-999999");
    let fresh = dir.path().join(".demo.sqlite.tmp-999998");
    fs::write(&stale, b"crashed").unwrap();
    fs::write(&fresh, b"being written").unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3_600);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    generate(dir.path());
    assert!(!stale.exists());
    assert!(fresh.exists());
}

#[test]
fn errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    fs::write(&blocker, b"").unwrap();
    let path = blocker.join("demo.sqlite");
    let err = ensure(&path, SMALL).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn generation_is_deterministic() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (generate(a.path()), generate(b.path()));
    assert!(fs::read(a).unwrap() == fs::read(b).unwrap());
}

/// FNV-1a over every typed value of every table: changes when the generated data changes,
/// e.g. after a `fastrand` upgrade. Then bump `DEMO_VERSION` and update the digest.
#[test]
fn content_matches_the_pinned_digest() {
    let (_dir, conn) = fresh();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for_each_value(&conn, |_, _, _, value| match value {
        Value::Null => feed(b"N"),
        Value::Integer(i) => {
            feed(b"I");
            feed(&i.to_le_bytes());
        }
        Value::Real(r) => {
            feed(b"R");
            feed(&r.to_bits().to_le_bytes());
        }
        Value::Text(t) => {
            feed(b"T");
            feed(&t.len().to_le_bytes());
            feed(t.as_bytes());
        }
        Value::Blob(b) => {
            feed(b"B");
            feed(&b.len().to_le_bytes());
            feed(b);
        }
    });
    assert_eq!(format!("{hash:016x}"), "286b1b0c3af5da8c");
}

#[test]
fn decimals_respect_declared_precision_and_scale() {
    let (_dir, conn) = fresh();
    let mut checked = 0;
    let mut above_u64 = 0;
    let mut trimmed = 0;
    let mut extremes = Vec::new();
    for_each_value(&conn, |table, column, decl, value| {
        let Some((precision, scale)) = decimal_type(decl) else {
            return;
        };
        let text = match value {
            Value::Null => return,
            Value::Text(t) => t,
            other => panic!("{table}.{column}: {other:?} is not TEXT"),
        };
        let unscaled = parse_decimal(text, precision, scale)
            .unwrap_or_else(|e| panic!("{table}.{column} {decl}: {e}"));
        checked += 1;
        if unscaled.unsigned_abs() > u128::from(u64::MAX) {
            above_u64 += 1;
        }
        if scale > 0 && !text.contains('.') {
            trimmed += 1;
        }
        if decl == "TEXT MONEY" && unscaled.unsigned_abs() >= i64::MAX as u128 {
            extremes.push(text.clone());
        }
    });
    assert!(checked > 50_000, "{checked}");
    assert!(above_u64 > 100, "{above_u64}");
    assert!(trimmed > 100, "{trimmed}");
    assert!(extremes.contains(&"922337203685477.5807".to_string()));
    assert!(extremes.contains(&"-922337203685477.5808".to_string()));
}

#[test]
fn dates_and_timestamps_are_valid() {
    let (_dir, conn) = fresh();
    let (mut dates, mut before_1970) = (Vec::new(), 0);
    for_each_value(&conn, |table, column, decl, value| {
        let Value::Text(text) = value else {
            assert!(
                !matches!(decl, "DATE" | "DATETIME" | "TIMESTAMP") || *value == Value::Null,
                "{table}.{column}: {value:?}"
            );
            return;
        };
        let valid = match decl {
            "DATE" => parse_date(text),
            "DATETIME" => parse_timestamp(text, true).map(|m| m.div_euclid(MICROS_PER_DAY)),
            "TIMESTAMP" => parse_timestamp(text, false).map(|m| m.div_euclid(MICROS_PER_DAY)),
            _ => return,
        };
        let days = valid.unwrap_or_else(|| panic!("{table}.{column} {decl}: {text:?}"));
        if days < 0 {
            before_1970 += 1;
        }
        if decl == "DATE" {
            dates.push(text.clone());
        }
    });
    assert!(before_1970 > 1_000, "{before_1970}");
    assert!(dates.iter().any(|d| d == "0001-01-01"));
    assert!(dates.iter().any(|d| d == "9999-12-31"));
    let epoch_edge: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM AGENTSVES WHERE LAST_AUDIT_AT = '1969-12-31 23:59:59'
             AND CREATED_AT = '0001-01-01 00:00:00.000000'
             AND UPDATED_AT = '0001-01-01 00:00:00.000000'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(epoch_edge >= 1);
}

#[test]
fn values_match_declared_types() {
    let (_dir, conn) = fresh();
    for_each_value(&conn, |table, column, decl, value| {
        let base = decl.split([' ', '(']).next().unwrap();
        let ok = match (base, value) {
            (_, Value::Null) => true, // NOT NULL columns are checked below
            ("BOOLEAN", Value::Integer(i)) => *i == 0 || *i == 1,
            ("SMALLINT", Value::Integer(i)) => i16::try_from(*i).is_ok(),
            ("INT", Value::Integer(i)) => i32::try_from(*i).is_ok(),
            ("INTEGER" | "BIGINT", Value::Integer(_)) => true,
            ("REAL", Value::Real(r)) => r.is_finite(),
            ("BLOB", Value::Blob(_)) => true,
            (
                "DECIMAL" | "NUMERIC" | "MONEY" | "DATE" | "DATETIME" | "TIMESTAMP" | "TEXT"
                | "VARCHAR" | "NVARCHAR" | "CHAR",
                Value::Text(_),
            ) => true,
            _ => false,
        };
        assert!(ok, "{table}.{column} {decl}: {value:?}");
    });
    for (name, decl, not_null, pk) in columns(&conn, "AGENTSVES") {
        let nulls: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM AGENTSVES WHERE {name} IS NULL"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        if not_null || pk {
            assert_eq!(nulls, 0, "{name}");
        } else {
            assert!(nulls > 0, "{name} {decl} is nullable but never NULL");
        }
    }
    let (half_null, empty, total): (i64, i64, i64) = conn
        .query_row(
            "SELECT SUM(PENDING_PAYOUT IS NULL), SUM(NICKNAME = ''), COUNT(*) FROM AGENTSVES",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(
        (total * 2 / 5..=total * 3 / 5).contains(&half_null),
        "{half_null}"
    );
    assert!(empty > 100, "{empty}");
    for needle in [
        "é",
        "ñ",
        "ü",
        "東京",
        "北京",
        "🚀",
        "👩‍💻",
        "\t",
        "\n",
        "\"",
        "\\",
        "'",
    ] {
        let hits: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM AGENTSVES WHERE instr(AGENT_NAME || CITY || NOTES
                    || SIGNATURE || NICKNAME || BIO || PREFERENCES, ?1) > 0",
                [needle],
                |r| r.get(0),
            )
            .unwrap();
        assert!(hits > 0, "no value contains {needle:?}");
    }
    let avg_bytes: f64 = conn
        .query_row(
            "SELECT CAST(SUM(payload) AS REAL) / 9066 FROM dbstat WHERE name = 'AGENTSVES'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!((800.0..=1_300.0).contains(&avg_bytes), "{avg_bytes}");
}

#[test]
fn strings_fit_declared_lengths() {
    let (_dir, conn) = fresh();
    for_each_value(&conn, |table, column, decl, value| {
        let Some(len) = ["VARCHAR(", "NVARCHAR(", "CHAR("]
            .iter()
            .find_map(|p| decl.strip_prefix(p))
            .and_then(|rest| rest.split(')').next()?.parse::<usize>().ok())
        else {
            return;
        };
        if let Value::Text(t) = value {
            assert!(
                t.len() <= len,
                "{table}.{column} {decl}: {t:?} has {} bytes",
                t.len()
            );
            if decl.starts_with("CHAR(") {
                assert_eq!(t.chars().count(), len, "{table}.{column}: {t:?}");
            }
        }
    });
}

#[test]
fn calendar_and_decimal_formatting() {
    for days in (MIN_DAY..=MAX_DAY).step_by(17) {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    let fmt = |micros| {
        let mut s = String::new();
        push_timestamp(&mut s, micros, true);
        s
    };
    assert_eq!(fmt(-1), "1969-12-31 23:59:59.999999");
    assert_eq!(fmt(MIN_MICROS), "0001-01-01 00:00:00.000000");
    assert_eq!(fmt(MAX_MICROS), "9999-12-31 23:59:59.999999");
    let dec = |unscaled, scale, trim| {
        let mut s = String::new();
        push_decimal(&mut s, unscaled, scale, trim);
        s
    };
    assert_eq!(dec(-12_345_600, 4, false), "-1234.5600");
    assert_eq!(dec(-12_345_600, 4, true), "-1234.56");
    assert_eq!(dec(700, 2, true), "7");
    assert_eq!(dec(5, 2, false), "0.05");
    assert_eq!(dec(0, 2, false), "0.00");
    assert_eq!(dec(-5, 0, false), "-5");
    assert_eq!(ascii_slug("Nguyễn"), "nguyen");
    assert_eq!(ascii_slug("O'Brien"), "obrien");
    assert_eq!(ascii_slug("İstanbul"), "istanbul");
    assert_eq!(ascii_slug("山田"), "agent");
    assert!(COUNTRY_LIST.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    for place in PLACES {
        assert!(country_id(place.iso2).is_some(), "{}", place.iso2);
    }
}
