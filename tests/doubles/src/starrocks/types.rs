//! StarRocks column types: parsing the type text of a column definition, checking the limits
//! StarRocks enforces at CREATE TABLE, and turning an incoming value (a CSV field of a Stream
//! Load, a cell from an external catalog, a literal of INSERT ... VALUES) into the exact text a
//! real StarRocks sends back over the MySQL text protocol.
//!
//! It exists so that every load path of the double validates values the same way: a value the
//! double accepts is one StarRocks would accept for that declared type, and what a test reads
//! back is byte for byte what a StarRocks client would read.
//!
//! Deliberate choices (see also `mod.rs`):
//! - DECIMAL(p,s): more than `p - s` integer digits or more than `s` fraction digits is a
//!   conversion failure (StarRocks rounds extra fraction digits; the double refuses them so a
//!   loader that loses precision is caught).
//! - DATE is `YYYY-MM-DD`, DATETIME `YYYY-MM-DD HH:MM:SS[.f{1,6}]` only (StarRocks also parses
//!   some looser forms; the loader must send the canonical one).
//! - FLOAT/DOUBLE refuse `inf`/`nan` spellings.
//! - VARBINARY fields of a Stream Load CSV are base64 with a raw-bytes fallback, as the BE reads
//!   them ([`varbinary_from_csv`]); cells from an external catalog are raw bytes.

use std::fmt;

/// Largest VARCHAR / VARBINARY length in bytes.
pub const MAX_VARCHAR: u32 = 1_048_576;
/// STRING is VARCHAR(65533).
pub const STRING_LEN: u32 = 65_533;
/// Largest CHAR length in bytes.
pub const MAX_CHAR: u32 = 255;

/// A declared StarRocks column type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    LargeInt,
    Float,
    Double,
    /// DECIMAL(precision, scale)
    Decimal(u8, u8),
    Date,
    DateTime,
    /// CHAR(n), n in bytes
    Char(u32),
    /// VARCHAR(n), n in bytes
    Varchar(u32),
    /// STRING (65533 bytes)
    String,
    /// VARBINARY(n) (no length: 1048576)
    Varbinary(u32),
}

impl fmt::Display for SrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SrType::Boolean => write!(f, "BOOLEAN"),
            SrType::TinyInt => write!(f, "TINYINT"),
            SrType::SmallInt => write!(f, "SMALLINT"),
            SrType::Int => write!(f, "INT"),
            SrType::BigInt => write!(f, "BIGINT"),
            SrType::LargeInt => write!(f, "LARGEINT"),
            SrType::Float => write!(f, "FLOAT"),
            SrType::Double => write!(f, "DOUBLE"),
            SrType::Decimal(p, s) => write!(f, "DECIMAL({p},{s})"),
            SrType::Date => write!(f, "DATE"),
            SrType::DateTime => write!(f, "DATETIME"),
            SrType::Char(n) => write!(f, "CHAR({n})"),
            SrType::Varchar(n) => write!(f, "VARCHAR({n})"),
            SrType::String => write!(f, "STRING"),
            SrType::Varbinary(n) => write!(f, "VARBINARY({n})"),
        }
    }
}

