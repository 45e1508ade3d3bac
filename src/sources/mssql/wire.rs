//! Decoding tiberius' cells: into Arrow builders, counting lossy conversions, and into the key
//! text that chunk bounds are written in.

use tiberius::ColumnData;

use crate::model::builders::ColBuilder as Col;
use crate::model::calendar::civil_from_days;
use crate::model::codec::decimal_text;

pub(super) fn text(c: ColumnData<'static>) -> Option<String> {
    match c {
        ColumnData::String(s) => s.map(|s| s.into_owned()),
        _ => None,
    }
}

pub(super) fn int(c: ColumnData<'static>) -> Option<i64> {
    match c {
        ColumnData::U8(v) => v.map(i64::from),
        ColumnData::I16(v) => v.map(i64::from),
        ColumnData::I32(v) => v.map(i64::from),
        ColumnData::I64(v) => v,
        _ => None,
    }
}

pub(super) fn boolean(c: ColumnData<'static>) -> Option<bool> {
    match c {
        ColumnData::Bit(v) => v,
        other => int(other).map(|i| i != 0),
    }
}

/// Days from 0001-01-01 to 1970-01-01.
pub(super) const EPOCH_DAYS_FROM_0001: i64 = 719_162;
/// Days from 1900-01-01 to 1970-01-01.
pub(super) const EPOCH_DAYS_FROM_1900: i64 = 25_567;

/// A key value as text that `CAST(@P AS <its type>)` turns back into the same value.
pub(super) fn key_text(c: &ColumnData<'_>) -> Option<String> {
    Some(match c {
        ColumnData::U8(Some(v)) => v.to_string(),
        ColumnData::I16(Some(v)) => v.to_string(),
        ColumnData::I32(Some(v)) => v.to_string(),
        ColumnData::I64(Some(v)) => v.to_string(),
        ColumnData::Bit(Some(v)) => u8::from(*v).to_string(),
        ColumnData::String(Some(s)) => s.to_string(),
        ColumnData::Guid(Some(g)) => g.to_string().to_uppercase(),
        ColumnData::Numeric(Some(n)) => decimal_text(n.value(), n.scale() as i8),
        ColumnData::Date(Some(d)) => date_text(d.days() as i64 - EPOCH_DAYS_FROM_0001),
        ColumnData::DateTime2(Some(dt)) => {
            let t = dt.time();
            format!(
                "{}T{}",
                date_text(dt.date().days() as i64 - EPOCH_DAYS_FROM_0001),
                time_text(t.increments(), t.scale())
            )
        }
        ColumnData::DateTime(Some(dt)) => {
            let us = datetime_micros(dt.days(), dt.seconds_fragments());
            let day = us.div_euclid(86_400_000_000);
            let rem = us.rem_euclid(86_400_000_000) as u64;
            format!("{}T{}", date_text(day), time_text(rem / 1000, 3))
        }
        _ => return None,
    })
}

