//! Tables shared by the TDS tests and the `tds_server` binary: `ALLTYPES` (one column per SQL
//! Server type, edge values), a wide 66-column table generated cheaply for throughput, and a
//! table with a composite (nvarchar, int) key. All are deterministic in the row number.

use super::{Col, DAYS_1900, RowFn, SqlType, Table, Value, days_from_ymd, parse_guid, str_slot};
use std::fmt::Write as _;
use std::sync::Arc;

/// The `ALLTYPES` GUID, whose wire form checks the mixed-endian byte order.
pub const GUID_TEXT: &str = "6F9619FF-8B86-D011-B42D-00C04FD430C8";
/// Length in characters of the large nvarchar(max) value (UTF-16: 2 bytes each → 5 MB).
pub const BIG_NVARCHAR_CHARS: usize = 2_500_000;
/// Length of the large varbinary(max) value (> 64 KiB).
pub const BIG_VARBINARY_BYTES: usize = 70_000;

fn d(y: i64, m: u32, day: u32) -> u32 {
    days_from_ymd(y, m, day) as u32
}

fn t(h: u64, m: u64, s: u64, frac7: u64) -> u64 {
    (h * 3600 + m * 60 + s) * 10_000_000 + frac7
}

fn pad(s: &str, n: usize) -> String {
    let mut s = s.to_string();
    while s.chars().count() < n {
        s.push(' ');
    }
    s
}

/// A datetimeoffset from its local time and offset (stored as UTC).
fn dto(days: u32, ticks: u64, offset_min: i16) -> Value {
    let utc =
        days as i64 * super::TICKS_PER_DAY as i64 + ticks as i64 - offset_min as i64 * 600_000_000;
    Value::DateTimeOffset {
        days: utc.div_euclid(super::TICKS_PER_DAY as i64) as u32,
        ticks: utc.rem_euclid(super::TICKS_PER_DAY as i64) as u64,
        offset_min,
    }
}

fn dt(y: i64, m: u32, day: u32, ticks300: u32) -> Value {
    Value::DateTime {
        days: (days_from_ymd(y, m, day) - DAYS_1900) as i32,
        ticks300,
    }
}

/// The columns of `ALLTYPES`, in order.
pub fn types_columns() -> Vec<Col> {
    use SqlType::*;
    let cols: Vec<(&str, SqlType)> = vec![
        ("ID", Int),
        ("C_BIT", Bit),
        ("C_TINYINT", TinyInt),
        ("C_SMALLINT", SmallInt),
        ("C_INT", Int),
        ("C_BIGINT", BigInt),
        ("C_REAL", Real),
        ("C_FLOAT", Float),
        ("C_DEC38_10", Decimal(38, 10)),
        ("C_DEC38_0", Decimal(38, 0)),
        ("C_NUM9_2", Numeric(9, 2)),
        ("C_DEC18_4", Decimal(18, 4)),
        ("C_MONEY", Money),
        ("C_SMALLMONEY", SmallMoney),
        ("C_DATE", Date),
        ("C_TIME", Time(7)),
        ("C_TIME3", Time(3)),
        ("C_DATETIME", DateTime),
        ("C_SMALLDATETIME", SmallDateTime),
        ("C_DT2", DateTime2(7)),
        ("C_DT2_0", DateTime2(0)),
        ("C_DTO", DateTimeOffset(7)),
        ("C_CHAR", Char(10)),
        ("C_VARCHAR", VarChar(Some(50))),
        ("C_VARCHARMAX", VarChar(None)),
        ("C_TEXT", Text),
        ("C_NCHAR", NChar(10)),
        ("C_NVARCHAR", NVarChar(Some(100))),
        ("C_NVARCHARMAX", NVarChar(None)),
        ("C_NTEXT", NText),
        ("C_BINARY", Binary(8)),
        ("C_VARBINARY", VarBinary(Some(50))),
        ("C_VARBINARYMAX", VarBinary(None)),
        ("C_IMAGE", Image),
        ("C_GUID", UniqueIdentifier),
        ("C_ROWVERSION", RowVersion),
        ("C_XML", Xml),
        ("C_HIERARCHYID", HierarchyId),
        ("C_GEOGRAPHY", Geography),
        ("C_GEOMETRY", Geometry),
        ("C_VARIANT", SqlVariant),
    ];
    cols.into_iter()
        .map(|(n, ty)| Col::new(n, ty, n != "ID" && n != "C_ROWVERSION"))
        .collect()
}