impl SrType {
    /// Builds a type from its name (any case) and its parenthesised arguments, enforcing the
    /// limits of StarRocks' CREATE TABLE. `args` is `None` when no parentheses were written.
    pub fn from_parts(name: &str, args: Option<&[u64]>) -> Result<SrType, String> {
        let upper = name.to_ascii_uppercase();
        let no_args = |t: SrType| {
            match args {
            None => Ok(t),
            Some(_) if upper == "DATETIME" => Err(
                "DATETIME(p) is not supported by StarRocks: declare DATETIME (microseconds are kept)"
                    .to_string(),
            ),
            // StarRocks accepts a display width like INT(11) and ignores it.
            Some(a) if a.len() == 1 && matches!(upper.as_str(), "TINYINT" | "SMALLINT" | "INT" | "INTEGER" | "BIGINT") => Ok(t),
            Some(_) => Err(format!("type {upper} takes no arguments")),
        }
        };
        match upper.as_str() {
            "BOOLEAN" | "BOOL" => no_args(SrType::Boolean),
            "TINYINT" => no_args(SrType::TinyInt),
            "SMALLINT" => no_args(SrType::SmallInt),
            "INT" | "INTEGER" => no_args(SrType::Int),
            "BIGINT" => no_args(SrType::BigInt),
            "LARGEINT" => no_args(SrType::LargeInt),
            "FLOAT" => no_args(SrType::Float),
            "DOUBLE" => no_args(SrType::Double),
            "DATE" => no_args(SrType::Date),
            "DATETIME" => no_args(SrType::DateTime),
            "STRING" => no_args(SrType::String),
            "DECIMAL" | "NUMERIC" | "DECIMALV3" | "DECIMAL32" | "DECIMAL64" | "DECIMAL128" => {
                let (p, s) = match args {
                    None => (10, 0),
                    Some([p]) => (*p, 0),
                    Some([p, s]) => (*p, *s),
                    Some(_) => return Err("DECIMAL takes (precision[, scale])".into()),
                };
                if p == 0 || p > 38 {
                    return Err(format!(
                        "DECIMAL precision must be between 1 and 38, got {p}"
                    ));
                }
                if s > p {
                    return Err(format!(
                        "DECIMAL scale {s} must not be greater than precision {p}"
                    ));
                }
                Ok(SrType::Decimal(p as u8, s as u8))
            }
            "VARCHAR" => match args {
                None => Ok(SrType::Varchar(1)),
                Some([n]) if (1..=MAX_VARCHAR as u64).contains(n) => Ok(SrType::Varchar(*n as u32)),
                Some([n]) => Err(format!(
                    "VARCHAR length must be between 1 and {MAX_VARCHAR} bytes, got {n}"
                )),
                Some(_) => Err("VARCHAR takes one length".into()),
            },
            "CHAR" => match args {
                None => Ok(SrType::Char(1)),
                Some([n]) if (1..=MAX_CHAR as u64).contains(n) => Ok(SrType::Char(*n as u32)),
                Some([n]) => Err(format!(
                    "CHAR length must be between 1 and {MAX_CHAR} bytes, got {n}"
                )),
                Some(_) => Err("CHAR takes one length".into()),
            },
            "VARBINARY" => match args {
                None => Ok(SrType::Varbinary(MAX_VARCHAR)),
                Some([n]) if (1..=MAX_VARCHAR as u64).contains(n) => {
                    Ok(SrType::Varbinary(*n as u32))
                }
                Some([n]) => Err(format!(
                    "VARBINARY length must be between 1 and {MAX_VARCHAR} bytes, got {n}"
                )),
                Some(_) => Err("VARBINARY takes one length".into()),
            },
            "TIME" => Err("StarRocks has no TIME column type".into()),
            "JSON" | "ARRAY" | "MAP" | "STRUCT" | "BITMAP" | "HLL" | "PERCENTILE" => Err(format!(
                "column type {upper} is not supported by this test double"
            )),
            _ => Err(format!("unknown column type {name}")),
        }
    }

    /// Whether StarRocks accepts the type in a PRIMARY KEY.
    pub fn allowed_in_primary_key(&self) -> bool {
        matches!(
            self,
            SrType::Boolean
                | SrType::TinyInt
                | SrType::SmallInt
                | SrType::Int
                | SrType::BigInt
                | SrType::LargeInt
                | SrType::Varchar(_)
                | SrType::String
                | SrType::Date
                | SrType::DateTime
        )
    }

    /// Bytes the value takes in the encoded primary key (StarRocks caps the key at 128 bytes).
    pub fn key_bytes(&self, stored: &[u8]) -> usize {
        match self {
            SrType::Boolean | SrType::TinyInt => 1,
            SrType::SmallInt => 2,
            SrType::Int | SrType::Date => 4,
            SrType::BigInt | SrType::DateTime => 8,
            SrType::LargeInt => 16,
            _ => stored.len(),
        }
    }