pub(super) fn date_text(days_since_epoch: i64) -> String {
    let (y, m, d) = civil_from_days(days_since_epoch);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:MM:SS[.fff…]` from units of 10^-scale seconds, keeping every digit.
pub(super) fn time_text(increments: u64, scale: u8) -> String {
    let unit = 10u64.pow(scale as u32);
    let secs = increments / unit;
    let frac = increments % unit;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if scale == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!(
            "{h:02}:{m:02}:{s:02}.{frac:0width$}",
            width = scale as usize
        )
    }
}

/// `datetime` ticks (1/300 s) as SQL Server renders them: rounded to the millisecond.
pub(super) fn datetime_micros(days: i32, ticks: u32) -> i64 {
    let ms = (i64::from(ticks) * 10 + 1) / 3;
    (i64::from(days) - EPOCH_DAYS_FROM_1900) * 86_400_000_000 + ms * 1000
}

/// Microseconds since the epoch of a datetime2, and whether digits below 1 µs were dropped.
pub(super) fn datetime2_micros(days_0001: u32, increments: u64, scale: u8) -> (i64, bool) {
    let ns100 = increments * 10u64.pow(7 - u32::from(scale.min(7)));
    let lossy = !ns100.is_multiple_of(10);
    let day = i64::from(days_0001) - EPOCH_DAYS_FROM_0001;
    (day * 86_400_000_000 + (ns100 / 10) as i64, lossy)
}

/// Appends one cell; returns the bytes it adds to the batch. Only the pairs the mapping table
/// produces are accepted, so a server sending something else fails loudly, not silently.
pub(super) fn append(
    col: &mut Col,
    cell: ColumnData<'static>,
    lossy: &mut u64,
) -> std::result::Result<usize, String> {
    use ColumnData as D;
    let unexpected = |cell: &ColumnData<'_>| format!("unexpected value {cell:?}");
    Ok(match (col, cell) {
        (Col::Bool(b), D::Bit(v)) => {
            b.append_option(v);
            1
        }
        (Col::I32(b), D::U8(v)) => {
            b.append_option(v.map(i32::from));
            4
        }
        (Col::I32(b), D::I16(v)) => {
            b.append_option(v.map(i32::from));
            4
        }
        (Col::I32(b), D::I32(v)) => {
            b.append_option(v);
            4
        }
        (Col::I64(b), D::I64(v)) => {
            b.append_option(v);
            8
        }
        (Col::I64(b), D::I32(v)) => {
            b.append_option(v.map(i64::from));
            8
        }
        // rowversion: 8 bytes, big-endian.
        (Col::I64(b), D::Binary(v)) => {
            match v {
                None => b.append_null(),
                Some(bytes) => {
                    let arr: [u8; 8] = bytes
                        .as_ref()
                        .try_into()
                        .map_err(|_| format!("rowversion of {} bytes", bytes.len()))?;
                    b.append_value(i64::from_be_bytes(arr));
                }
            }
            8
        }
        (Col::F32(b), D::F32(v)) => {
            b.append_option(v);
            4
        }
        (Col::F64(b), D::F64(v)) => {
            b.append_option(v);
            8
        }
        (Col::F64(b), D::F32(v)) => {
            b.append_option(v.map(f64::from));
            8
        }
        (Col::Dec(b, p, s), D::Numeric(v)) => {
            match v {
                None => b.append_null(),
                Some(n) => {
                    let want = *s as u8;
                    let mut value = n.value();
                    if n.scale() > want {
                        return Err(format!(
                            "decimal with scale {} for a column of scale {want}",
                            n.scale()
                        ));
                    }
                    value *= 10i128.pow(u32::from(want - n.scale()));
                    if value.unsigned_abs() >= 10u128.pow(u32::from(*p)) {
                        return Err(format!(
                            "value {} does not fit decimal({p},{s})",
                            decimal_text(n.value(), n.scale() as i8)
                        ));
                    }
                    b.append_value(value);
                }
            }
            16
        }
        (Col::Date(b), D::Date(v)) => {
            b.append_option(v.map(|d| (i64::from(d.days()) - EPOCH_DAYS_FROM_0001) as i32));
            4
        }
        (Col::Ts(b), D::DateTime2(v)) => {
            match v {
                None => b.append_null(),
                Some(dt) => {
                    let t = dt.time();
                    let (us, lost) = datetime2_micros(dt.date().days(), t.increments(), t.scale());
                    *lossy += u64::from(lost);
                    b.append_value(us);
                }
            }
            8
        }
        (Col::Ts(b), D::DateTime(v)) => {
            b.append_option(v.map(|d| datetime_micros(d.days(), d.seconds_fragments())));
            8
        }
        (Col::Ts(b), D::SmallDateTime(v)) => {
            b.append_option(v.map(|d| {
                (i64::from(d.days()) - EPOCH_DAYS_FROM_1900) * 86_400_000_000
                    + i64::from(d.seconds_fragments()) * 60_000_000
            }));
            8
        }
        // The wire carries the UTC instant; the offset is only how it was written.
        (Col::Ts(b), D::DateTimeOffset(v)) => {
            match v {
                None => b.append_null(),
                Some(dto) => {
                    let dt = dto.datetime2();
                    let t = dt.time();
                    let (us, lost) = datetime2_micros(dt.date().days(), t.increments(), t.scale());
                    *lossy += u64::from(lost);
                    b.append_value(us);
                }
            }
            8
        }
        (Col::Str(b), D::String(v)) => match v {
            None => {
                b.append_null();
                0
            }
            Some(s) => {
                b.append_value(&s);
                s.len()
            }
        },
        (Col::Str(b), D::Guid(v)) => {
            match v {
                None => b.append_null(),
                Some(g) => b.append_value(
                    g.hyphenated()
                        .encode_upper(&mut tiberius::Uuid::encode_buffer()),
                ),
            }
            36
        }
        (Col::Str(b), D::Time(v)) => {
            match v {
                None => b.append_null(),
                Some(t) => b.append_value(time_text(t.increments(), t.scale())),
            }
            16
        }
        (Col::Str(b), D::Xml(v)) => match v {
            None => {
                b.append_null();
                0
            }
            Some(x) => {
                let s = x.to_string();
                b.append_value(&s);
                s.len()
            }
        },
        (Col::Bin(b), D::Binary(v)) => match v {
            None => {
                b.append_null();
                0
            }
            Some(x) => {
                b.append_value(&x);
                x.len()
            }
        },
        (_, cell) => return Err(unexpected(&cell)),
    })
}