/// The rows of `ALLTYPES`: ID 1 maxima, ID 2 minima and empty values, ID 3 NULL in every
/// nullable column, ID 4 typical values with the large (max) values, ID 5 more float edges.
pub fn types_rows() -> Vec<Vec<Value>> {
    use Value::*;
    let max38: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;
    let s = |x: &str| Str(x.to_string());
    let guid = Guid(parse_guid(GUID_TEXT).unwrap());
    let big_text: String = {
        let unit = "Grüße, 東京 😀 ";
        let per = unit.encode_utf16().count();
        unit.repeat(BIG_NVARCHAR_CHARS.div_ceil(per))
    };
    let big_bin: Vec<u8> = (0..BIG_VARBINARY_BYTES)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let r1 = vec![
        Int(1),
        Bool(true),
        Int(255),
        Int(32767),
        Int(i32::MAX as i64),
        Int(i64::MAX),
        F32(f32::MAX),
        F64(f64::MAX),
        Dec(max38),
        Dec(max38),
        Dec(999_999_999),
        Dec(999_999_999_999_999_999),
        Money(i64::MAX),
        Money(i32::MAX as i64),
        Date(d(9999, 12, 31)),
        Time(t(23, 59, 59, 9_999_999)),
        Time(t(23, 59, 59, 9_990_000)),
        dt(9999, 12, 31, 86399 * 300 + 299),
        SmallDateTime {
            days: (days_from_ymd(2079, 6, 6) - DAYS_1900) as u16,
            minutes: 23 * 60 + 59,
        },
        DateTime2 {
            days: d(9999, 12, 31),
            ticks: t(23, 59, 59, 9_999_999),
        },
        DateTime2 {
            days: d(9999, 12, 31),
            ticks: t(23, 59, 59, 0),
        },
        dto(d(9999, 12, 31), t(23, 59, 59, 9_999_999), 14 * 60),
        s(&pad("abc", 10)),
        s("café €uro ŠŽ"),
        s(&"é€x".repeat(3000)),
        s("text é €"),
        s(&pad("ñandú", 10)),
        s("Zoë 東京 😀 naïve"),
        s("nvarchar(max) Zoë 😀"),
        s("ntext ü 😀"),
        Bytes(vec![0xFF; 8]),
        Bytes(vec![0, 1, 2, 0xFF]),
        Bytes(vec![0xDE, 0xAD, 0xBE, 0xEF]),
        Bytes((0..1000).map(|i| (i % 251) as u8).collect()),
        guid.clone(),
        Bytes(vec![0, 0, 0, 0, 0, 0, 0x07, 0xD1]),
        s("<a b=\"1\">é</a>"),
        s("/1/3/"),
        s("POINT (2.35 48.85)"),
        s("POINT (1 2)"),
        s("variant text"),
    ];
    let r2 = vec![
        Int(2),
        Bool(false),
        Int(0),
        Int(-32768),
        Int(i32::MIN as i64),
        Int(i64::MIN),
        F32(f32::MIN),
        F64(f64::MIN),
        Dec(-max38),
        Dec(-max38),
        Dec(-999_999_999),
        Dec(-999_999_999_999_999_999),
        Money(i64::MIN),
        Money(i32::MIN as i64),
        Date(d(1, 1, 1)),
        Time(0),
        Time(0),
        dt(1753, 1, 1, 0),
        SmallDateTime {
            days: 0,
            minutes: 0,
        },
        DateTime2 {
            days: d(1, 1, 1),
            ticks: 0,
        },
        DateTime2 {
            days: d(1, 1, 1),
            ticks: 0,
        },
        // 0001-01-01 00:00:00-12:00 local is 12:00 UTC the same day.
        dto(d(1, 1, 1), 0, -12 * 60),
        s(&pad("", 10)),
        s(""),
        s(""),
        s(""),
        s(&pad("", 10)),
        s(""),
        s(""),
        s(""),
        Bytes(vec![0; 8]),
        Bytes(vec![]),
        Bytes(vec![]),
        Bytes(vec![]),
        Guid([0; 16]),
        Bytes(vec![0, 0, 0, 0, 0, 0, 0x07, 0xD2]),
        s("<r/>"),
        s("/"),
        s("POINT (-122.349 47.651)"),
        s("POINT (-1.5 0)"),
        s(""),
    ];
    let mut r3: Vec<Value> = vec![Null; r1.len()];
    r3[0] = Int(3);
    r3[35] = Bytes(vec![0, 0, 0, 0, 0, 0, 0x07, 0xD3]);
    let r4 = vec![
        Int(4),
        Bool(true),
        Int(42),
        Int(-1234),
        Int(123_456_789),
        Int(-9_007_199_254_740_993),
        F32(1.1),
        F64(0.1),
        Dec(-12_345_678_901_234_567_890_123_456_789_i128),
        Dec(12_345),
        Dec(-1),
        Dec(5),
        Money(-12_345_678),
        Money(1),
        Date(d(2024, 2, 29)),
        Time(t(12, 34, 56, 1_234_567)),
        Time(t(0, 0, 0, 10_000)),
        // 2024-02-29 23:59:59.997 = tick 299 of the last second
        dt(2024, 2, 29, 86399 * 300 + 299),
        SmallDateTime {
            days: (days_from_ymd(2024, 2, 29) - DAYS_1900) as u16,
            minutes: 12 * 60 + 34,
        },
        DateTime2 {
            days: d(2024, 2, 29),
            ticks: t(12, 34, 56, 1_234_567),
        },
        DateTime2 {
            days: d(1999, 12, 31),
            ticks: t(23, 59, 59, 0),
        },
        dto(d(2024, 6, 1), t(12, 34, 56, 1_234_567), 5 * 60 + 30),
        s(&pad("x'y\"z", 10)),
        s("plain ascii"),
        s("short"),
        s(&"long text ".repeat(1000)),
        s(&pad("日本", 10)),
        s(""),
        Str(big_text),
        s(&"ntext ".repeat(2000)),
        Bytes(vec![1, 2, 3, 4, 5, 6, 7, 8]),
        Bytes(vec![0; 50]),
        Bytes(big_bin),
        Bytes(vec![0xCA, 0xFE]),
        Guid(parse_guid("00000000-0000-0000-0000-000000000001").unwrap()),
        Bytes(vec![0xFF; 8]),
        s("<root><item id=\"1\">x &amp; y</item></root>"),
        s("/1/"),
        s("POINT (0 0)"),
        s("POINT (10.25 -3.5)"),
        s("42"),
    ];
    let mut r5 = r3.clone();
    r5[0] = Int(5);
    r5[6] = F32(-1.5e-45); // smallest subnormal, negative
    r5[7] = F64(5e-324);
    r5[4] = Int(0);
    r5[35] = Bytes(vec![0, 0, 0, 0, 0, 0, 0x07, 0xD4]);
    vec![r1, r2, r3, r4, r5]
}