    /// MySQL protocol column type code and display length used in result set metadata, as a
    /// StarRocks FE reports them.
    pub fn mysql_type(&self) -> (u8, u32, u8) {
        // (type code, column length, decimals)
        match self {
            SrType::Boolean => (0x01, 1, 0),
            SrType::TinyInt => (0x01, 4, 0),
            SrType::SmallInt => (0x02, 6, 0),
            SrType::Int => (0x03, 11, 0),
            SrType::BigInt => (0x08, 20, 0),
            SrType::LargeInt => (0xfe, 40, 0),
            SrType::Float => (0x04, 12, 31),
            SrType::Double => (0x05, 22, 31),
            SrType::Decimal(p, s) => (0xf6, *p as u32 + 2, *s),
            SrType::Date => (0x0a, 10, 0),
            SrType::DateTime => (0x0c, 26, 6),
            SrType::Char(n) => (0xfe, *n, 0),
            SrType::Varchar(n) => (0xfd, *n, 0),
            SrType::String => (0xfd, STRING_LEN, 0),
            SrType::Varbinary(n) => (0xfd, *n, 0),
        }
    }

    /// Whether values are character data (charset utf8) rather than numbers, dates or binary.
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            SrType::Char(_) | SrType::Varchar(_) | SrType::String | SrType::LargeInt
        )
    }

    /// Limit in bytes for string and binary types.
    fn byte_limit(&self) -> Option<u32> {
        match self {
            SrType::Char(n) | SrType::Varchar(n) | SrType::Varbinary(n) => Some(*n),
            SrType::String => Some(STRING_LEN),
            _ => None,
        }
    }

    /// Converts a CSV field of a Stream Load to the stored text form. VARBINARY is base64 there
    /// (see [`varbinary_from_csv`]).
    pub fn from_csv(&self, field: &[u8]) -> Result<Vec<u8>, ValueError> {
        match self {
            SrType::Varbinary(_) => self.check_len(varbinary_from_csv(field)),
            _ => self.from_text(field),
        }
    }

    /// Converts a value in text form (as StarRocks prints it; VARBINARY as raw bytes) to the
    /// stored text form.
    pub fn from_text(&self, v: &[u8]) -> Result<Vec<u8>, ValueError> {
        let conv =
            |what: &str| ValueError::Conversion(format!("'{}' is not a valid {what}", show(v)));
        let s = || std::str::from_utf8(v).map_err(|_| conv(&self.to_string()));
        match self {
            SrType::Boolean => match s()?.to_ascii_lowercase().as_str() {
                "1" | "true" => Ok(b"1".to_vec()),
                "0" | "false" => Ok(b"0".to_vec()),
                _ => Err(conv("BOOLEAN")),
            },
            SrType::TinyInt => {
                int_in(s()?, i8::MIN as i128, i8::MAX as i128).ok_or_else(|| conv("TINYINT"))
            }
            SrType::SmallInt => {
                int_in(s()?, i16::MIN as i128, i16::MAX as i128).ok_or_else(|| conv("SMALLINT"))
            }
            SrType::Int => {
                int_in(s()?, i32::MIN as i128, i32::MAX as i128).ok_or_else(|| conv("INT"))
            }
            SrType::BigInt => {
                int_in(s()?, i64::MIN as i128, i64::MAX as i128).ok_or_else(|| conv("BIGINT"))
            }
            SrType::LargeInt => int_in(s()?, i128::MIN, i128::MAX).ok_or_else(|| conv("LARGEINT")),
            SrType::Float => {
                let t = s()?;
                if !is_plain_number(t) {
                    return Err(conv("FLOAT"));
                }
                match t.parse::<f32>() {
                    Ok(x) if x.is_finite() => Ok(format!("{x}").into_bytes()),
                    _ => Err(conv("FLOAT")),
                }
            }
            SrType::Double => {
                let t = s()?;
                if !is_plain_number(t) {
                    return Err(conv("DOUBLE"));
                }
                match t.parse::<f64>() {
                    Ok(x) if x.is_finite() => Ok(format!("{x}").into_bytes()),
                    _ => Err(conv("DOUBLE")),
                }
            }
            SrType::Decimal(p, sc) => decimal(s()?, *p, *sc)
                .map(String::into_bytes)
                .map_err(|why| ValueError::Conversion(format!("'{}' {why}", show(v)))),
            SrType::Date => parse_date(s()?)
                .map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}").into_bytes())
                .ok_or_else(|| conv("DATE (YYYY-MM-DD, 0000-01-01..9999-12-31)")),
            SrType::DateTime => {
                parse_datetime(s()?).ok_or_else(|| conv("DATETIME (YYYY-MM-DD HH:MM:SS[.ffffff])"))
            }
            SrType::Char(_) | SrType::Varchar(_) | SrType::String | SrType::Varbinary(_) => {
                self.check_len(v.to_vec())
            }
        }
    }

    fn check_len(&self, v: Vec<u8>) -> Result<Vec<u8>, ValueError> {
        match self.byte_limit() {
            Some(n) if v.len() > n as usize => Err(ValueError::TooLong(format!(
                "the length of input value {} bytes exceeds the schema length {} of {}",
                v.len(),
                n,
                self
            ))),
            _ => Ok(v),
        }
    }
}

