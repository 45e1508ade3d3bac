//! The CSV dialect of StarRocks Stream Load, split into records and fields exactly as a BE does.
//!
//! Exists so the double reads a Stream Load body byte for byte like StarRocks, and so a test
//! can compare that reading with an independent parser (Python's csv module, see
//! tests/it/starrocks_double.rs). The rules below were read from StarRocks' BE sources
//! (`exec/csv_scanner.cpp`, `formats/csv/csv_reader.cpp`, `formats/csv/nullable_converter.cpp`)
//! and are implemented here independently:
//!
//! - Separators are byte strings of 1..=50 bytes, written literally or in hex as `\x01` (the
//!   `\x` prefix then an even number of hex digits, e.g. `\x0d0a`).
//! - A body that does not end with the row delimiter gets one (the reader appends it at EOF).
//! - Without `enclose` and `escape` ("v1"): the body is cut at each row delimiter, then each
//!   record at each column separator; no quoting, no escaping; empty records are skipped.
//! - With either of them ("v2", a state machine; an unset one of the two is the byte 0):
//!   * a field whose first byte is the enclose byte is enclosed: separators and delimiters in it
//!     are data; a doubled enclose byte in it is one enclose byte; the next single enclose byte
//!     leaves the enclosure, and at the end of the field its last byte (normally that closing
//!     enclose byte) is cut off, whatever it is;
//!   * `""` directly followed by a separator or delimiter is an empty field; `""x` is the
//!     unenclosed field `"x...`;
//!   * the escape byte is removed and makes the next byte data if that byte is the enclose
//!     byte, the escape byte, or (all of) a separator or delimiter; before any other byte the
//!     escape byte is still removed, the byte kept, and an enclosure is left;
//!   * an enclose byte inside an unenclosed field is removed and the byte after it is data,
//!     whatever it is (even a delimiter);
//!   * a row with nothing in it is skipped.
//! - After that, a field equal to `\N` is NULL, enclosed or not: with `escape` `\` a NULL is
//!   therefore written `\\N`, a bare `\N` reads as the string `N`, and the string `\N` cannot be
//!   loaded at all (it reads as NULL). An empty field is an empty string.

/// The dialect of one load.
#[derive(Clone, Debug)]
pub struct CsvFormat {
    pub column_separator: Vec<u8>,
    pub row_delimiter: Vec<u8>,
    pub enclose: Option<u8>,
    pub escape: Option<u8>,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat {
            column_separator: b"\t".to_vec(),
            row_delimiter: b"\n".to_vec(),
            enclose: None,
            escape: None,
        }
    }
}

/// One field: `None` is NULL.
pub type Field = Option<Vec<u8>>;

/// One record with its raw bytes (for the error log).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub fields: Vec<Field>,
    pub raw: Vec<u8>,
    /// Cut short by the end of the body inside an enclosure or after an escape: StarRocks
    /// drops such a record silently when its field count is wrong.
    pub at_eof: bool,
}

