//! `CURRENCY_RATES`: weekly exchange rates, a table without a primary key that also holds a
//! few exact duplicate rows.

use rusqlite::types::Value;
use rusqlite::{Transaction, params_from_iter};

use super::data::{CURRENCIES, RATE_SOURCES};
use super::values::{Gen, date, text};
use super::{ColumnDecl, SEED_RATES};
use crate::model::calendar::days_from_civil;

/// Weekly fixings; the last week's batch is loaded twice (exact duplicate rows).
pub(super) const RATE_WEEKS: i64 = 99;

/// No primary key: a keyless table.
pub(super) const RATE_COLUMNS: &[ColumnDecl] = &[
    ("CURRENCY", "VARCHAR(3) NOT NULL"),
    ("RATE_DATE", "DATE NOT NULL"),
    ("RATE", "TEXT DECIMAL(18,8)"),
    ("SOURCE", "TEXT"),
];

pub(super) fn fill_currency_rates(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut g = Gen::new(SEED_RATES);
    let mut stmt = tx.prepare("INSERT INTO CURRENCY_RATES VALUES (?1, ?2, ?3, ?4)")?;
    let mut rates: Vec<f64> = CURRENCIES.iter().map(|(_, rate)| *rate).collect();
    let first_day = days_from_civil(2023, 1, 2);
    let mut last_batch = Vec::new();
    for week in 0..RATE_WEEKS {
        last_batch.clear();
        for ((currency, _), rate) in CURRENCIES.iter().zip(&mut rates) {
            if *currency != "USD" {
                *rate *= 1.0 + (g.0.f64() - 0.5) * 0.04;
            }
            // Rounded via i64: `as` saturates and rounds toward zero, identically everywhere.
            let unscaled = (*rate * 1e8 + 0.5) as i64;
            let value = if g.chance(0.01) {
                Value::Null
            } else {
                g.decimal(unscaled.into(), 8)
            };
            let source = match g.int(0..=49) {
                0 => Value::Null,
                1 => text(""),
                _ => text(g.pick(RATE_SOURCES)),
            };
            last_batch.push([text(*currency), date(first_day + 7 * week), value, source]);
        }
        for row in &last_batch {
            stmt.execute(params_from_iter(row))?;
        }
    }
    for row in &last_batch {
        stmt.execute(params_from_iter(row))?;
    }
    Ok(())
}