/// Why a value was refused. In a Stream Load both kinds become NULL when strict mode is off (as
/// in StarRocks); INSERT refuses both.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueError {
    Conversion(String),
    TooLong(String),
}

impl ValueError {
    pub fn message(&self) -> &str {
        match self {
            ValueError::Conversion(m) | ValueError::TooLong(m) => m,
        }
    }
}

/// Lossy, shortened display of a value for messages.
pub fn show(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s.into_owned()
    }
}

fn int_in(s: &str, min: i128, max: i128) -> Option<Vec<u8>> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i128 = s.parse().ok()?;
    (min..=max).contains(&n).then(|| n.to_string().into_bytes())
}

/// `[+-]digits[.digits][e[+-]digits]` with at least one digit: no `inf`, `nan`, hex or spaces.
fn is_plain_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Normalises a decimal literal to exactly `scale` fraction digits.
fn decimal(s: &str, precision: u8, scale: u8) -> Result<String, String> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("is not a valid DECIMAL({precision},{scale})"));
    }
    let int = int.trim_start_matches('0');
    let int_room = (precision - scale) as usize;
    if int.len() > int_room {
        return Err(format!(
            "has {} integer digits, more than DECIMAL({precision},{scale}) holds ({int_room})",
            int.len()
        ));
    }
    let frac_sig = frac.trim_end_matches('0');
    if frac_sig.len() > scale as usize {
        return Err(format!(
            "has {} fraction digits, more than the scale of DECIMAL({precision},{scale})",
            frac_sig.len()
        ));
    }
    let mut frac_out = frac_sig.to_string();
    while frac_out.len() < scale as usize {
        frac_out.push('0');
    }
    let zero = int.is_empty() && frac_out.bytes().all(|b| b == b'0');
    let mut out = String::new();
    if neg && !zero {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if scale > 0 {
        out.push('.');
        out.push_str(&frac_out);
    }
    Ok(out)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

/// `YYYY-MM-DD` within 0000-01-01..9999-12-31.
fn parse_date(s: &str) -> Option<(u32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)).then_some((y, m, d))
}

/// `YYYY-MM-DD HH:MM:SS[.f{1,6}]`, printed back as StarRocks does: `.ffffff` only when the
/// microseconds are not zero.
fn parse_datetime(s: &str) -> Option<Vec<u8>> {
    if s.len() < 19 || s.as_bytes()[10] != b' ' {
        return None;
    }
    let (y, mo, d) = parse_date(&s[..10])?;
    let t = &s[11..];
    let (hms, frac) = match t.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (t, None),
    };
    let hb = hms.as_bytes();
    if hb.len() != 8 || hb[2] != b':' || hb[5] != b':' {
        return None;
    }
    let (h, mi, se) = (
        digits(&hms[0..2])?,
        digits(&hms[3..5])?,
        digits(&hms[6..8])?,
    );
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let micros = match frac {
        None => 0,
        Some(f) if (1..=6).contains(&f.len()) => {
            let mut f = f.to_string();
            while f.len() < 6 {
                f.push('0');
            }
            digits(&f)?
        }
        Some(_) => return None,
    };
    let mut out = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{se:02}");
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    Some(out.into_bytes())
}