/// `dbo.ALLTYPES`: key `ID`, one column per SQL Server type, edge values (see [`types_rows`]).
pub fn types_table() -> Table {
    let rows = Arc::new(types_rows());
    let n = rows.len() as u64;
    let r2 = rows.clone();
    Table {
        schema: "dbo".into(),
        name: "ALLTYPES".into(),
        columns: types_columns(),
        primary_key: vec!["ID".into()],
        rows: n,
        row: Arc::new(move |i, v| {
            v.clear();
            v.extend(rows[i as usize].iter().cloned());
        }),
        key: Some(Arc::new(move |i, v| {
            v.resize(r2[0].len(), Value::Null);
            v[0] = r2[i as usize][0].clone();
        })),
    }
}

/// splitmix64: cheap deterministic pseudo-random bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const FIRST: [&str; 8] = [
    "Ana", "Björn", "Chloé", "Dmitri", "Eun-ji", "Farah", "Giulia", "Hiro",
];
const LAST: [&str; 8] = [
    "Silva", "Öztürk", "Nguyễn", "Smith", "Kowalski", "García", "Müller", "Sato",
];
const CITIES: [&str; 6] = ["Lisboa", "São Paulo", "Zürich", "Kraków", "Québec", "Osaka"];

/// The wide table's extra columns cycle through these types.
const EXTRA: [SqlType; 10] = [
    SqlType::Int,
    SqlType::BigInt,
    SqlType::Decimal(18, 2),
    SqlType::NVarChar(Some(50)),
    SqlType::VarChar(Some(100)),
    SqlType::DateTime2(7),
    SqlType::Float,
    SqlType::Bit,
    SqlType::Date,
    SqlType::NVarChar(Some(200)),
];

