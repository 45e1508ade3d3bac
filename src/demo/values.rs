//! Values of the demo: the fixed calendar of the sample, the text forms in which embedded
//! SQLite sources store dates, timestamps and decimals, and the fixed-seed PRNG that every
//! table draws from.

use std::fmt::Write as _;

use rusqlite::types::Value;

use crate::model::calendar::{civil_from_days, days_from_civil};

// ---------------------------------------------------------------------------------------------
// Calendar and value formatting
// ---------------------------------------------------------------------------------------------

pub(super) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The smallest and largest dates of the supported range, and the fixed "today" of the sample.
pub(super) const MIN_DAY: i64 = days_from_civil(1, 1, 1);
pub(super) const MAX_DAY: i64 = days_from_civil(9999, 12, 31);
pub(super) const TODAY: i64 = days_from_civil(2025, 6, 30);
pub(super) const MIN_MICROS: i64 = MIN_DAY * MICROS_PER_DAY;
pub(super) const MAX_MICROS: i64 = (MAX_DAY + 1) * MICROS_PER_DAY - 1;
pub(super) const TODAY_MICROS: i64 = TODAY * MICROS_PER_DAY;

/// Appends `YYYY-MM-DD`.
pub(super) fn push_date(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// Appends `YYYY-MM-DD HH:MM:SS`, followed by `.ffffff` if `fraction`.
pub(super) fn push_timestamp(out: &mut String, micros: i64, fraction: bool) {
    push_date(out, micros.div_euclid(MICROS_PER_DAY));
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let secs = in_day / 1_000_000;
    let _ = write!(
        out,
        " {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if fraction {
        let _ = write!(out, ".{:06}", in_day % 1_000_000);
    }
}

/// Appends the decimal `unscaled / 10^scale` in plain notation with `scale` fraction digits, or
/// with trailing fraction zeros (and a bare point) dropped if `trim`.
pub(super) fn push_decimal(out: &mut String, unscaled: i128, scale: u32, trim: bool) {
    if unscaled < 0 {
        out.push('-');
    }
    let magnitude = unscaled.unsigned_abs();
    let pow = 10u128.pow(scale);
    let _ = write!(out, "{}", magnitude / pow);
    let mut fraction = magnitude % pow;
    let mut digits = scale as usize;
    if trim {
        while digits > 0 && fraction.is_multiple_of(10) {
            fraction /= 10;
            digits -= 1;
        }
    }
    if digits > 0 {
        let _ = write!(out, ".{fraction:0digits$}");
    }
}

pub(super) fn date(days: i64) -> Value {
    let mut s = String::with_capacity(10);
    push_date(&mut s, days);
    Value::Text(s)
}

pub(super) fn timestamp(micros: i64, fraction: bool) -> Value {
    let mut s = String::with_capacity(26);
    push_timestamp(&mut s, micros, fraction);
    Value::Text(s)
}

pub(super) fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

pub(super) fn boolean(b: bool) -> Value {
    Value::Integer(i64::from(b))
}

/// Lower-case ASCII approximation of a name, for e-mail addresses.
pub(super) fn ascii_slug(s: &str) -> String {
    const FOLDS: &[(&str, &str)] = &[
        ("àáâãäåāăąǎạảấầẩẫậắằẳẵặ", "a"),
        ("çćč", "c"),
        ("ďđ", "d"),
        ("èéêëēėęěẹẻẽếềểễệ", "e"),
        ("ğ", "g"),
        ("ìíîïīįǐịỉı", "i"),
        ("ł", "l"),
        ("ñńň", "n"),
        ("òóôõöøōőǒọỏốồổỗộớờởỡợơ", "o"),
        ("řŕ", "r"),
        ("śšşș", "s"),
        ("ťţț", "t"),
        ("ùúûüūůűǔǖǘǚǜụủứừửữựư", "u"),
        ("ýÿỳỷỹỵ", "y"),
        ("źżž", "z"),
        ("ß", "ss"),
        ("æ", "ae"),
    ];
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if let Some((_, ascii)) = FOLDS.iter().find(|(from, _)| from.contains(c)) {
            out.push_str(ascii);
        }
    }
    if out.is_empty() {
        out.push_str("agent");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Deterministic random values
// ---------------------------------------------------------------------------------------------

/// Fixed-seed PRNG with the helpers the tables need. Only platform-independent draws are used
/// (no `usize` ranges), so every machine produces the same sequence.
pub(super) struct Gen(pub(super) fastrand::Rng);

impl Gen {
    pub(super) fn new(seed: u64) -> Self {
        Gen(fastrand::Rng::with_seed(seed))
    }

    pub(super) fn chance(&mut self, probability: f64) -> bool {
        self.0.f64() < probability
    }

    pub(super) fn int(&mut self, range: std::ops::RangeInclusive<i64>) -> i64 {
        self.0.i64(range)
    }

    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let len = u32::try_from(items.len()).expect("short list");
        items[self.0.u32(..len) as usize]
    }

    /// A non-negative integer with a uniformly chosen number of digits in `digits`, so that
    /// small and large magnitudes are equally common.
    pub(super) fn magnitude(&mut self, digits: std::ops::RangeInclusive<u32>) -> i128 {
        let d = self.0.u32(digits);
        let low = if d <= 1 { 0 } else { 10u128.pow(d - 1) };
        let value = self.0.u128(low..=10u128.pow(d) - 1);
        i128::try_from(value).expect("at most 38 digits")
    }

    /// `magnitude(digits)`, negated with probability `negative`.
    pub(super) fn signed(&mut self, digits: std::ops::RangeInclusive<u32>, negative: f64) -> i128 {
        let m = self.magnitude(digits);
        if self.chance(negative) { -m } else { m }
    }

    /// A DECIMAL/NUMERIC/MONEY value as TEXT; trailing fraction zeros are sometimes trimmed
    /// ('7', '0.05'), as sources written by other tools do.
    pub(super) fn decimal(&mut self, unscaled: i128, scale: u32) -> Value {
        let trim = self.chance(0.15);
        let mut s = String::with_capacity(24);
        push_decimal(&mut s, unscaled, scale, trim);
        Value::Text(s)
    }

    /// A timestamp uniformly in `from..=to` (or `from` if the range is empty).
    pub(super) fn micros_between(&mut self, from: i64, to: i64) -> i64 {
        if to <= from {
            from
        } else {
            self.int(from..=to)
        }
    }

    pub(super) fn blob(&mut self, len: std::ops::RangeInclusive<u32>) -> Vec<u8> {
        let mut bytes = vec![0; self.0.u32(len) as usize];
        self.0.fill(&mut bytes);
        bytes
    }
}

/// Largest unscaled value of DECIMAL(`precision`, _).
pub(super) const fn max_unscaled(precision: u32) -> i128 {
    10i128.pow(precision) - 1
}