/// Parses a `column_separator` / `row_delimiter` header value.
pub fn parse_separator(value: &str, default: &[u8], what: &str) -> Result<Vec<u8>, String> {
    if value.is_empty() {
        return Ok(default.to_vec());
    }
    let bytes = if value.len() > 2 && (value.starts_with("\\x") || value.starts_with("\\X")) {
        super::types::decode_hex(&value.as_bytes()[2..])
            .ok_or_else(|| format!("invalid hex {what}: {value}"))?
    } else {
        value.as_bytes().to_vec()
    };
    if bytes.is_empty() || bytes.len() > 50 {
        return Err(format!(
            "{what} must be 1 to 50 bytes, got {} bytes",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Parses an `enclose` / `escape` header value: one byte.
pub fn parse_single_byte(value: &str, what: &str) -> Result<Option<u8>, String> {
    match value.as_bytes() {
        [] => Ok(None),
        [b] => Ok(Some(*b)),
        _ => Err(format!(
            "{what} must be a single-byte character, got '{value}'"
        )),
    }
}

/// A separator as StarRocks prints it in messages (`'\n'`, `','`, `'0x1'`).
pub fn describe_separator(sep: &[u8]) -> String {
    let mut s = String::from("'");
    for &c in sep {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("0x{c:x}")),
        }
    }
    s.push('\'');
    s
}

fn field(bytes: Vec<u8>) -> Field {
    if bytes == b"\\N" { None } else { Some(bytes) }
}

/// Splits a body into records.
pub fn split(body: &[u8], fmt: &CsvFormat) -> Vec<Record> {
    let delim = &fmt.row_delimiter[..];
    let mut data = body.to_vec();
    if !data.is_empty() && !data.ends_with(delim) {
        data.extend_from_slice(delim);
    }
    if fmt.enclose.is_none() && fmt.escape.is_none() {
        split_v1(&data, fmt)
    } else {
        split_v2(&data, fmt)
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

fn split_v1(data: &[u8], fmt: &CsvFormat) -> Vec<Record> {
    let (sep, delim) = (&fmt.column_separator[..], &fmt.row_delimiter[..]);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let end = find(data, delim, pos).unwrap_or(data.len());
        let rec = &data[pos..end];
        pos = end + delim.len();
        if rec.is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut start = 0;
        while let Some(at) = find(rec, sep, start) {
            fields.push(field(rec[start..at].to_vec()));
            start = at + sep.len();
        }
        fields.push(field(rec[start..].to_vec()));
        out.push(Record {
            fields,
            raw: rec.to_vec(),
            at_eof: false,
        });
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum St {
    Start,
    Ordinary,
    Enclose,
    Escape,
    EncloseEscape,
}

fn split_v2(data: &[u8], fmt: &CsvFormat) -> Vec<Record> {
    let (sep, delim) = (&fmt.column_separator[..], &fmt.row_delimiter[..]);
    let enc = fmt.enclose.unwrap_or(0);
    let esc = fmt.escape.unwrap_or(0);
    let at = |i: usize, pat: &[u8]| data[i..].starts_with(pat);

    let mut out = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    let mut removed: Vec<usize> = Vec::new();
    let mut st = St::Start;
    let mut pre = St::Start;
    let mut enclosed = false;
    let mut col_start = 0;
    let mut row_start = 0;
    let mut i = 0;

    // The bytes of the column [col_start, end) without removed bytes, less its last byte if
    // it was enclosed.
    let column = |col_start: usize, end: usize, removed: &[usize], enclosed: bool| {
        // `removed` is ascending: positions are recorded in scan order.
        let mut v = Vec::with_capacity(end.saturating_sub(col_start));
        let mut skip = removed.iter().peekable();
        let span = data.get(col_start..end).unwrap_or_default();
        for (p, &byte) in (col_start..).zip(span) {
            while skip.next_if(|&&r| r < p).is_some() {}
            if skip.next_if(|&&r| r == p).is_none() {
                v.push(byte);
            }
        }
        if enclosed {
            v.pop();
        }
        field(v)
    };

    while i < data.len() {
        match st {
            St::Start => {
                col_start = i;
                if at(i, delim) {
                    i += delim.len();
                    // A row with nothing in it is skipped.
                    if !fields.is_empty() || i - delim.len() != col_start {
                        fields.push(column(col_start, i - delim.len(), &removed, enclosed));
                        out.push(Record {
                            fields: std::mem::take(&mut fields),
                            raw: data[row_start..i - delim.len()].to_vec(),
                            at_eof: false,
                        });
                    }
                    removed.clear();
                    enclosed = false;
                    row_start = i;
                    continue;
                }
                if at(i, sep) {
                    i += sep.len();
                    fields.push(column(col_start, i - sep.len(), &removed, enclosed));
                    removed.clear();
                    enclosed = false;
                    continue;
                }
                if data[i] == esc {
                    pre = St::Ordinary;
                    st = St::Escape;
                    removed.push(i);
                    i += 1;
                    continue;
                }
                if data[i] == enc {
                    i += 1;
                    col_start = i;
                    if i >= data.len() {
                        break;
                    }
                    if data[i] != enc {
                        st = St::Enclose;
                        enclosed = true;
                        continue;
                    }
                    i += 1;
                    if i < data.len() && (at(i, delim) || at(i, sep)) {
                        enclosed = true;
                    }
                    st = St::Ordinary;
                    continue;
                }
                i += 1;
                st = St::Ordinary;
            }
            St::Enclose => {
                if data[i] == enc {
                    i += 1;
                    pre = St::Enclose;
                    if i < data.len() && data[i] == enc {
                        removed.push(i - 1);
                        st = St::EncloseEscape;
                    } else {
                        st = St::Ordinary;
                    }
                } else if data[i] == esc {
                    pre = St::Enclose;
                    st = St::Escape;
                    removed.push(i);
                    i += 1;
                } else {
                    i += 1;
                }
            }
            St::EncloseEscape => {
                st = pre;
                i += 1;
            }
            St::Escape => {
                if data[i] == enc || data[i] == esc {
                    st = pre;
                    i += 1;
                } else if at(i, delim) {
                    st = pre;
                    i += delim.len();
                } else if at(i, sep) {
                    st = pre;
                    i += sep.len();
                } else {
                    // Any other byte: kept, and the field goes on unenclosed.
                    st = St::Ordinary;
                    i += 1;
                }
            }
            St::Ordinary => {
                if at(i, delim) {
                    i += delim.len();
                    fields.push(column(col_start, i - delim.len(), &removed, enclosed));
                    out.push(Record {
                        fields: std::mem::take(&mut fields),
                        raw: data[row_start..i - delim.len()].to_vec(),
                        at_eof: false,
                    });
                    removed.clear();
                    enclosed = false;
                    row_start = i;
                    st = St::Start;
                } else if at(i, sep) {
                    i += sep.len();
                    fields.push(column(col_start, i - sep.len(), &removed, enclosed));
                    removed.clear();
                    enclosed = false;
                    st = St::Start;
                } else if data[i] == esc {
                    pre = St::Ordinary;
                    st = St::Escape;
                    removed.push(i);
                    i += 1;
                } else if data[i] == enc {
                    pre = St::Ordinary;
                    st = St::EncloseEscape;
                    removed.push(i);
                    i += 1;
                } else {
                    i += 1;
                }
            }
        }
    }
    if st != St::Start || !fields.is_empty() {
        // The body ended inside an enclosure or after an escape, which swallowed the final
        // delimiter: the reader still cuts the delimiter's length off the last column.
        let end = data.len().saturating_sub(delim.len());
        fields.push(column(col_start, end, &removed, enclosed));
        out.push(Record {
            fields,
            raw: data[row_start..end.max(row_start)].to_vec(),
            at_eof: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Field {
        Some(v.as_bytes().to_vec())
    }

    fn v2() -> CsvFormat {
        CsvFormat {
            column_separator: b",".to_vec(),
            row_delimiter: b"\n".to_vec(),
            enclose: Some(b'"'),
            escape: Some(b'\\'),
        }
    }

    #[test]
    fn enclose_escape_null_and_empty() {
        let body = b"1,\"a,b\nc\",\\\\N,\"\",,\"x\"\"y\",p\\,q\n\n2,\"\\\"\",\\N,\"\\\\N\"";
        let r = split(body, &v2());
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].fields,
            vec![s("1"), s("a,b\nc"), None, s(""), s(""), s("x\"y"), s("p,q")]
        );
        // A bare \N is the escaped letter N; an enclosed \\N is NULL too.
        assert_eq!(r[1].fields, vec![s("2"), s("\""), s("N"), None]);
        assert_eq!(r[1].raw, b"2,\"\\\"\",\\N,\"\\\\N\"");
    }

    #[test]
    fn starrocks_quirks_are_kept() {
        let r = split(b"\"ab\"cd,\"\"x,a\"bc,\"a\\xb,c\"\n", &v2());
        // Bytes after the closing quote: the last byte of the field is cut off.
        assert_eq!(r[0].fields[0], s("ab\"c"));
        // `""x` is not enclosed and keeps the second quote.
        assert_eq!(r[0].fields[1], s("\"x"));
        // A quote inside an unenclosed field escapes the next byte.
        assert_eq!(r[0].fields[2], s("abc"));
        // Escaping an ordinary byte leaves the enclosure: the separator ends the field, whose
        // last byte is cut off.
        assert_eq!(r[0].fields[3], s("ax"));
        // Without enclose/escape nothing is special but \N.
        let plain = CsvFormat {
            column_separator: b",".to_vec(),
            ..CsvFormat::default()
        };
        let r = split(b"\"a,b\",\\N\n\nc,\\\\N", &plain);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].fields, vec![s("\"a"), s("b\""), None]);
        assert_eq!(r[1].fields, vec![s("c"), s("\\\\N")]);
    }

    #[test]
    fn multi_byte_and_hex_separators() {
        assert!(parse_separator("\\x01\\x02", b"\t", "c").is_err());
        let fmt = CsvFormat {
            column_separator: parse_separator("\\x0102", b"\t", "c").unwrap(),
            row_delimiter: parse_separator("||", b"\n", "r").unwrap(),
            enclose: None,
            escape: None,
        };
        assert_eq!(fmt.column_separator, b"\x01\x02");
        let r = split(b"a\x01\x02b||c\x01\x02\\N||", &fmt);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].fields, vec![s("a"), s("b")]);
        assert_eq!(r[1].fields, vec![s("c"), None]);
        assert_eq!(r[1].raw, b"c\x01\x02\\N");
        let fmt = CsvFormat {
            enclose: Some(b'\''),
            ..fmt
        };
        let r = split(b"'x||y'\x01\x02z", &fmt);
        assert_eq!(r[0].fields, vec![s("x||y"), s("z")]);
        assert_eq!(describe_separator(b"\x01,\n"), "'0x1,\\n'");
    }

    #[test]
    fn unterminated_enclosure_is_marked() {
        let r = split(b"1,\"abc\n", &v2());
        assert_eq!(r.len(), 1);
        assert!(r[0].at_eof);
    }
}
