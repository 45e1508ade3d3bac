//! The columns of `AGENTSVES`, in table order: each one's name, declared type and how its
//! value is drawn.

use rusqlite::types::Value;

use super::{Agent, Edge};
use crate::demo::countries::country_id;
use crate::demo::data::{
    ADDRESS_LINE2, BIO_SENTENCES, EMAIL_DOMAINS, MIDDLE_NAMES, NICKNAMES, NOTES, ROLES, SKILLS,
    SOURCE_SYSTEMS, STATUSES, STREETS,
};
use crate::demo::values::{
    Gen, MAX_DAY, MAX_MICROS, MICROS_PER_DAY, TODAY, TODAY_MICROS, ascii_slug, boolean, date, text,
    timestamp,
};
use crate::model::calendar::days_from_civil;

/// A column of `AGENTSVES`: name, declaration and value generator.
pub(in crate::demo) struct Column {
    pub(in crate::demo) name: &'static str,
    pub(in crate::demo) decl: &'static str,
    pub(super) value: fn(&mut Gen, &Agent) -> Value,
}

const DEC_9_4: (u32, u32) = (9, 4);
const DEC_18_2: (u32, u32) = (18, 2);
const DEC_38_10: (u32, u32) = (38, 10);

pub(in crate::demo) const AGENT_COLUMNS: &[Column] = &[
    Column {
        name: "AGENT_ID",
        decl: "INTEGER PRIMARY KEY",
        value: |_, a| Value::Integer(a.id),
    },
    Column {
        name: "AGENT_CODE",
        decl: "VARCHAR(12) NOT NULL",
        value: |_, a| text(a.code()),
    },
    Column {
        name: "AGENT_NAME",
        decl: "NVARCHAR(120) NOT NULL",
        value: |_, a| text(a.name()),
    },
    Column {
        name: "FIRST_NAME",
        decl: "NVARCHAR(60) NOT NULL",
        value: |_, a| text(a.first.1),
    },
    Column {
        name: "MIDDLE_NAME",
        decl: "NVARCHAR(60)",
        value: |g, a| g.nullable_text(a, 0.7, |g| g.pick(MIDDLE_NAMES).into()),
    },
    Column {
        name: "LAST_NAME",
        decl: "NVARCHAR(60) NOT NULL",
        value: |_, a| text(a.last.1),
    },
    Column {
        name: "DISPLAY_NAME",
        decl: "NVARCHAR(120)",
        value: |g, a| g.nullable_text(a, 0.2, |_| a.native_name()),
    },
    Column {
        name: "COUNTRY_CODE",
        decl: "CHAR(2) NOT NULL",
        value: |_, a| text(a.place.iso2),
    },
    Column {
        name: "COUNTRY_ID",
        decl: "INT",
        value: |g, a| {
            g.nullable(a, 0.02, |_| {
                country_id(a.place.iso2).map_or(Value::Null, Value::Integer)
            })
        },
    },
    Column {
        name: "REGION",
        decl: "VARCHAR(8)",
        value: |g, a| g.nullable_text(a, 0.05, |_| a.place.region.into()),
    },
    Column {
        name: "CITY",
        decl: "NVARCHAR(80)",
        value: |g, a| g.nullable_text(a, 0.05, |g| g.pick(a.place.cities).into()),
    },
    Column {
        name: "ADDRESS_LINE1",
        decl: "NVARCHAR(200)",
        value: |g, a| {
            g.nullable_text(a, 0.1, |g| {
                let street = g.pick(STREETS);
                format!("{street} {}", g.int(1..=250))
            })
        },
    },
    Column {
        name: "ADDRESS_LINE2",
        decl: "NVARCHAR(200)",
        value: |g, a| g.nullable_text(a, 0.6, |g| g.pick(ADDRESS_LINE2).into()),
    },
    Column {
        name: "POSTAL_CODE",
        decl: "VARCHAR(12)",
        value: |g, a| g.nullable_text(a, 0.1, |g| format!("{:05}", g.int(1_000..=99_999))),
    },
    Column {
        name: "EMAIL",
        decl: "VARCHAR(254)",
        value: |g, a| {
            g.nullable_text(a, 0.05, |g| {
                let (first, last) = (ascii_slug(a.first.1), ascii_slug(a.last.1));
                format!("{first}.{last}.{}@{}", a.id, g.pick(EMAIL_DOMAINS))
            })
        },
    },
    Column {
        name: "PHONE",
        decl: "VARCHAR(32)",
        value: |g, a| {
            g.nullable_text(a, 0.08, |g| {
                let area = g.int(100..=999);
                let number = g.int(1_000_000..=9_999_999);
                format!("{} {area} {number}", a.place.dial_code)
            })
        },
    },
    Column {
        name: "MOBILE",
        decl: "VARCHAR(32)",
        value: |g, a| {
            g.nullable_text(a, 0.4, |g| {
                let number = g.int(100_000_000..=999_999_999);
                format!("{}{number}", a.place.dial_code)
            })
        },
    },
    Column {
        name: "LANGUAGE_CODE",
        decl: "VARCHAR(5) NOT NULL",
        value: |_, a| text(a.place.language),
    },
    Column {
        name: "TIME_ZONE",
        decl: "VARCHAR(40)",
        value: |g, a| g.nullable_text(a, 0.1, |_| a.place.time_zone.into()),
    },
    Column {
        name: "IS_ACTIVE",
        decl: "BOOLEAN NOT NULL",
        value: |g, _| boolean(g.chance(0.85)),
    },
    Column {
        name: "IS_VERIFIED",
        decl: "BOOLEAN",
        value: |g, a| g.nullable(a, 0.1, |g| boolean(g.chance(0.7))),
    },
    Column {
        name: "IS_SUPERVISOR",
        decl: "BOOLEAN NOT NULL",
        value: |g, _| boolean(g.chance(0.08)),
    },
    Column {
        name: "TIER",
        decl: "SMALLINT NOT NULL",
        value: |g, a| g.int_col(a, 0.0, 16, |g| g.int(1..=5)),
    },
    Column {
        name: "FAILED_LOGINS",
        decl: "SMALLINT",
        value: |g, a| g.int_col(a, 0.3, 16, |g| g.int(0..=20)),
    },
    Column {
        name: "SUPERVISOR_ID",
        decl: "INT",
        value: |g, a| g.int_col(a, 0.12, 32, |g| g.int(1..=(a.id - 1).max(1))),
    },
    Column {
        name: "TEAM_ID",
        decl: "INT",
        value: |g, a| g.int_col(a, 0.05, 32, |g| g.int(1..=400)),
    },
    Column {
        name: "LOGIN_COUNT",
        decl: "INT NOT NULL",
        value: |g, a| g.int_col(a, 0.0, 32, |g| g.int(0..=50_000)),
    },
    Column {
        name: "TOTAL_TXN_COUNT",
        decl: "BIGINT NOT NULL",
        value: |g, a| g.int_col(a, 0.0, 64, |g| g.int(0..=5_000_000)),
    },
    Column {
        name: "LIFETIME_VOLUME_CENTS",
        decl: "BIGINT",
        value: |g, a| {
            g.int_col(a, 0.1, 64, |g| {
                i64::try_from(g.signed(1..=15, 0.05)).expect("15 digits")
            })
        },
    },
    Column {
        name: "EXTERNAL_REF",
        decl: "BIGINT",
        value: |g, a| g.nullable(a, 0.5, |g| Value::Integer(g.int(1..=i64::MAX))),
    },
    Column {
        name: "COMMISSION_RATE",
        decl: "TEXT NUMERIC(9,4) NOT NULL",
        value: |g, a| g.decimal_col(a, 0.0, DEC_9_4, |g| g.int(5_000..=150_000).into()),
    },
    Column {
        name: "BONUS_RATE",
        decl: "TEXT NUMERIC(9,4)",
        value: |g, a| g.decimal_col(a, 0.5, DEC_9_4, |g| g.int(0..=50_000).into()),
    },
    Column {
        name: "BALANCE",
        decl: "TEXT DECIMAL(18,2) NOT NULL",
        value: |g, a| g.decimal_col(a, 0.0, DEC_18_2, |g| g.signed(1..=10, 0.15)),
    },
    Column {
        name: "CREDIT_LIMIT",
        decl: "TEXT DECIMAL(18,2)",
        value: |g, a| g.decimal_col(a, 0.15, DEC_18_2, |g| i128::from(g.int(0..=200) * 50_000)),
    },
    Column {
        name: "PENDING_PAYOUT",
        decl: "TEXT DECIMAL(18,2)",
        value: |g, a| g.decimal_col(a, 0.5, DEC_18_2, |g| g.magnitude(1..=7)),
    },
    Column {
        name: "FX_EXPOSURE",
        decl: "TEXT DECIMAL(38,10)",
        value: |g, a| g.decimal_col(a, 0.3, DEC_38_10, |g| g.signed(1..=38, 0.4)),
    },
    Column {
        name: "RISK_SCORE",
        decl: "TEXT DECIMAL(38,10)",
        value: |g, a| g.decimal_col(a, 0.2, DEC_38_10, |g| g.int(0..=1_000_000_000_000).into()),
    },
    Column {
        name: "MONTHLY_FEE",
        decl: "TEXT MONEY",
        value: |g, a| g.money_col(a, 0.25, |g| g.int(0..=5_000_000).into()),
    },
    Column {
        name: "CASH_ON_HAND",
        decl: "TEXT MONEY NOT NULL",
        value: |g, a| g.money_col(a, 0.0, |g| g.signed(1..=10, 0.2)),
    },
    Column {
        name: "RATING",
        decl: "REAL",
        value: |g, a| g.nullable(a, 0.2, |g| Value::Real(g.int(10..=50) as f64 / 10.0)),
    },
    Column {
        name: "LATITUDE",
        decl: "REAL",
        value: |g, a| g.nullable(a, 0.1, |g| Value::Real(g.0.f64() * 180.0 - 90.0)),
    },
    Column {
        name: "LONGITUDE",
        decl: "REAL",
        value: |g, a| g.nullable(a, 0.1, |g| Value::Real(g.0.f64() * 360.0 - 180.0)),
    },
    Column {
        name: "PERFORMANCE_INDEX",
        decl: "REAL",
        value: |g, a| {
            g.nullable(a, 0.3, |g| {
                Value::Real(match a.edge {
                    Edge::Max => f64::MAX,
                    Edge::Min => f64::MIN,
                    Edge::Empty => f64::from_bits(1), // the smallest subnormal
                    _ => {
                        // Only correctly rounded operations, so every platform agrees.
                        const POW10: [f64; 13] = [
                            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
                        ];
                        let mantissa = g.signed(1..=15, 0.1) as f64;
                        mantissa / g.pick(&POW10)
                    }
                })
            })
        },
    },
    Column {
        name: "BIRTH_DATE",
        decl: "DATE",
        value: |g, a| {
            g.date_col(a, 0.15, |g| {
                g.int(days_from_civil(1940, 1, 1)..=days_from_civil(2004, 12, 31))
            })
        },
    },
    Column {
        name: "HIRE_DATE",
        decl: "DATE NOT NULL",
        value: |_, a| date(a.hired),
    },
    Column {
        name: "TERMINATION_DATE",
        decl: "DATE",
        value: |g, a| g.date_col(a, 0.85, |g| g.int(a.hired..=TODAY)),
    },
    Column {
        name: "CONTRACT_END_DATE",
        decl: "DATE",
        value: |g, a| {
            g.date_col(a, 0.2, |g| {
                if g.chance(0.5) {
                    MAX_DAY // open-ended
                } else {
                    g.int(TODAY..=TODAY + 3 * 365)
                }
            })
        },
    },
    Column {
        name: "CREATED_AT",
        decl: "DATETIME NOT NULL",
        value: |_, a| timestamp(a.created, true),
    },
    Column {
        name: "UPDATED_AT",
        decl: "DATETIME",
        value: |g, a| g.timestamp_col(a, 0.1, true, |g| g.micros_between(a.created, TODAY_MICROS)),
    },
    Column {
        name: "LAST_LOGIN_AT",
        decl: "DATETIME",
        value: |g, a| g.timestamp_col(a, 0.2, true, |g| g.micros_between(a.created, TODAY_MICROS)),
    },
    Column {
        name: "PASSWORD_CHANGED_AT",
        decl: "TIMESTAMP",
        value: |g, a| g.timestamp_col(a, 0.3, false, |g| g.micros_between(a.created, TODAY_MICROS)),
    },
    Column {
        name: "LAST_AUDIT_AT",
        decl: "TIMESTAMP",
        value: |g, a| {
            g.nullable(a, 0.5, |g| {
                let from = days_from_civil(1965, 1, 1) * MICROS_PER_DAY;
                // The min edge: one second before the epoch.
                let at = g.edged(a, MAX_MICROS, -1_000_000, |g| g.int(from..=TODAY_MICROS));
                timestamp(at, false)
            })
        },
    },
    Column {
        name: "STATUS",
        decl: "VARCHAR(12) NOT NULL",
        value: |g, _| text(g.pick(STATUSES)),
    },
    Column {
        name: "ROLE_NAME",
        decl: "VARCHAR(30)",
        value: |g, a| g.nullable_text(a, 0.05, |g| g.pick(ROLES).into()),
    },
    Column {
        name: "SKILLS",
        decl: "TEXT",
        value: |g, a| {
            g.nullable_text(a, 0.2, |g| {
                let count = if g.chance(0.1) { 0 } else { g.int(1..=4) };
                let skills: Vec<&str> = (0..count).map(|_| g.pick(SKILLS)).collect();
                skills.join(", ")
            })
        },
    },
    Column {
        name: "NOTES",
        decl: "TEXT",
        value: |g, a| g.nullable_text(a, 0.5, |g| g.pick(NOTES).replace("{code}", &a.code())),
    },
    Column {
        name: "BIO",
        decl: "TEXT",
        value: |g, a| {
            g.nullable_text(a, 0.5, |g| {
                // 200 to 2000 bytes, mostly short.
                let u = g.0.f64();
                let target = 200 + (u * u * 1_800.0) as usize;
                let mut bio = String::with_capacity(target + 200);
                while bio.len() < target {
                    if !bio.is_empty() {
                        bio.push(' ');
                    }
                    bio.push_str(g.pick(BIO_SENTENCES));
                }
                bio
            })
        },
    },
    Column {
        name: "SIGNATURE",
        decl: "NVARCHAR(200)",
        value: |g, a| {
            g.nullable_text(a, 0.3, |g| match g.int(0..=4) {
                0 => format!("— {} 🚀", a.name()),
                1 => format!("{} 👩‍💻 | WorldZone", a.first.1),
                2 => format!("Saludos, {} ✨", a.first.1),
                3 => a.native_name(),
                _ => format!("Cheers 🍀\n{}", a.first.1),
            })
        },
    },
    Column {
        name: "NICKNAME",
        decl: "NVARCHAR(40)",
        value: |g, a| {
            g.nullable_text(a, 0.3, |g| {
                if g.chance(0.4) {
                    String::new()
                } else {
                    g.pick(NICKNAMES).into()
                }
            })
        },
    },
    Column {
        name: "WEBSITE",
        decl: "VARCHAR(200)",
        value: |g, a| {
            g.nullable_text(a, 0.7, |_| {
                let (code, lang) = (a.code(), a.place.language);
                format!("https://worldzone.example/agents/{code}?lang={lang}&ref=demo")
            })
        },
    },
    Column {
        name: "IBAN",
        decl: "VARCHAR(34)",
        value: |g, a| {
            g.nullable_text(a, 0.2, |g| {
                let mut iban = format!("{}{:02}", a.place.iso2, g.int(2..=98));
                for _ in 0..g.int(14..=26) {
                    iban.push(g.0.digit(10));
                }
                iban
            })
        },
    },
    Column {
        name: "TAX_ID",
        decl: "VARCHAR(20)",
        value: |g, a| {
            g.nullable_text(a, 0.5, |g| {
                format!("{}-{:09}", a.place.iso2, g.int(0..=999_999_999))
            })
        },
    },
    Column {
        name: "PHOTO",
        decl: "BLOB",
        value: |g, a| {
            if a.edge == Edge::Empty {
                return Value::Blob(Vec::new());
            }
            g.nullable(a, 0.5, |g| Value::Blob(g.blob(16..=256)))
        },
    },
    Column {
        name: "PREFERENCES",
        decl: "TEXT",
        value: |g, a| {
            g.nullable_text(a, 0.1, |g| {
                let theme = g.pick(&["light", "dark", "high-contrast"]);
                let notify = g.chance(0.6);
                let lang = a.place.language;
                format!(
                    r#"{{"theme":"{theme}","lang":"{lang}","notify":{notify},"greeting":"say \"olá\"","export_dir":"C:\\exports"}}"#
                )
            })
        },
    },
    Column {
        name: "SOURCE_SYSTEM",
        decl: "VARCHAR(20) NOT NULL",
        value: |g, _| text(g.pick(SOURCE_SYSTEMS)),
    },
    Column {
        name: "ROW_VERSION",
        decl: "BIGINT NOT NULL",
        value: |g, _| Value::Integer(g.int(1..=1_000)),
    },
];
