//! `AGENTSVES`: the wide table, one row per agent, with a column of every supported type and
//! the synthetic edge-case rows the module doc of [`crate::demo`] describes. Each row first
//! draws an [`Agent`] (the facts several columns share), then every column draws its value.

mod columns;

use rusqlite::types::Value;
use rusqlite::{Transaction, params_from_iter};

use super::data::{Name, PLACES, Place};
use super::values::{
    Gen, MAX_DAY, MAX_MICROS, MICROS_PER_DAY, MIN_DAY, MIN_MICROS, TODAY, date, max_unscaled,
    timestamp,
};
use super::{AGENT_ROWS, SEED_AGENTS};
use crate::model::calendar::days_from_civil;

pub(super) use columns::AGENT_COLUMNS;

/// Synthetic edge-case rows of `AGENTSVES` (see the module doc of [`crate::demo`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    None,
    Max,
    Min,
    Nulls,
    Empty,
}

fn edge_of(id: i64) -> Edge {
    match id {
        1 => Edge::Max,
        2 => Edge::Min,
        3 => Edge::Nulls,
        4 => Edge::Empty,
        _ if id % 1009 == 0 => Edge::Max,
        _ if id % 1013 == 0 => Edge::Min,
        _ if id % 1019 == 0 => Edge::Nulls,
        _ if id % 1021 == 0 => Edge::Empty,
        _ => Edge::None,
    }
}

/// Per-row facts shared by several columns.
struct Agent {
    id: i64,
    edge: Edge,
    place: &'static Place,
    first: Name,
    last: Name,
    /// Hire date, days since the epoch.
    hired: i64,
    /// Creation time, microseconds since the epoch.
    created: i64,
}

impl Agent {
    fn new(g: &mut Gen, id: i64) -> Self {
        let total: u32 = PLACES.iter().map(|p| p.weight).sum();
        let mut ticket = g.0.u32(..total);
        let mut place = &PLACES[0];
        for p in PLACES {
            if ticket < p.weight {
                place = p;
                break;
            }
            ticket -= p.weight;
        }
        let edge = edge_of(id);
        let hired = g.int(days_from_civil(1985, 1, 1)..=TODAY - 30);
        let created = match edge {
            Edge::Max => MAX_MICROS,
            Edge::Min => MIN_MICROS,
            _ => hired * MICROS_PER_DAY + g.int(0..=MICROS_PER_DAY - 1),
        };
        Agent {
            id,
            edge,
            place,
            first: g.pick(place.first_names),
            last: g.pick(place.last_names),
            hired,
            created,
        }
    }

    fn code(&self) -> String {
        format!("AG-{:06}", self.id)
    }

    fn name(&self) -> String {
        format!("{} {}", self.first.1, self.last.1)
    }

    fn native_name(&self) -> String {
        match self.place.family_first {
            Some(sep) => format!("{}{sep}{}", self.last.0, self.first.0),
            None => format!("{} {}", self.first.0, self.last.0),
        }
    }
}

impl Gen {
    /// NULL with probability `rate` and on the all-NULL edge rows (unless `rate` is 0: a NOT
    /// NULL column), otherwise `value`.
    fn nullable(&mut self, a: &Agent, rate: f64, value: impl FnOnce(&mut Self) -> Value) -> Value {
        if rate > 0.0 && (a.edge == Edge::Nulls || self.chance(rate)) {
            Value::Null
        } else {
            value(self)
        }
    }

    /// `nullable` for strings; the empty-string edge rows get ''.
    fn nullable_text(
        &mut self,
        a: &Agent,
        rate: f64,
        value: impl FnOnce(&mut Self) -> String,
    ) -> Value {
        if a.edge == Edge::Empty {
            return Value::Text(String::new());
        }
        self.nullable(a, rate, |g| Value::Text(value(g)))
    }

    /// `max` / `min` on the edge rows, otherwise `value`.
    fn edged<T>(&mut self, a: &Agent, max: T, min: T, value: impl FnOnce(&mut Self) -> T) -> T {
        match a.edge {
            Edge::Max => max,
            Edge::Min => min,
            _ => value(self),
        }
    }

    /// An integer column whose edge rows hold the extremes of `i64` narrowed to `bits`.
    fn int_col(
        &mut self,
        a: &Agent,
        rate: f64,
        bits: u32,
        value: impl FnOnce(&mut Self) -> i64,
    ) -> Value {
        let max = i64::MAX >> (64 - bits);
        self.nullable(a, rate, |g| {
            Value::Integer(g.edged(a, max, -max - 1, value))
        })
    }

    /// A DECIMAL(`precision`, `scale`) column whose edge rows hold its extremes.
    fn decimal_col(
        &mut self,
        a: &Agent,
        rate: f64,
        (precision, scale): (u32, u32),
        value: impl FnOnce(&mut Self) -> i128,
    ) -> Value {
        self.nullable(a, rate, |g| {
            let max = max_unscaled(precision);
            let unscaled = g.edged(a, max, -max, value);
            g.decimal(unscaled, scale)
        })
    }

    /// A MONEY column (DECIMAL(19,4) holding a 64-bit unscaled value); the edge rows hold
    /// 922337203685477.5807 and -922337203685477.5808.
    fn money_col(&mut self, a: &Agent, rate: f64, value: impl FnOnce(&mut Self) -> i128) -> Value {
        self.nullable(a, rate, |g| {
            let unscaled = g.edged(a, i64::MAX.into(), i64::MIN.into(), value);
            g.decimal(unscaled, 4)
        })
    }

    /// A DATE column whose edge rows hold 9999-12-31 / 0001-01-01.
    fn date_col(&mut self, a: &Agent, rate: f64, value: impl FnOnce(&mut Self) -> i64) -> Value {
        self.nullable(a, rate, |g| date(g.edged(a, MAX_DAY, MIN_DAY, value)))
    }

    /// A DATETIME (`fraction`) or TIMESTAMP column whose edge rows hold the extremes.
    fn timestamp_col(
        &mut self,
        a: &Agent,
        rate: f64,
        fraction: bool,
        value: impl FnOnce(&mut Self) -> i64,
    ) -> Value {
        self.nullable(a, rate, |g| {
            timestamp(g.edged(a, MAX_MICROS, MIN_MICROS, value), fraction)
        })
    }
}

pub(super) fn fill_agents(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let placeholders = vec!["?"; AGENT_COLUMNS.len()].join(", ");
    let mut stmt = tx.prepare(&format!("INSERT INTO AGENTSVES VALUES ({placeholders})"))?;
    let mut g = Gen::new(SEED_AGENTS);
    let mut row = Vec::with_capacity(AGENT_COLUMNS.len());
    for id in 1..=AGENT_ROWS {
        let agent = Agent::new(&mut g, id);
        row.clear();
        row.extend(AGENT_COLUMNS.iter().map(|c| (c.value)(&mut g, &agent)));
        stmt.execute(params_from_iter(&row))?;
    }
    Ok(())
}
