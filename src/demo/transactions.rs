//! `TRANSACTIONS`: the big table, as many rows as the caller asks for, booked in id order.

use rusqlite::{Transaction, params};

use super::data::{TXN_CURRENCIES, TXN_NOTES, TXN_STATUSES};
use super::values::{Gen, MICROS_PER_DAY, TODAY_MICROS, push_date, push_decimal, push_timestamp};
use super::{AGENT_ROWS, ColumnDecl, SEED_TRANSACTIONS};
use crate::model::calendar::days_from_civil;

pub(super) const TXN_COLUMNS: &[ColumnDecl] = &[
    ("TXN_ID", "INTEGER PRIMARY KEY"),
    ("AGENT_ID", "INTEGER NOT NULL"),
    ("AMOUNT", "TEXT DECIMAL(18,2) NOT NULL"),
    ("CURRENCY", "VARCHAR(3) NOT NULL"),
    ("BOOKED_AT", "DATETIME NOT NULL"),
    ("VALUE_DATE", "DATE"),
    ("STATUS", "VARCHAR(12) NOT NULL"),
    ("NOTE", "TEXT"),
];

pub(super) fn fill_transactions(tx: &Transaction<'_>, rows: i64) -> rusqlite::Result<()> {
    let mut g = Gen::new(SEED_TRANSACTIONS);
    let mut stmt =
        tx.prepare("INSERT INTO TRANSACTIONS VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
    // Booking times increase with the id, spread evenly from 2015 to "today".
    let start = days_from_civil(2015, 1, 1) * MICROS_PER_DAY;
    let step = ((TODAY_MICROS - start) / rows.max(1)).max(1);
    let (mut amount, mut booked, mut value_date) = (String::new(), String::new(), String::new());
    for id in 1..=rows {
        let at = start.saturating_add((id - 1).saturating_mul(step)) + g.int(0..=step - 1);
        booked.clear();
        push_timestamp(&mut booked, at, true);
        let has_value_date = !g.chance(0.02);
        if has_value_date {
            value_date.clear();
            push_date(&mut value_date, at / MICROS_PER_DAY + g.int(0..=3) / 2);
        }
        let digits = g.0.u32(1..=8);
        let mut cents = g.int(10i64.pow(digits - 1)..=10i64.pow(digits) - 1);
        if g.chance(0.25) {
            cents = -cents;
        }
        amount.clear();
        push_decimal(&mut amount, cents.into(), 2, false);
        let note = if g.chance(0.08) {
            Some(g.pick(TXN_NOTES))
        } else {
            None
        };
        stmt.execute(params![
            id,
            g.int(1..=AGENT_ROWS),
            amount,
            g.pick(TXN_CURRENCIES),
            booked,
            has_value_date.then_some(value_date.as_str()),
            g.pick(TXN_STATUSES),
            note,
        ])?;
    }
    Ok(())
}
