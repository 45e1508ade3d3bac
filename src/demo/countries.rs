//! `COUNTRIES`: the reference table, one row per ISO 3166-1 country.

use rusqlite::types::Value;
use rusqlite::{Transaction, params};

use super::data::COUNTRY_LIST;
use super::values::Gen;
use super::{ColumnDecl, SEED_COUNTRIES};

pub(super) fn country_id(iso2: &str) -> Option<i64> {
    let index = COUNTRY_LIST
        .binary_search_by(|(code, _)| code.cmp(&iso2))
        .ok()?;
    i64::try_from(index + 1).ok()
}

pub(super) const COUNTRY_COLUMNS: &[ColumnDecl] = &[
    ("COUNTRY_ID", "INTEGER PRIMARY KEY"),
    ("ISO2", "CHAR(2) NOT NULL"),
    ("NAME", "NVARCHAR(100) NOT NULL"),
    ("POPULATION", "BIGINT"),
    ("AREA_KM2", "TEXT DECIMAL(12,2)"),
    ("GDP_USD", "REAL"),
];

pub(super) fn fill_countries(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut g = Gen::new(SEED_COUNTRIES);
    let mut stmt = tx.prepare("INSERT INTO COUNTRIES VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
    for (id, (iso2, name)) in (1i64..).zip(COUNTRY_LIST) {
        let population = i64::try_from(g.magnitude(4..=9)).expect("9 digits");
        let area = if g.chance(0.03) {
            Value::Null
        } else {
            let unscaled = g.magnitude(5..=10);
            g.decimal(unscaled, 2)
        };
        let gdp = if g.chance(0.1) {
            Value::Null
        } else {
            Value::Real(population as f64 * (500.0 + g.0.f64() * 80_000.0))
        };
        stmt.execute(params![id, iso2, name, population, area, gdp])?;
    }
    Ok(())
}