/// A VARBINARY CSV field as StarRocks' BE reads it (formats/csv/varbinary_converter.cpp, with the
/// lenient base64 decoder of util/url_coding.cpp): leading whitespace is skipped and an empty
/// field is empty; otherwise the field is base64-decoded, skipping whitespace and `=` and
/// accepting a missing padding; if it is not base64 at all, the raw bytes are kept as they are.
/// So hex is NOT decoded: `00ff` is valid base64 and reads as the bytes `d3 47 df`.
pub fn varbinary_from_csv(field: &[u8]) -> Vec<u8> {
    let start = field
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(field.len());
    if start == field.len() {
        return Vec::new();
    }
    base64_lenient(&field[start..]).unwrap_or_else(|| field.to_vec())
}

fn base64_lenient(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4 + 1);
    let mut acc: u32 = 0;
    let mut n = 0usize; // significant characters so far
    for (i, &c) in s.iter().enumerate() {
        if c == 0 {
            break;
        }
        if c == b'=' {
            if s.get(i + 1) != Some(&b'=') && n % 4 == 1 {
                return None;
            }
            continue;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'\t' | b'\n' | b'\r' | b' ' => continue,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        n += 1;
        match n % 4 {
            2 => out.push((acc >> 4) as u8),
            3 => out.push((acc >> 2) as u8),
            0 => {
                out.push(acc as u8);
                acc = 0;
            }
            _ => {}
        }
        acc &= match n % 4 {
            2 => 0xf,
            3 => 0x3,
            _ => 0x3f,
        };
    }
    Some(out)
}

/// Hex digits (any case, even count) to bytes.
pub fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_exact_scale() {
        let t = SrType::Decimal(5, 2);
        assert_eq!(t.from_text(b"1.5").unwrap(), b"1.50");
        assert_eq!(t.from_text(b"-0.00").unwrap(), b"0.00");
        assert_eq!(t.from_text(b"001.10").unwrap(), b"1.10");
        assert!(t.from_text(b"1234.5").is_err());
        assert!(t.from_text(b"1.234").is_err());
    }

    #[test]
    fn varbinary_csv_fields_are_base64_or_raw() {
        assert_eq!(varbinary_from_csv(b"AP+h"), vec![0x00, 0xff, 0xa1]);
        assert_eq!(varbinary_from_csv(b"AP8="), vec![0x00, 0xff]);
        assert_eq!(varbinary_from_csv(b"AP8"), vec![0x00, 0xff]);
        assert_eq!(varbinary_from_csv(b" Zm9v\nYg=="), b"foob");
        assert_eq!(varbinary_from_csv(b"00ff"), vec![0xd3, 0x47, 0xdf]);
        assert_eq!(varbinary_from_csv(b"not base64!"), b"not base64!");
        assert_eq!(varbinary_from_csv(b"  "), b"");
        assert!(SrType::Varbinary(2).from_csv(b"AAAA").is_err());
    }

    #[test]
    fn datetimes_print_micros_only_when_set() {
        let t = SrType::DateTime;
        assert_eq!(
            t.from_text(b"2024-02-29 01:02:03").unwrap(),
            b"2024-02-29 01:02:03"
        );
        assert_eq!(
            t.from_text(b"2024-02-29 01:02:03.000").unwrap(),
            b"2024-02-29 01:02:03"
        );
        assert_eq!(
            t.from_text(b"2024-02-29 01:02:03.5").unwrap(),
            b"2024-02-29 01:02:03.500000"
        );
        assert!(t.from_text(b"2023-02-29 01:02:03").is_err());
        assert!(t.from_text(b"2023-01-01T01:02:03").is_err());
    }
}