/// Columns of the wide table (66).
pub fn wide_columns() -> Vec<Col> {
    use SqlType::*;
    let mut c = vec![
        Col::new("ID", Int, false),
        Col::new("CODE", NVarChar(Some(50)), false),
        Col::new("NAME", NVarChar(Some(200)), false),
        Col::new("FIRST_NAME", NVarChar(Some(50)), true),
        Col::new("LAST_NAME", NVarChar(Some(50)), true),
        Col::new("EMAIL", NVarChar(Some(200)), true),
        Col::new("PHONE", VarChar(Some(100)), true),
        Col::new("ADDRESS1", NVarChar(Some(200)), true),
        Col::new("ADDRESS2", NVarChar(Some(200)), true),
        Col::new("CITY", NVarChar(Some(50)), true),
        Col::new("COUNTRY_ID", Int, false),
        Col::new("STATUS", Int, false),
        Col::new("PARENT_ID", BigInt, true),
        Col::new("BALANCE", Decimal(18, 2), false),
        Col::new("RATE", Decimal(38, 10), true),
        Col::new("FEE", Money, true),
        Col::new("CREATED", DateTime2(7), false),
        Col::new("LAST_LOGIN", DateTime, true),
        Col::new("BIRTH_DATE", Date, true),
        Col::new("ACTIVE", Bit, false),
        Col::new("SCORE", Float, true),
        Col::new("GUID", UniqueIdentifier, false),
        Col::new("NOTES", NVarChar(Some(200)), true),
    ];
    let mut k = 0;
    while c.len() < 66 {
        let ty = EXTRA[k % EXTRA.len()];
        c.push(Col::new(&format!("ATTR_{:02}", c.len()), ty, k % 3 == 1));
        k += 1;
    }
    c
}

/// Fills row `i` of the wide table without allocating (strings reuse the row's buffers).
fn wide_row(i: u64, v: &mut Vec<Value>, ncols: usize) {
    use Value::*;
    if v.len() != ncols {
        v.resize(ncols, Null);
    }
    let id = i + 1;
    let h = mix(id);
    let f = FIRST[(h % 8) as usize];
    let l = LAST[((h >> 3) % 8) as usize];
    let city = CITIES[((h >> 6) % 6) as usize];
    v[0] = Int(id as i64);
    let _ = write!(str_slot(&mut v[1]), "AG{id:08}");
    let _ = write!(str_slot(&mut v[2]), "{f} {l} — agency #{id} of {city}");
    let _ = write!(str_slot(&mut v[3]), "{f}");
    let _ = write!(str_slot(&mut v[4]), "{l}");
    let _ = write!(
        str_slot(&mut v[5]),
        "{}.{}{id}@example.com",
        f.to_lowercase(),
        id % 97
    );
    let _ = write!(
        str_slot(&mut v[6]),
        "+351 21 {:03} {:04}",
        h % 1000,
        (h >> 10) % 10000
    );
    let _ = write!(
        str_slot(&mut v[7]),
        "Rua das Flores {}, {}º andar",
        h % 500,
        (h >> 9) % 9
    );
    if id.is_multiple_of(7) {
        v[8] = Null;
    } else {
        let _ = write!(str_slot(&mut v[8]), "Apartment {}", (h >> 12) % 300);
    }
    let _ = write!(str_slot(&mut v[9]), "{city}");
    v[10] = Int(((h >> 15) % 250) as i64);
    v[11] = Int(((h >> 20) % 5) as i64);
    v[12] = if id.is_multiple_of(5) {
        Null
    } else {
        Int((id / 10) as i64)
    };
    v[13] = Dec(((h >> 8) % 100_000_000_000) as i128 - 50_000_000_000);
    v[14] = if id.is_multiple_of(11) {
        Null
    } else {
        Dec((h % 10_000_000_000_000_000) as i128 * 1_000)
    };
    v[15] = if id.is_multiple_of(13) {
        Null
    } else {
        Money(((h >> 4) % 100_000_000) as i64)
    };
    v[16] = DateTime2 {
        days: 737_000 + (id % 3000) as u32,
        ticks: (h >> 7) % super::TICKS_PER_DAY,
    };
    v[17] = if id.is_multiple_of(17) {
        Null
    } else {
        DateTime {
            days: 44_000 + (id % 2000) as i32,
            ticks300: ((h >> 11) % 25_920_000) as u32,
        }
    };
    v[18] = if id.is_multiple_of(19) {
        Null
    } else {
        Date(715_000 + (h % 20_000) as u32)
    };
    v[19] = Bool(h & 1 == 1);
    v[20] = if id.is_multiple_of(23) {
        Null
    } else {
        F64((h % 1_000_000) as f64 / 64.0)
    };
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&h.to_be_bytes());
    g[8..].copy_from_slice(&id.to_be_bytes());
    v[21] = Guid(g);
    if id.is_multiple_of(3) {
        v[22] = Null;
    } else {
        let _ = write!(
            str_slot(&mut v[22]),
            "Note for agent {id}: follow up on contract {} before the end of the quarter.",
            h % 100_000
        );
    }
    for (c, cell) in v.iter_mut().enumerate().skip(23) {
        let k = c - 23;
        if k % 3 == 1 && (id + c as u64).is_multiple_of(4) {
            *cell = Null;
            continue;
        }
        let x = mix(h ^ c as u64);
        match EXTRA[k % EXTRA.len()] {
            SqlType::Int => *cell = Int((x % 1_000_000) as i64),
            SqlType::BigInt => *cell = Int((x >> 1) as i64),
            SqlType::Decimal(..) => *cell = Dec((x % 10_000_000_000) as i128),
            SqlType::NVarChar(Some(50)) => {
                let _ = write!(str_slot(cell), "value {c}-{}", x % 10_000);
            }
            SqlType::VarChar(_) => {
                let _ = write!(str_slot(cell), "REF-{:012X}", x & 0xFFFF_FFFF_FFFF);
            }
            SqlType::DateTime2(_) => {
                *cell = DateTime2 {
                    days: 730_000 + (x % 10_000) as u32,
                    ticks: (x >> 16) % super::TICKS_PER_DAY,
                }
            }
            SqlType::Float => *cell = F64((x % 1_000_000_007) as f64 / 7.0),
            SqlType::Bit => *cell = Bool(x & 2 == 2),
            SqlType::Date => *cell = Date(700_000 + (x % 40_000) as u32),
            _ => {
                let _ = write!(
                    str_slot(cell),
                    "Descriptive text for attribute {c} of row {id}, code {:08x}.",
                    x as u32
                );
            }
        }
    }
}

