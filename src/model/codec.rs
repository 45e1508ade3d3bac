//! Text codecs: decimals, dates and timestamps as the text forms that SQLite stores, MySQL sends
//! and the fingerprint reads. Parsing is strict (a value that does not fit its type is refused,
//! never rounded) and formatting round-trips through parsing.

use super::calendar::days_from_civil;

/// Parses plain decimal notation into the unscaled integer at `scale`, refusing values that need
/// more fraction digits than the scale or more integer digits than `precision - scale`.
pub fn parse_decimal(s: &str, precision: u8, scale: i8) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let scale = scale as usize;
    if frac.len() > scale {
        return None;
    }
    let int = int.trim_start_matches('0');
    if int.len() > precision as usize - scale {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v * 10 + i128::from(b - b'0');
    }
    v *= 10i128.pow((scale - frac.len()) as u32);
    Some(if neg { -v } else { v })
}

fn num(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |a, &b| a * 10 + i64::from(b - b'0')))
}

pub fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    chrono::NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32)?;
    i32::try_from(days_from_civil(y, m, d)).ok()
}

pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || (b[10] != b' ' && b[10] != b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = i64::from(parse_date(&s[..10])?);
    let (h, mi, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let micros = match &b[19..] {
        [] => 0,
        [b'.', f @ ..] if (1..=6).contains(&f.len()) => num(f)? * 10i64.pow(6 - f.len() as u32),
        _ => return None,
    };
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + sec * 1_000_000 + micros)
}

/// Plain decimal notation of an unscaled value at `scale`: `decimal_text(-5, 4)` is `-0.0005`.
pub fn decimal_text(v: i128, scale: i8) -> String {
    let s = scale.max(0) as usize;
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    if s == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = s + 1);
    let (int, frac) = padded.split_at(padded.len() - s);
    format!("{sign}{int}.{frac}")
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn date_text(days: i32) -> String {
    chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since 1970-01-01 (no zone).
pub fn timestamp_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly_or_not_at_all() {
        assert_eq!(parse_decimal("-1234.56", 18, 4), Some(-12_345_600));
        assert_eq!(parse_decimal("7", 5, 2), Some(700));
        assert_eq!(parse_decimal("0.05", 5, 2), Some(5));
        assert_eq!(
            parse_decimal("922337203685477.5807", 19, 4),
            Some(9_223_372_036_854_775_807)
        );
        assert_eq!(
            parse_decimal("1.005", 5, 2),
            None,
            "too many fraction digits"
        );
        assert_eq!(parse_decimal("1000", 5, 2), None, "too many integer digits");
        assert_eq!(parse_decimal("1e5", 9, 2), None);
        assert_eq!(parse_decimal("", 9, 2), None);
        let big = "1234567890123456789012345678.0123456789";
        assert_eq!(
            parse_decimal(big, 38, 10),
            Some(12345678901234567890123456780123456789)
        );
    }

    #[test]
    fn dates_and_timestamps_map_to_epoch_units() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("0001-01-01"), Some(-719162));
        assert_eq!(parse_date("9999-12-31"), Some(2932896));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(
            parse_timestamp("2000-01-01T00:00:00"),
            Some(946_684_800_000_000)
        );
        assert_eq!(parse_timestamp("1969-12-31 23:59:59.999999"), Some(-1));
        assert_eq!(parse_timestamp("2000-01-01 24:00:00"), None);
    }

    #[test]
    fn stored_text_forms_read_back_to_the_same_values() {
        assert_eq!(decimal_text(-12_345_600, 4), "-1234.5600");
        assert_eq!(decimal_text(5, 2), "0.05");
        assert_eq!(decimal_text(700, 0), "700");
        for (v, s) in [(-5i128, 2i8), (123456789012345678901234567890, 10), (0, 3)] {
            assert_eq!(
                crate::model::codec::parse_decimal(&decimal_text(v, s), 38, s),
                Some(v)
            );
        }
        for d in [-719_162, -1, 0, 19_000, 2_932_896] {
            assert_eq!(crate::model::codec::parse_date(&date_text(d)), Some(d));
        }
        for t in [-1i64, 0, 1_500_000, 946_684_800_123_456] {
            assert_eq!(
                crate::model::codec::parse_timestamp(&timestamp_text(t)),
                Some(t)
            );
        }
    }
}