/// A wide table like WorldZone's AGENTSVES: 66 columns, int key `ID` = 1..=rows, a realistic mix
/// of types with some NULLs (~1 KB per row on the wire), generated without per-row allocation.
pub fn wide_table(name: &str, rows: u64) -> Table {
    let cols = wide_columns();
    let n = cols.len();
    let row: RowFn = Arc::new(move |i, v| wide_row(i, v, n));
    Table {
        schema: "dbo".into(),
        name: name.into(),
        columns: cols,
        primary_key: vec!["ID".into()],
        rows,
        row,
        key: Some(Arc::new(move |i, v| {
            if v.len() != n {
                v.resize(n, Value::Null);
            }
            v[0] = Value::Int(i as i64 + 1);
        })),
    }
}

/// Regions of the composite table, in ascending (binary) order.
pub const REGIONS: [&str; 5] = ["AFRICA", "AMERICAS", "ASIA", "EUROPE", "OCEANIA"];

/// `dbo.COMPOSITE`: key (REGION nvarchar(20), ID int), ascending; row i has REGION
/// `REGIONS[i * 5 / rows]`, ID i + 1, then VAL nvarchar(50) and AMOUNT decimal(18,2).
pub fn composite_table(rows: u64) -> Table {
    let cols = vec![
        Col::new("REGION", SqlType::NVarChar(Some(20)), false),
        Col::new("ID", SqlType::Int, false),
        Col::new("VAL", SqlType::NVarChar(Some(50)), true),
        Col::new("AMOUNT", SqlType::Decimal(18, 2), true),
    ];
    let region = move |i: u64| REGIONS[(i * REGIONS.len() as u64 / rows.max(1)) as usize];
    Table {
        schema: "dbo".into(),
        name: "COMPOSITE".into(),
        columns: cols,
        primary_key: vec!["REGION".into(), "ID".into()],
        rows,
        row: Arc::new(move |i, v| {
            v.resize(4, Value::Null);
            str_slot(&mut v[0]).push_str(region(i));
            v[1] = Value::Int(i as i64 + 1);
            if i % 10 == 9 {
                v[2] = Value::Null;
            } else {
                let _ = write!(str_slot(&mut v[2]), "value {i}");
            }
            v[3] = Value::Dec((i as i128 * 12_345) % 100_000_000);
        }),
        key: Some(Arc::new(move |i, v| {
            v.resize(4, Value::Null);
            str_slot(&mut v[0]).push_str(region(i));
            v[1] = Value::Int(i as i64 + 1);
        })),
    }
}
