//! The embedded demo source database.
//!
//! `dag run demo` has to work on a fresh machine with no database server around, so the demo
//! moves a SQLite file that this module creates on first use: a small "WorldZone" agent-banking
//! sample with one wide table (`AGENTSVES`: 66 columns covering every supported column type, edge
//! values and awkward strings), one big table (`TRANSACTIONS`, sized by the caller), a reference
//! table (`COUNTRIES`) and a table without a primary key (`CURRENCY_RATES`, which also holds a
//! few exact duplicate rows, as a double-loaded batch would). Declared column types and value
//! encodings follow the conventions for embedded SQLite sources: decimals, dates and timestamps
//! are TEXT, booleans are INTEGER 0/1.
//!
//! The content comes from fixed-seed PRNGs (one per table), and the generator avoids anything
//! platform-dependent, so every machine generates identical data and therefore identical row
//! counts and content fingerprints. The file is built under a temporary name next to the target
//! and renamed into place only once complete; a `_dag_demo_meta` table, written in the same
//! transaction as the data, marks it complete and records its version and size.
//!
//! Decimal columns are declared `TEXT DECIMAL(p,s)`, `TEXT NUMERIC(p,s)` and `TEXT MONEY`: a
//! plain `DECIMAL(p,s)` column has NUMERIC affinity, and SQLite would silently turn TEXT such as
//! '12.50' into REAL 12.5 (and a 38-digit decimal into an approximate REAL). The `TEXT` prefix
//! gives TEXT affinity, so the exact text is kept; the SQLite reader maps these declared types to
//! decimal(p,s) / decimal(19,4) like the plain ones.
//!
//! A few rows of `AGENTSVES` are synthetic edge cases rather than realistic data: rows 1 and 2
//! (and every 1009th / 1013th) hold the maximum / minimum value of each type (e.g. `9999-12-31`,
//! `0001-01-01`, `i64::MAX`, MONEY `922337203685477.5807`), row 3 (and every 1019th) is NULL in
//! every nullable column, and row 4 (and every 1021st) has empty strings and an empty blob.

use std::fmt::{self, Write as _};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, Transaction, params, params_from_iter};

/// Default number of rows in `TRANSACTIONS`.
pub const BIG_TABLE_ROWS: u64 = 1_000_000;

/// Number of rows in `AGENTSVES`; their ids are exactly `1..=AGENT_ROWS`.
pub const AGENT_ROWS: i64 = 9_066;

/// Bump whenever the generated content changes, so existing demo databases get rebuilt.
const DEMO_VERSION: &str = "1";

/// Seeds of the per-table PRNGs; changing one changes the data (bump `DEMO_VERSION`).
const SEED_COUNTRIES: u64 = 0x0DA6_0001;
const SEED_AGENTS: u64 = 0x0DA6_0002;
const SEED_RATES: u64 = 0x0DA6_0003;
const SEED_TRANSACTIONS: u64 = 0x0DA6_0004;

/// Temporary files of other runs untouched for this long are leftovers of a crash.
const STALE_TEMP_AGE: Duration = Duration::from_secs(600);

/// Failure to create the demo database; the message names the path.
#[derive(Debug)]
pub struct DemoError(pub String);

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DemoError {}

fn demo_error(path: &Path, what: &str, err: impl fmt::Display) -> DemoError {
    DemoError(format!("demo database {}: {what}: {err}", path.display()))
}

/// Creates the demo database at `path` if it does not exist (or is incomplete); returns
/// `Ok(false)` if a complete one was already there.
///
/// Writes to a temporary file next to `path` and renames it into place at the end, so a crash
/// never leaves a half-made database that looks complete.
pub fn ensure(path: &Path, big_rows: u64) -> Result<bool, DemoError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| demo_error(path, "invalid path", "it has no file name"))?;
    let temp_prefix = format!(".{}.tmp-", file_name.to_string_lossy());
    remove_stale_temps(path, &temp_prefix);
    if is_complete(path, big_rows) {
        return Ok(false);
    }
    let big_rows = i64::try_from(big_rows)
        .map_err(|e| demo_error(path, "too many TRANSACTIONS rows requested", e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| demo_error(path, "cannot create its directory", e))?;
    }
    let temp = path.with_file_name(format!("{temp_prefix}{}", std::process::id()));
    let result = build_file(&temp, big_rows)
        .map_err(|e| demo_error(path, &format!("cannot write {}", temp.display()), e))
        .and_then(|()| {
            fs::rename(&temp, path).map_err(|e| {
                demo_error(
                    path,
                    &format!("cannot rename {} into place", temp.display()),
                    e,
                )
            })
        });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map(|()| true)
}

/// True if `path` holds a demo database of the current version, completely written, with
/// `big_rows` transactions. Anything unreadable counts as incomplete.
fn is_complete(path: &Path, big_rows: u64) -> bool {
    if !path.is_file() {
        return false;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = Connection::open_with_flags(path, flags) else {
        return false;
    };
    let meta = |key: &str| -> Option<String> {
        conn.query_row(
            "SELECT value FROM _dag_demo_meta WHERE key = ?1",
            [key],
            |row| row.get(0),
        )
        .ok()
    };
    meta("version").as_deref() == Some(DEMO_VERSION)
        && meta("big_rows") == Some(big_rows.to_string())
}

/// Best effort: deletes temporary files that crashed runs left next to the target. Files still
/// being written (by a concurrent run) are recent, so they are left alone.
fn remove_stale_temps(path: &Path, temp_prefix: &str) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(temp_prefix)) else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TEMP_AGE));
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Builds the complete database in `temp` (replacing any leftover there) and flushes it to disk.
fn build_file(temp: &Path, big_rows: i64) -> Result<(), Box<dyn std::error::Error>> {
    match fs::remove_file(temp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut conn = Connection::open(temp)?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )?;
    let tables = tables();
    let tx = conn.transaction()?;
    for (name, columns) in &tables {
        tx.execute_batch(&create_table_sql(name, columns))?;
    }
    fill_countries(&tx)?;
    fill_agents(&tx)?;
    fill_currency_rates(&tx)?;
    fill_transactions(&tx, big_rows)?;
    tx.execute_batch("CREATE TABLE _dag_demo_meta (key TEXT PRIMARY KEY, value TEXT)")?;
    tx.execute(
        "INSERT INTO _dag_demo_meta (key, value) VALUES ('version', ?1), ('big_rows', ?2)",
        params![DEMO_VERSION, big_rows.to_string()],
    )?;
    tx.commit()?;
    conn.close().map_err(|(_, e)| e)?;
    // synchronous=OFF skipped every fsync: make the data durable before the rename publishes it.
    fs::File::open(temp)?.sync_all()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

/// A column: name and declaration (type, then constraints).
type ColumnDecl = (&'static str, &'static str);

/// Every data table with its columns, in creation order.
fn tables() -> Vec<(&'static str, Vec<ColumnDecl>)> {
    let agents = AGENT_COLUMNS.iter().map(|c| (c.name, c.decl)).collect();
    vec![
        ("COUNTRIES", COUNTRY_COLUMNS.to_vec()),
        ("AGENTSVES", agents),
        ("CURRENCY_RATES", RATE_COLUMNS.to_vec()),
        ("TRANSACTIONS", TXN_COLUMNS.to_vec()),
    ]
}

/// The `CREATE TABLE` statement of `table`.
fn create_table_sql(table: &str, columns: &[ColumnDecl]) -> String {
    let columns: Vec<String> = columns
        .iter()
        .map(|(name, decl)| format!("    {name} {decl}"))
        .collect();
    format!("CREATE TABLE {table} (\n{}\n)", columns.join(",\n"))
}

// ---------------------------------------------------------------------------------------------
// Calendar and value formatting
// ---------------------------------------------------------------------------------------------

const MICROS_PER_DAY: i64 = 86_400_000_000;

use crate::model::calendar::{civil_from_days, days_from_civil};

/// The smallest and largest dates of the supported range, and the fixed "today" of the sample.
const MIN_DAY: i64 = days_from_civil(1, 1, 1);
const MAX_DAY: i64 = days_from_civil(9999, 12, 31);
const TODAY: i64 = days_from_civil(2025, 6, 30);
const MIN_MICROS: i64 = MIN_DAY * MICROS_PER_DAY;
const MAX_MICROS: i64 = (MAX_DAY + 1) * MICROS_PER_DAY - 1;
const TODAY_MICROS: i64 = TODAY * MICROS_PER_DAY;

/// Appends `YYYY-MM-DD`.
fn push_date(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// Appends `YYYY-MM-DD HH:MM:SS`, followed by `.ffffff` if `fraction`.
fn push_timestamp(out: &mut String, micros: i64, fraction: bool) {
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
fn push_decimal(out: &mut String, unscaled: i128, scale: u32, trim: bool) {
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

fn date(days: i64) -> Value {
    let mut s = String::with_capacity(10);
    push_date(&mut s, days);
    Value::Text(s)
}

fn timestamp(micros: i64, fraction: bool) -> Value {
    let mut s = String::with_capacity(26);
    push_timestamp(&mut s, micros, fraction);
    Value::Text(s)
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

fn boolean(b: bool) -> Value {
    Value::Integer(i64::from(b))
}

/// Lower-case ASCII approximation of a name, for e-mail addresses.
fn ascii_slug(s: &str) -> String {
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
struct Gen(fastrand::Rng);

impl Gen {
    fn new(seed: u64) -> Self {
        Gen(fastrand::Rng::with_seed(seed))
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.0.f64() < probability
    }

    fn int(&mut self, range: std::ops::RangeInclusive<i64>) -> i64 {
        self.0.i64(range)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let len = u32::try_from(items.len()).expect("short list");
        items[self.0.u32(..len) as usize]
    }

    /// A non-negative integer with a uniformly chosen number of digits in `digits`, so that
    /// small and large magnitudes are equally common.
    fn magnitude(&mut self, digits: std::ops::RangeInclusive<u32>) -> i128 {
        let d = self.0.u32(digits);
        let low = if d <= 1 { 0 } else { 10u128.pow(d - 1) };
        let value = self.0.u128(low..=10u128.pow(d) - 1);
        i128::try_from(value).expect("at most 38 digits")
    }

    /// `magnitude(digits)`, negated with probability `negative`.
    fn signed(&mut self, digits: std::ops::RangeInclusive<u32>, negative: f64) -> i128 {
        let m = self.magnitude(digits);
        if self.chance(negative) { -m } else { m }
    }

    /// A DECIMAL/NUMERIC/MONEY value as TEXT; trailing fraction zeros are sometimes trimmed
    /// ('7', '0.05'), as sources written by other tools do.
    fn decimal(&mut self, unscaled: i128, scale: u32) -> Value {
        let trim = self.chance(0.15);
        let mut s = String::with_capacity(24);
        push_decimal(&mut s, unscaled, scale, trim);
        Value::Text(s)
    }

    /// A timestamp uniformly in `from..=to` (or `from` if the range is empty).
    fn micros_between(&mut self, from: i64, to: i64) -> i64 {
        if to <= from {
            from
        } else {
            self.int(from..=to)
        }
    }

    fn blob(&mut self, len: std::ops::RangeInclusive<u32>) -> Vec<u8> {
        let mut bytes = vec![0; self.0.u32(len) as usize];
        self.0.fill(&mut bytes);
        bytes
    }
}

/// Largest unscaled value of DECIMAL(`precision`, _).
const fn max_unscaled(precision: u32) -> i128 {
    10i128.pow(precision) - 1
}

// ---------------------------------------------------------------------------------------------
// COUNTRIES
// ---------------------------------------------------------------------------------------------

/// ISO 3166-1 alpha-2 codes (sorted) and names; `COUNTRY_ID` is the 1-based position.
const COUNTRY_LIST: [(&str, &str); 249] = [
    ("AD", "Andorra"),
    ("AE", "United Arab Emirates"),
    ("AF", "Afghanistan"),
    ("AG", "Antigua and Barbuda"),
    ("AI", "Anguilla"),
    ("AL", "Albania"),
    ("AM", "Armenia"),
    ("AO", "Angola"),
    ("AQ", "Antarctica"),
    ("AR", "Argentina"),
    ("AS", "American Samoa"),
    ("AT", "Austria (Österreich)"),
    ("AU", "Australia"),
    ("AW", "Aruba"),
    ("AX", "Åland Islands"),
    ("AZ", "Azerbaijan"),
    ("BA", "Bosnia and Herzegovina"),
    ("BB", "Barbados"),
    ("BD", "Bangladesh"),
    ("BE", "Belgium"),
    ("BF", "Burkina Faso"),
    ("BG", "Bulgaria"),
    ("BH", "Bahrain"),
    ("BI", "Burundi"),
    ("BJ", "Benin"),
    ("BL", "Saint Barthélemy"),
    ("BM", "Bermuda"),
    ("BN", "Brunei Darussalam"),
    ("BO", "Bolivia"),
    ("BQ", "Bonaire, Sint Eustatius and Saba"),
    ("BR", "Brazil (Brasil)"),
    ("BS", "Bahamas"),
    ("BT", "Bhutan"),
    ("BV", "Bouvet Island"),
    ("BW", "Botswana"),
    ("BY", "Belarus"),
    ("BZ", "Belize"),
    ("CA", "Canada"),
    ("CC", "Cocos (Keeling) Islands"),
    ("CD", "Congo, The Democratic Republic of the"),
    ("CF", "Central African Republic"),
    ("CG", "Congo"),
    ("CH", "Switzerland (Schweiz/Suisse/Svizzera)"),
    ("CI", "Côte d'Ivoire"),
    ("CK", "Cook Islands"),
    ("CL", "Chile"),
    ("CM", "Cameroon"),
    ("CN", "China (中国)"),
    ("CO", "Colombia"),
    ("CR", "Costa Rica"),
    ("CU", "Cuba"),
    ("CV", "Cabo Verde"),
    ("CW", "Curaçao"),
    ("CX", "Christmas Island"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DE", "Germany (Deutschland)"),
    ("DJ", "Djibouti"),
    ("DK", "Denmark"),
    ("DM", "Dominica"),
    ("DO", "Dominican Republic"),
    ("DZ", "Algeria"),
    ("EC", "Ecuador"),
    ("EE", "Estonia"),
    ("EG", "Egypt (مصر)"),
    ("EH", "Western Sahara"),
    ("ER", "Eritrea"),
    ("ES", "Spain (España)"),
    ("ET", "Ethiopia"),
    ("FI", "Finland"),
    ("FJ", "Fiji"),
    ("FK", "Falkland Islands (Malvinas)"),
    ("FM", "Micronesia, Federated States of"),
    ("FO", "Faroe Islands"),
    ("FR", "France"),
    ("GA", "Gabon"),
    ("GB", "United Kingdom"),
    ("GD", "Grenada"),
    ("GE", "Georgia"),
    ("GF", "French Guiana"),
    ("GG", "Guernsey"),
    ("GH", "Ghana"),
    ("GI", "Gibraltar"),
    ("GL", "Greenland"),
    ("GM", "Gambia"),
    ("GN", "Guinea"),
    ("GP", "Guadeloupe"),
    ("GQ", "Equatorial Guinea"),
    ("GR", "Greece (Ελλάδα)"),
    ("GS", "South Georgia and the South Sandwich Islands"),
    ("GT", "Guatemala"),
    ("GU", "Guam"),
    ("GW", "Guinea-Bissau"),
    ("GY", "Guyana"),
    ("HK", "Hong Kong (香港)"),
    ("HM", "Heard Island and McDonald Islands"),
    ("HN", "Honduras"),
    ("HR", "Croatia"),
    ("HT", "Haiti"),
    ("HU", "Hungary"),
    ("ID", "Indonesia"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IM", "Isle of Man"),
    ("IN", "India (भारत)"),
    ("IO", "British Indian Ocean Territory"),
    ("IQ", "Iraq"),
    ("IR", "Iran"),
    ("IS", "Iceland (Ísland)"),
    ("IT", "Italy"),
    ("JE", "Jersey"),
    ("JM", "Jamaica"),
    ("JO", "Jordan"),
    ("JP", "Japan (日本)"),
    ("KE", "Kenya"),
    ("KG", "Kyrgyzstan"),
    ("KH", "Cambodia"),
    ("KI", "Kiribati"),
    ("KM", "Comoros"),
    ("KN", "Saint Kitts and Nevis"),
    ("KP", "North Korea (조선)"),
    ("KR", "South Korea (대한민국)"),
    ("KW", "Kuwait"),
    ("KY", "Cayman Islands"),
    ("KZ", "Kazakhstan"),
    ("LA", "Laos"),
    ("LB", "Lebanon"),
    ("LC", "Saint Lucia"),
    ("LI", "Liechtenstein"),
    ("LK", "Sri Lanka"),
    ("LR", "Liberia"),
    ("LS", "Lesotho"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("LV", "Latvia"),
    ("LY", "Libya"),
    ("MA", "Morocco"),
    ("MC", "Monaco"),
    ("MD", "Moldova"),
    ("ME", "Montenegro"),
    ("MF", "Saint Martin (French part)"),
    ("MG", "Madagascar"),
    ("MH", "Marshall Islands"),
    ("MK", "North Macedonia"),
    ("ML", "Mali"),
    ("MM", "Myanmar"),
    ("MN", "Mongolia"),
    ("MO", "Macao (澳門)"),
    ("MP", "Northern Mariana Islands"),
    ("MQ", "Martinique"),
    ("MR", "Mauritania"),
    ("MS", "Montserrat"),
    ("MT", "Malta"),
    ("MU", "Mauritius"),
    ("MV", "Maldives"),
    ("MW", "Malawi"),
    ("MX", "Mexico (México)"),
    ("MY", "Malaysia"),
    ("MZ", "Mozambique"),
    ("NA", "Namibia"),
    ("NC", "New Caledonia"),
    ("NE", "Niger"),
    ("NF", "Norfolk Island"),
    ("NG", "Nigeria"),
    ("NI", "Nicaragua"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("NP", "Nepal"),
    ("NR", "Nauru"),
    ("NU", "Niue"),
    ("NZ", "New Zealand"),
    ("OM", "Oman"),
    ("PA", "Panama"),
    ("PE", "Peru (Perú)"),
    ("PF", "French Polynesia"),
    ("PG", "Papua New Guinea"),
    ("PH", "Philippines"),
    ("PK", "Pakistan"),
    ("PL", "Poland"),
    ("PM", "Saint Pierre and Miquelon"),
    ("PN", "Pitcairn"),
    ("PR", "Puerto Rico"),
    ("PS", "Palestine, State of"),
    ("PT", "Portugal"),
    ("PW", "Palau"),
    ("PY", "Paraguay"),
    ("QA", "Qatar"),
    ("RE", "Réunion"),
    ("RO", "Romania"),
    ("RS", "Serbia"),
    ("RU", "Russian Federation (Россия)"),
    ("RW", "Rwanda"),
    ("SA", "Saudi Arabia"),
    ("SB", "Solomon Islands"),
    ("SC", "Seychelles"),
    ("SD", "Sudan"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("SH", "Saint Helena, Ascension and Tristan da Cunha"),
    ("SI", "Slovenia"),
    ("SJ", "Svalbard and Jan Mayen"),
    ("SK", "Slovakia"),
    ("SL", "Sierra Leone"),
    ("SM", "San Marino"),
    ("SN", "Senegal"),
    ("SO", "Somalia"),
    ("SR", "Suriname"),
    ("SS", "South Sudan"),
    ("ST", "São Tomé and Príncipe"),
    ("SV", "El Salvador"),
    ("SX", "Sint Maarten (Dutch part)"),
    ("SY", "Syria"),
    ("SZ", "Eswatini"),
    ("TC", "Turks and Caicos Islands"),
    ("TD", "Chad"),
    ("TF", "French Southern Territories"),
    ("TG", "Togo"),
    ("TH", "Thailand (ประเทศไทย)"),
    ("TJ", "Tajikistan"),
    ("TK", "Tokelau"),
    ("TL", "Timor-Leste"),
    ("TM", "Turkmenistan"),
    ("TN", "Tunisia"),
    ("TO", "Tonga"),
    ("TR", "Türkiye"),
    ("TT", "Trinidad and Tobago"),
    ("TV", "Tuvalu"),
    ("TW", "Taiwan (臺灣)"),
    ("TZ", "Tanzania"),
    ("UA", "Ukraine"),
    ("UG", "Uganda"),
    ("UM", "United States Minor Outlying Islands"),
    ("US", "United States"),
    ("UY", "Uruguay"),
    ("UZ", "Uzbekistan"),
    ("VA", "Holy See (Vatican City State)"),
    ("VC", "Saint Vincent and the Grenadines"),
    ("VE", "Venezuela"),
    ("VG", "Virgin Islands, British"),
    ("VI", "Virgin Islands, U.S."),
    ("VN", "Viet Nam (Việt Nam)"),
    ("VU", "Vanuatu"),
    ("WF", "Wallis and Futuna"),
    ("WS", "Samoa"),
    ("YE", "Yemen"),
    ("YT", "Mayotte"),
    ("ZA", "South Africa"),
    ("ZM", "Zambia"),
    ("ZW", "Zimbabwe"),
];

fn country_id(iso2: &str) -> Option<i64> {
    let index = COUNTRY_LIST
        .binary_search_by(|(code, _)| code.cmp(&iso2))
        .ok()?;
    i64::try_from(index + 1).ok()
}

const COUNTRY_COLUMNS: &[ColumnDecl] = &[
    ("COUNTRY_ID", "INTEGER PRIMARY KEY"),
    ("ISO2", "CHAR(2) NOT NULL"),
    ("NAME", "NVARCHAR(100) NOT NULL"),
    ("POPULATION", "BIGINT"),
    ("AREA_KM2", "TEXT DECIMAL(12,2)"),
    ("GDP_USD", "REAL"),
];

fn fill_countries(tx: &Transaction<'_>) -> rusqlite::Result<()> {
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

// ---------------------------------------------------------------------------------------------
// AGENTSVES
// ---------------------------------------------------------------------------------------------

/// Synthetic edge-case rows of `AGENTSVES` (see the module doc).
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

/// A name in its native script and in Latin script.
type Name = (&'static str, &'static str);

const fn latin(name: &'static str) -> Name {
    (name, name)
}

/// Where agents work, with what they are called there.
struct Place {
    iso2: &'static str,
    weight: u32,
    region: &'static str,
    language: &'static str,
    time_zone: &'static str,
    dial_code: &'static str,
    /// Native full names put the family name first, joined by this separator.
    family_first: Option<&'static str>,
    cities: &'static [&'static str],
    first_names: &'static [Name],
    last_names: &'static [Name],
}

const PLACES: &[Place] = &[
    Place {
        iso2: "US",
        weight: 14,
        region: "AMER",
        language: "en-US",
        time_zone: "America/New_York",
        dial_code: "+1",
        family_first: None,
        cities: &[
            "New York",
            "Chicago",
            "San José",
            "Houston",
            "Coeur d'Alene",
        ],
        first_names: &[
            latin("Emily"),
            latin("Michael"),
            latin("José"),
            latin("Zoë"),
            latin("DeShawn"),
            latin("Chloé"),
        ],
        last_names: &[
            latin("Smith"),
            latin("Johnson"),
            latin("García"),
            latin("O'Connor"),
            latin("Nguyễn"),
            latin("Williams"),
        ],
    },
    Place {
        iso2: "MX",
        weight: 8,
        region: "AMER",
        language: "es-MX",
        time_zone: "America/Mexico_City",
        dial_code: "+52",
        family_first: None,
        cities: &[
            "Ciudad de México",
            "Guadalajara",
            "Mérida",
            "Querétaro",
            "Monterrey",
        ],
        first_names: &[
            latin("José"),
            latin("María"),
            latin("Sofía"),
            latin("Ángel"),
            latin("Ximena"),
            latin("Jesús"),
        ],
        last_names: &[
            latin("Hernández"),
            latin("Martínez"),
            latin("Núñez"),
            latin("López"),
            latin("Peña"),
            latin("Gutiérrez"),
        ],
    },
    Place {
        iso2: "BR",
        weight: 8,
        region: "AMER",
        language: "pt-BR",
        time_zone: "America/Sao_Paulo",
        dial_code: "+55",
        family_first: None,
        cities: &[
            "São Paulo",
            "Rio de Janeiro",
            "Brasília",
            "Belém",
            "Florianópolis",
        ],
        first_names: &[
            latin("João"),
            latin("Ana"),
            latin("Conceição"),
            latin("Luís"),
            latin("Thaís"),
            latin("Sebastião"),
        ],
        last_names: &[
            latin("Silva"),
            latin("Gonçalves"),
            latin("Araújo"),
            latin("Magalhães"),
            latin("Simões"),
            latin("Conceição"),
        ],
    },
    Place {
        iso2: "DE",
        weight: 6,
        region: "EMEA",
        language: "de-DE",
        time_zone: "Europe/Berlin",
        dial_code: "+49",
        family_first: None,
        cities: &["Berlin", "München", "Köln", "Düsseldorf", "Nürnberg"],
        first_names: &[
            latin("Jürgen"),
            latin("Lena"),
            latin("Björn"),
            latin("Käthe"),
            latin("Lukas"),
            latin("Jörg"),
        ],
        last_names: &[
            latin("Müller"),
            latin("Schröder"),
            latin("Groß"),
            latin("Weiß"),
            latin("Köhler"),
            latin("Schmidt"),
        ],
    },
    Place {
        iso2: "FR",
        weight: 6,
        region: "EMEA",
        language: "fr-FR",
        time_zone: "Europe/Paris",
        dial_code: "+33",
        family_first: None,
        cities: &["Paris", "Besançon", "Orléans", "Nîmes", "Saint-Étienne"],
        first_names: &[
            latin("François"),
            latin("Chloé"),
            latin("Hélène"),
            latin("Noël"),
            latin("Anaïs"),
            latin("Jérôme"),
        ],
        last_names: &[
            latin("Lefèvre"),
            latin("Girard"),
            latin("Dupré"),
            latin("Moreau"),
            latin("Château"),
            latin("D'Artagnan"),
        ],
    },
    Place {
        iso2: "ES",
        weight: 5,
        region: "EMEA",
        language: "es-ES",
        time_zone: "Europe/Madrid",
        dial_code: "+34",
        family_first: None,
        cities: &["Madrid", "A Coruña", "Cádiz", "Logroño", "Málaga"],
        first_names: &[
            latin("Íñigo"),
            latin("Begoña"),
            latin("Nuño"),
            latin("Inés"),
            latin("Álvaro"),
            latin("Lucía"),
        ],
        last_names: &[
            latin("Muñoz"),
            latin("Peña"),
            latin("Ibáñez"),
            latin("Fernández"),
            latin("Ortiz"),
            latin("Castañeda"),
        ],
    },
    Place {
        iso2: "CH",
        weight: 3,
        region: "EMEA",
        language: "de-CH",
        time_zone: "Europe/Zurich",
        dial_code: "+41",
        family_first: None,
        cities: &["Zürich", "Genève", "Bern", "Neuchâtel"],
        first_names: &[
            latin("Urs"),
            latin("Reto"),
            latin("Mélanie"),
            latin("Anouk"),
        ],
        last_names: &[
            latin("Meier"),
            latin("Brändli"),
            latin("Studer"),
            latin("Künzli"),
        ],
    },
    Place {
        iso2: "GB",
        weight: 5,
        region: "EMEA",
        language: "en-GB",
        time_zone: "Europe/London",
        dial_code: "+44",
        family_first: None,
        cities: &["London", "Manchester", "Edinburgh", "Cardiff"],
        first_names: &[
            latin("Siobhán"),
            latin("Oliver"),
            latin("Amelia"),
            latin("Rhys"),
            latin("Aoife"),
        ],
        last_names: &[
            latin("O'Brien"),
            latin("Smith"),
            latin("Ní Bhriain"),
            latin("Jones"),
            latin("Taylor-Wood"),
        ],
    },
    Place {
        iso2: "JP",
        weight: 7,
        region: "APAC",
        language: "ja-JP",
        time_zone: "Asia/Tokyo",
        dial_code: "+81",
        family_first: Some(""),
        cities: &["東京", "大阪", "京都", "札幌", "福岡"],
        first_names: &[
            ("太郎", "Tarō"),
            ("花子", "Hanako"),
            ("健", "Ken"),
            ("美咲", "Misaki"),
            ("翔太", "Shōta"),
        ],
        last_names: &[
            ("山田", "Yamada"),
            ("佐藤", "Satō"),
            ("鈴木", "Suzuki"),
            ("高橋", "Takahashi"),
            ("伊藤", "Itō"),
        ],
    },
    Place {
        iso2: "CN",
        weight: 7,
        region: "APAC",
        language: "zh-CN",
        time_zone: "Asia/Shanghai",
        dial_code: "+86",
        family_first: Some(""),
        cities: &["北京", "上海", "深圳", "广州", "成都"],
        first_names: &[
            ("伟", "Wěi"),
            ("芳", "Fāng"),
            ("秀英", "Xiùyīng"),
            ("强", "Qiáng"),
            ("静", "Jìng"),
        ],
        last_names: &[
            ("王", "Wáng"),
            ("李", "Lǐ"),
            ("张", "Zhāng"),
            ("刘", "Liú"),
            ("陈", "Chén"),
        ],
    },
    Place {
        iso2: "KR",
        weight: 4,
        region: "APAC",
        language: "ko-KR",
        time_zone: "Asia/Seoul",
        dial_code: "+82",
        family_first: Some(""),
        cities: &["서울", "부산", "인천"],
        first_names: &[("민준", "Min-jun"), ("서연", "Seo-yeon"), ("지호", "Ji-ho")],
        last_names: &[("김", "Kim"), ("이", "Lee"), ("박", "Park")],
    },
    Place {
        iso2: "IN",
        weight: 6,
        region: "APAC",
        language: "en-IN",
        time_zone: "Asia/Kolkata",
        dial_code: "+91",
        family_first: None,
        cities: &["Mumbai", "Bengaluru", "New Delhi", "Chennai"],
        first_names: &[
            ("आरव", "Aarav"),
            ("प्रिया", "Priya"),
            ("अनन्या", "Ananya"),
            ("रोहन", "Rohan"),
        ],
        last_names: &[
            ("शर्मा", "Sharma"),
            ("अय्यर", "Iyer"),
            ("पटेल", "Patel"),
            ("रेड्डी", "Reddy"),
        ],
    },
    Place {
        iso2: "NG",
        weight: 4,
        region: "EMEA",
        language: "en-NG",
        time_zone: "Africa/Lagos",
        dial_code: "+234",
        family_first: None,
        cities: &["Lagos", "Abuja", "Ìbàdàn"],
        first_names: &[
            latin("Chidi"),
            latin("Ngozi"),
            latin("Adébáyọ̀"),
            latin("Oluwaseun"),
        ],
        last_names: &[
            latin("Okafor"),
            latin("Ọlálékan"),
            latin("Eze"),
            latin("Bello"),
        ],
    },
    Place {
        iso2: "VN",
        weight: 4,
        region: "APAC",
        language: "vi-VN",
        time_zone: "Asia/Ho_Chi_Minh",
        dial_code: "+84",
        family_first: Some(" "),
        cities: &["Hà Nội", "Thành phố Hồ Chí Minh", "Đà Nẵng", "Huế"],
        first_names: &[
            latin("Văn An"),
            latin("Thị Hoa"),
            latin("Minh Đức"),
            latin("Thu Trang"),
        ],
        last_names: &[latin("Nguyễn"), latin("Trần"), latin("Lê"), latin("Phạm")],
    },
    Place {
        iso2: "PL",
        weight: 3,
        region: "EMEA",
        language: "pl-PL",
        time_zone: "Europe/Warsaw",
        dial_code: "+48",
        family_first: None,
        cities: &["Kraków", "Łódź", "Gdańsk", "Wrocław"],
        first_names: &[
            latin("Łukasz"),
            latin("Zofia"),
            latin("Wojciech"),
            latin("Małgorzata"),
        ],
        last_names: &[
            latin("Wiśniewski"),
            latin("Wójcik"),
            latin("Kowalczyk"),
            latin("Żak"),
        ],
    },
    Place {
        iso2: "SE",
        weight: 2,
        region: "EMEA",
        language: "sv-SE",
        time_zone: "Europe/Stockholm",
        dial_code: "+46",
        family_first: None,
        cities: &["Stockholm", "Malmö", "Göteborg"],
        first_names: &[latin("Åsa"), latin("Björn"), latin("Märta"), latin("Sören")],
        last_names: &[
            latin("Öberg"),
            latin("Lindström"),
            latin("Åkesson"),
            latin("Ström"),
        ],
    },
    Place {
        iso2: "TR",
        weight: 3,
        region: "EMEA",
        language: "tr-TR",
        time_zone: "Europe/Istanbul",
        dial_code: "+90",
        family_first: None,
        cities: &["İstanbul", "Ankara", "İzmir"],
        first_names: &[
            latin("Çağlar"),
            latin("Ayşe"),
            latin("Ömer"),
            latin("Gülşen"),
        ],
        last_names: &[
            latin("Yılmaz"),
            latin("Şahin"),
            latin("Öztürk"),
            latin("Çelik"),
        ],
    },
    Place {
        iso2: "EG",
        weight: 2,
        region: "EMEA",
        language: "ar-EG",
        time_zone: "Africa/Cairo",
        dial_code: "+20",
        family_first: None,
        cities: &["القاهرة", "الإسكندرية", "الجيزة"],
        first_names: &[("محمد", "Mohamed"), ("فاطمة", "Fatma"), ("أحمد", "Ahmed")],
        last_names: &[
            ("حسن", "Hassan"),
            ("السيد", "El-Sayed"),
            ("عبد الله", "Abdallah"),
        ],
    },
];

const MIDDLE_NAMES: &[&str] = &["Marie", "José", "de la", "Ümit", "J.", "Anne-Sophie", ""];
const STREETS: &[&str] = &[
    "Rue de l'Église",
    "Calle Mayor",
    "Hauptstraße",
    "Avenida Paulista",
    "Main Street",
    "中央通り",
    "Nowy Świat",
    "Bahnhofstrasse",
    "İstiklal Caddesi",
    "Đường Lê Lợi",
    "MG Road",
    "Baker Street",
    "Strøget",
    "Rua Augusta",
];
const ADDRESS_LINE2: &[&str] = &[
    "Apt 4B",
    "Piso 3º, puerta B",
    "2. OG",
    "Suite 1200",
    "Bâtiment C",
    "c/o Müller",
    "Room 1203, 12F",
    "",
];
const EMAIL_DOMAINS: &[&str] = &[
    "worldzone.example",
    "agents.worldzone.example",
    "mail.example.org",
    "correo.example.mx",
];
const STATUSES: &[&str] = &[
    "ACTIVE",
    "ACTIVE",
    "ACTIVE",
    "ACTIVE",
    "ACTIVE",
    "SUSPENDED",
    "ONBOARDING",
    "ON_LEAVE",
    "TERMINATED",
];
const ROLES: &[&str] = &[
    "Field Agent",
    "Senior Agent",
    "Team Lead",
    "Cashier",
    "Compliance Officer",
    "Regional Manager",
    "Trainee",
];
const SKILLS: &[&str] = &[
    "cash-in",
    "cash-out",
    "KYC",
    "FX",
    "bill-pay",
    "remittance",
    "microcredit",
    "insurance",
    "customer support",
    "agent training",
];
const NOTES: &[&str] = &[
    "Called back; customer said \"no thanks\" and hung up.",
    r"KYC scans stored under C:\agents\{code}\kyc\",
    "Line one\nLine two\nLine three",
    "Tab\tseparated\tvalues\t",
    "Windows line ending\r\nsecond line",
    "  leading and trailing spaces  ",
    "It's the agent's 'own' float; verify before 5 o'clock.",
    r"Regex used: ^\d{3}-\d{4}$ (written as \\d in JSON)",
    "Launch went well 🚀 — thanks, 👩‍💻 team ✅",
    "Reunión con el Sr. Núñez en São Paulo; über-wichtig!",
    "東京支店から北京支店へ移管 (moved from the Tokyo to the Beijing branch)",
    "SQL-looking text: DROP TABLE \"AGENTSVES\"; -- harmless",
    "Ends with a backslash \\",
    "{\"json\": \"inside a note\", \"agent\": \"{code}\"}",
    "Mixed: naïve café, Zürich, Øresund, Łódź, İstanbul",
];
const BIO_SENTENCES: &[&str] = &[
    "Joined WorldZone after a decade in retail banking.",
    "Speaks Spanish, Portuguese and a little Japanese (日本語を少し話します).",
    "Runs the Saturday cash-in desk at the São Paulo branch.",
    "Trained more than forty new agents on anti-money-laundering procedures.",
    "Known for the fastest float reconciliation in the region 🚀.",
    "Previously a teacher in Zürich; still corrects everyone's grammar.",
    "Volunteers at the community microcredit circle every month.",
    "她在北京和上海都工作过，擅长客户服务。",
    "Prefers \"old school\" paper receipts, scanned daily.",
    "Coordinates the rural outreach programme around Ìbàdàn.",
    "Certified in FX operations; handles EUR, MXN and JPY remittances.",
    "Está convencida de que la atención al cliente es lo más importante.",
    "Er betreut die Filialen in München, Köln und Düsseldorf.",
    "Il a ouvert la première agence mobile à Besançon.",
    "Loves hiking 🥾, coffee ☕ and spreadsheets 📊.",
    "Mentor in the women-in-fintech network 👩‍💻.",
    "Led the 2020 migration off the legacy CRM without losing a single record.",
    "서울 지점에서 5년 동안 근무했습니다.",
    "Backslashes in paths like D:\\exports\\2024 still confuse the old tools.",
    "Sends tab-separated\texports every Friday.",
];
const NICKNAMES: &[&str] = &[
    "Rocket 🚀",
    "El Niño",
    "Zé",
    "小王",
    "Käpt'n",
    "Ñoño",
    "Coder 👩‍💻",
    "Big \"D\"",
    r"Back\slash",
];
const SOURCE_SYSTEMS: &[&str] = &["LEGACY_CRM", "WZ_PORTAL", "IMPORT_2019", "MOBILE_APP"];

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

/// A column of `AGENTSVES`: name, declaration and value generator.
struct Column {
    name: &'static str,
    decl: &'static str,
    value: fn(&mut Gen, &Agent) -> Value,
}

const DEC_9_4: (u32, u32) = (9, 4);
const DEC_18_2: (u32, u32) = (18, 2);
const DEC_38_10: (u32, u32) = (38, 10);

const AGENT_COLUMNS: &[Column] = &[
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

fn fill_agents(tx: &Transaction<'_>) -> rusqlite::Result<()> {
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

// ---------------------------------------------------------------------------------------------
// CURRENCY_RATES (no primary key)
// ---------------------------------------------------------------------------------------------

/// Currencies and their starting rate per US dollar.
const CURRENCIES: &[(&str, f64)] = &[
    ("USD", 1.0),
    ("EUR", 0.92),
    ("JPY", 151.2),
    ("GBP", 0.79),
    ("CHF", 0.88),
    ("CNY", 7.2),
    ("MXN", 17.1),
    ("BRL", 5.0),
    ("INR", 83.3),
    ("KRW", 1350.0),
    ("NGN", 1450.0),
    ("VND", 25_000.0),
    ("PLN", 4.0),
    ("SEK", 10.5),
    ("TRY", 32.0),
    ("EGP", 47.5),
    ("CAD", 1.36),
    ("AUD", 1.52),
    ("ZAR", 18.6),
    ("CLP", 940.0),
];
const RATE_SOURCES: &[&str] = &[
    "ECB",
    "Federal Reserve H.10",
    "Banco de México",
    "日本銀行",
    "Banco Central do Brasil",
    "manual \"override\"",
];
/// Weekly fixings; the last week's batch is loaded twice (exact duplicate rows).
const RATE_WEEKS: i64 = 99;

/// No primary key: a keyless table.
const RATE_COLUMNS: &[ColumnDecl] = &[
    ("CURRENCY", "VARCHAR(3) NOT NULL"),
    ("RATE_DATE", "DATE NOT NULL"),
    ("RATE", "TEXT DECIMAL(18,8)"),
    ("SOURCE", "TEXT"),
];

fn fill_currency_rates(tx: &Transaction<'_>) -> rusqlite::Result<()> {
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

// ---------------------------------------------------------------------------------------------
// TRANSACTIONS (the big table)
// ---------------------------------------------------------------------------------------------

const TXN_CURRENCIES: &[&str] = &[
    "USD", "USD", "USD", "EUR", "EUR", "MXN", "BRL", "JPY", "CNY", "GBP", "INR", "NGN",
];
/// Weighted: most transactions settle.
const TXN_STATUSES: &[&str] = &[
    "SETTLED", "SETTLED", "SETTLED", "SETTLED", "SETTLED", "SETTLED", "SETTLED", "SETTLED",
    "BOOKED", "PENDING", "REVERSED", "FAILED",
];
const TXN_NOTES: &[&str] = &[
    "Cash-in at branch",
    "Reversal requested by customer",
    "Cliente pagó en efectivo",
    "手数料込み",
    "Überweisung ins Ausland",
    "Ref: \"INV-2024\\001\"",
    "Split payment\t2/3",
    "Bill pay 💡 electricity",
];

const TXN_COLUMNS: &[ColumnDecl] = &[
    ("TXN_ID", "INTEGER PRIMARY KEY"),
    ("AGENT_ID", "INTEGER NOT NULL"),
    ("AMOUNT", "TEXT DECIMAL(18,2) NOT NULL"),
    ("CURRENCY", "VARCHAR(3) NOT NULL"),
    ("BOOKED_AT", "DATETIME NOT NULL"),
    ("VALUE_DATE", "DATE"),
    ("STATUS", "VARCHAR(12) NOT NULL"),
    ("NOTE", "TEXT"),
];

fn fill_transactions(tx: &Transaction<'_>, rows: i64) -> rusqlite::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: u64 = 5_000;

    fn generate(dir: &Path) -> PathBuf {
        let path = dir.join("demo.sqlite");
        assert!(ensure(&path, SMALL).unwrap());
        path
    }

    fn fresh() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(generate(dir.path())).unwrap();
        (dir, conn)
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// (name, declared type, not null, primary key) of every column of `table`.
    fn columns(conn: &Connection, table: &str) -> Vec<(String, String, bool, bool)> {
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap();
        stmt.query_map([], |r| {
            let pk: i64 = r.get(5)?;
            Ok((r.get(1)?, r.get(2)?, r.get(3)?, pk > 0))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    const TABLES: [&str; 4] = ["AGENTSVES", "TRANSACTIONS", "COUNTRIES", "CURRENCY_RATES"];

    /// Every value of every column of every data table: (table, column, declared type, value).
    fn for_each_value(conn: &Connection, mut f: impl FnMut(&str, &str, &str, &Value)) {
        for table in TABLES {
            let cols = columns(conn, table);
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
                .unwrap();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                for (i, (name, decl, _, _)) in cols.iter().enumerate() {
                    f(table, name, decl, &row.get::<_, Value>(i).unwrap());
                }
            }
        }
    }

    /// (precision, scale) of a `TEXT DECIMAL(p,s)` / `TEXT NUMERIC(p,s)` / `TEXT MONEY` type.
    fn decimal_type(decl: &str) -> Option<(u32, u32)> {
        let decl = decl.strip_prefix("TEXT ")?;
        if decl == "MONEY" {
            return Some((19, 4));
        }
        let args = decl
            .strip_prefix("DECIMAL(")
            .or_else(|| decl.strip_prefix("NUMERIC("))?;
        let (p, s) = args.strip_suffix(')')?.split_once(',')?;
        Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
    }

    /// Checks `s` against DECIMAL(p,s) and returns its unscaled value.
    fn parse_decimal(s: &str, precision: u32, scale: u32) -> Result<i128, String> {
        let negative = s.starts_with('-');
        let body = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = body.split_once('.').unwrap_or((body, "0"));
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !digits(frac) {
            return Err(format!("{s:?} is not plain decimal notation"));
        }
        if body.contains('.') && frac.len() > scale as usize {
            return Err(format!("{s:?} has more than {scale} fraction digits"));
        }
        if int.trim_start_matches('0').len() > (precision - scale) as usize {
            return Err(format!(
                "{s:?} has more than {} integer digits",
                precision - scale
            ));
        }
        let mut unscaled: i128 = format!("{int}{frac:0<width$}", width = scale as usize)
            [..int.len() + scale as usize]
            .parse()
            .map_err(|e| format!("{s:?}: {e}"))?;
        if negative {
            if unscaled == 0 {
                return Err(format!("{s:?} is a negative zero"));
            }
            unscaled = -unscaled;
        }
        Ok(unscaled)
    }

    /// Days since the epoch of a valid `YYYY-MM-DD` in 0001..=9999.
    fn parse_date(s: &str) -> Option<i64> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let days = days_from_civil(y, m, d);
        (y >= 1 && civil_from_days(days) == (y, m, d)).then_some(days)
    }

    /// Microseconds since the epoch of a valid `YYYY-MM-DD HH:MM:SS[.ffffff]`.
    fn parse_timestamp(s: &str, fraction: bool) -> Option<i64> {
        let days = parse_date(s.get(..10)?)?;
        let rest = s.get(10..)?;
        let b = rest.as_bytes();
        if b.len() != if fraction { 16 } else { 9 } || b[0] != b' ' || b[3] != b':' || b[6] != b':'
        {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> { rest.get(r)?.parse().ok() };
        let (h, mi, sec) = (num(1..3)?, num(4..6)?, num(7..9)?);
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        let micros = if fraction {
            (b[9] == b'.').then_some(())?;
            num(10..16)?
        } else {
            0
        };
        Some(days * MICROS_PER_DAY + ((h * 60 + mi) * 60 + sec) * 1_000_000 + micros)
    }

    #[test]
    fn creates_a_complete_database_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("demo.sqlite");
        assert!(ensure(&path, SMALL).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(count(&conn, "AGENTSVES"), 9_066);
        assert_eq!(count(&conn, "TRANSACTIONS"), 5_000);
        assert_eq!(count(&conn, "COUNTRIES"), 249);
        assert_eq!(count(&conn, "CURRENCY_RATES"), 2_000);
        for (table, rows) in [
            ("AGENTSVES", 9_066),
            ("TRANSACTIONS", 5_000),
            ("COUNTRIES", 249),
        ] {
            let (min, max): (i64, i64) = conn
                .query_row(
                    &format!("SELECT MIN(rowid), MAX(rowid) FROM {table}"),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((min, max), (1, rows), "{table} ids are 1..={rows}");
        }
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let amount_type: String = conn
            .query_row(
                "SELECT type FROM pragma_table_info('TRANSACTIONS') WHERE name = 'AMOUNT'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(amount_type, "TEXT DECIMAL(18,2)");
        let agent_columns = columns(&conn, "AGENTSVES");
        assert_eq!(agent_columns.len(), 66);
        assert_eq!(agent_columns[0].0, "AGENT_ID");
        for table in TABLES {
            let cols = columns(&conn, table);
            let keys: Vec<_> = cols.iter().filter(|c| c.3).map(|c| c.1.as_str()).collect();
            let expected: &[&str] = if table == "CURRENCY_RATES" {
                &[]
            } else {
                &["INTEGER"]
            };
            assert_eq!(keys, expected, "{table} primary key");
            for (name, ..) in cols {
                assert!(
                    name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "{name}"
                );
            }
        }
        let orphans: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM TRANSACTIONS WHERE AGENT_ID NOT BETWEEN 1 AND 9066",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        let duplicates: i64 = conn
            .query_row(
                "SELECT COUNT(*) - (SELECT COUNT(*) FROM
                    (SELECT DISTINCT CURRENCY, RATE_DATE, RATE, SOURCE FROM CURRENCY_RATES))
                 FROM CURRENCY_RATES",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            duplicates, 20,
            "one double-loaded batch of exact duplicates"
        );
        drop(conn);

        assert!(
            !ensure(&path, SMALL).unwrap(),
            "a complete database is kept"
        );
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["demo.sqlite"], "no temporary files remain");
    }

    #[test]
    fn regenerates_an_incomplete_or_resized_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = generate(dir.path());

        let conn = Connection::open(&path).unwrap();
        conn.execute("DELETE FROM _dag_demo_meta WHERE key = 'big_rows'", [])
            .unwrap();
        conn.execute("DELETE FROM TRANSACTIONS WHERE TXN_ID > 10", [])
            .unwrap();
        drop(conn);
        assert!(ensure(&path, SMALL).unwrap(), "missing meta row: rebuilt");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(count(&conn, "TRANSACTIONS"), 5_000);
        drop(conn);
        assert!(!ensure(&path, SMALL).unwrap());

        assert!(ensure(&path, 1_234).unwrap(), "different size: rebuilt");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(count(&conn, "TRANSACTIONS"), 1_234);
        drop(conn);

        fs::write(&path, b"not a database").unwrap();
        assert!(ensure(&path, SMALL).unwrap(), "garbage: rebuilt");
        assert!(!ensure(&path, SMALL).unwrap());
    }

    #[test]
    fn removes_only_stale_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".demo.sqlite.tmp-999999");
        let fresh = dir.path().join(".demo.sqlite.tmp-999998");
        fs::write(&stale, b"crashed").unwrap();
        fs::write(&fresh, b"being written").unwrap();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3_600);
        fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        generate(dir.path());
        assert!(!stale.exists());
        assert!(fresh.exists());
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"").unwrap();
        let path = blocker.join("demo.sqlite");
        let err = ensure(&path, SMALL).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn generation_is_deterministic() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (generate(a.path()), generate(b.path()));
        assert!(fs::read(a).unwrap() == fs::read(b).unwrap());
    }

    /// FNV-1a over every typed value of every table: changes when the generated data changes,
    /// e.g. after a `fastrand` upgrade. Then bump `DEMO_VERSION` and update the digest.
    #[test]
    fn content_matches_the_pinned_digest() {
        let (_dir, conn) = fresh();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        for_each_value(&conn, |_, _, _, value| match value {
            Value::Null => feed(b"N"),
            Value::Integer(i) => {
                feed(b"I");
                feed(&i.to_le_bytes());
            }
            Value::Real(r) => {
                feed(b"R");
                feed(&r.to_bits().to_le_bytes());
            }
            Value::Text(t) => {
                feed(b"T");
                feed(&t.len().to_le_bytes());
                feed(t.as_bytes());
            }
            Value::Blob(b) => {
                feed(b"B");
                feed(&b.len().to_le_bytes());
                feed(b);
            }
        });
        assert_eq!(format!("{hash:016x}"), "286b1b0c3af5da8c");
    }

    #[test]
    fn decimals_respect_declared_precision_and_scale() {
        let (_dir, conn) = fresh();
        let mut checked = 0;
        let mut above_u64 = 0;
        let mut trimmed = 0;
        let mut extremes = Vec::new();
        for_each_value(&conn, |table, column, decl, value| {
            let Some((precision, scale)) = decimal_type(decl) else {
                return;
            };
            let text = match value {
                Value::Null => return,
                Value::Text(t) => t,
                other => panic!("{table}.{column}: {other:?} is not TEXT"),
            };
            let unscaled = parse_decimal(text, precision, scale)
                .unwrap_or_else(|e| panic!("{table}.{column} {decl}: {e}"));
            checked += 1;
            if unscaled.unsigned_abs() > u128::from(u64::MAX) {
                above_u64 += 1;
            }
            if scale > 0 && !text.contains('.') {
                trimmed += 1;
            }
            if decl == "TEXT MONEY" && unscaled.unsigned_abs() >= i64::MAX as u128 {
                extremes.push(text.clone());
            }
        });
        assert!(checked > 50_000, "{checked}");
        assert!(above_u64 > 100, "{above_u64}");
        assert!(trimmed > 100, "{trimmed}");
        assert!(extremes.contains(&"922337203685477.5807".to_string()));
        assert!(extremes.contains(&"-922337203685477.5808".to_string()));
    }

    #[test]
    fn dates_and_timestamps_are_valid() {
        let (_dir, conn) = fresh();
        let (mut dates, mut before_1970) = (Vec::new(), 0);
        for_each_value(&conn, |table, column, decl, value| {
            let Value::Text(text) = value else {
                assert!(
                    !matches!(decl, "DATE" | "DATETIME" | "TIMESTAMP") || *value == Value::Null,
                    "{table}.{column}: {value:?}"
                );
                return;
            };
            let valid = match decl {
                "DATE" => parse_date(text),
                "DATETIME" => parse_timestamp(text, true).map(|m| m.div_euclid(MICROS_PER_DAY)),
                "TIMESTAMP" => parse_timestamp(text, false).map(|m| m.div_euclid(MICROS_PER_DAY)),
                _ => return,
            };
            let days = valid.unwrap_or_else(|| panic!("{table}.{column} {decl}: {text:?}"));
            if days < 0 {
                before_1970 += 1;
            }
            if decl == "DATE" {
                dates.push(text.clone());
            }
        });
        assert!(before_1970 > 1_000, "{before_1970}");
        assert!(dates.iter().any(|d| d == "0001-01-01"));
        assert!(dates.iter().any(|d| d == "9999-12-31"));
        let epoch_edge: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM AGENTSVES WHERE LAST_AUDIT_AT = '1969-12-31 23:59:59'
                 AND CREATED_AT = '0001-01-01 00:00:00.000000'
                 AND UPDATED_AT = '0001-01-01 00:00:00.000000'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(epoch_edge >= 1);
    }

    #[test]
    fn values_match_declared_types() {
        let (_dir, conn) = fresh();
        for_each_value(&conn, |table, column, decl, value| {
            let base = decl.split([' ', '(']).next().unwrap();
            let ok = match (base, value) {
                (_, Value::Null) => true, // NOT NULL columns are checked below
                ("BOOLEAN", Value::Integer(i)) => *i == 0 || *i == 1,
                ("SMALLINT", Value::Integer(i)) => i16::try_from(*i).is_ok(),
                ("INT", Value::Integer(i)) => i32::try_from(*i).is_ok(),
                ("INTEGER" | "BIGINT", Value::Integer(_)) => true,
                ("REAL", Value::Real(r)) => r.is_finite(),
                ("BLOB", Value::Blob(_)) => true,
                (
                    "DECIMAL" | "NUMERIC" | "MONEY" | "DATE" | "DATETIME" | "TIMESTAMP" | "TEXT"
                    | "VARCHAR" | "NVARCHAR" | "CHAR",
                    Value::Text(_),
                ) => true,
                _ => false,
            };
            assert!(ok, "{table}.{column} {decl}: {value:?}");
        });
        for (name, decl, not_null, pk) in columns(&conn, "AGENTSVES") {
            let nulls: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM AGENTSVES WHERE {name} IS NULL"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            if not_null || pk {
                assert_eq!(nulls, 0, "{name}");
            } else {
                assert!(nulls > 0, "{name} {decl} is nullable but never NULL");
            }
        }
        let (half_null, empty, total): (i64, i64, i64) = conn
            .query_row(
                "SELECT SUM(PENDING_PAYOUT IS NULL), SUM(NICKNAME = ''), COUNT(*) FROM AGENTSVES",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert!(
            (total * 2 / 5..=total * 3 / 5).contains(&half_null),
            "{half_null}"
        );
        assert!(empty > 100, "{empty}");
        for needle in [
            "é",
            "ñ",
            "ü",
            "東京",
            "北京",
            "🚀",
            "👩‍💻",
            "\t",
            "\n",
            "\"",
            "\\",
            "'",
        ] {
            let hits: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM AGENTSVES WHERE instr(AGENT_NAME || CITY || NOTES
                        || SIGNATURE || NICKNAME || BIO || PREFERENCES, ?1) > 0",
                    [needle],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(hits > 0, "no value contains {needle:?}");
        }
        let avg_bytes: f64 = conn
            .query_row(
                "SELECT CAST(SUM(payload) AS REAL) / 9066 FROM dbstat WHERE name = 'AGENTSVES'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!((800.0..=1_300.0).contains(&avg_bytes), "{avg_bytes}");
    }

    #[test]
    fn strings_fit_declared_lengths() {
        let (_dir, conn) = fresh();
        for_each_value(&conn, |table, column, decl, value| {
            let Some(len) = ["VARCHAR(", "NVARCHAR(", "CHAR("]
                .iter()
                .find_map(|p| decl.strip_prefix(p))
                .and_then(|rest| rest.split(')').next()?.parse::<usize>().ok())
            else {
                return;
            };
            if let Value::Text(t) = value {
                assert!(
                    t.len() <= len,
                    "{table}.{column} {decl}: {t:?} has {} bytes",
                    t.len()
                );
                if decl.starts_with("CHAR(") {
                    assert_eq!(t.chars().count(), len, "{table}.{column}: {t:?}");
                }
            }
        });
    }

    #[test]
    fn calendar_and_decimal_formatting() {
        for days in (MIN_DAY..=MAX_DAY).step_by(17) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let fmt = |micros| {
            let mut s = String::new();
            push_timestamp(&mut s, micros, true);
            s
        };
        assert_eq!(fmt(-1), "1969-12-31 23:59:59.999999");
        assert_eq!(fmt(MIN_MICROS), "0001-01-01 00:00:00.000000");
        assert_eq!(fmt(MAX_MICROS), "9999-12-31 23:59:59.999999");
        let dec = |unscaled, scale, trim| {
            let mut s = String::new();
            push_decimal(&mut s, unscaled, scale, trim);
            s
        };
        assert_eq!(dec(-12_345_600, 4, false), "-1234.5600");
        assert_eq!(dec(-12_345_600, 4, true), "-1234.56");
        assert_eq!(dec(700, 2, true), "7");
        assert_eq!(dec(5, 2, false), "0.05");
        assert_eq!(dec(0, 2, false), "0.00");
        assert_eq!(dec(-5, 0, false), "-5");
        assert_eq!(ascii_slug("Nguyễn"), "nguyen");
        assert_eq!(ascii_slug("O'Brien"), "obrien");
        assert_eq!(ascii_slug("İstanbul"), "istanbul");
        assert_eq!(ascii_slug("山田"), "agent");
        assert!(COUNTRY_LIST.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        for place in PLACES {
            assert!(country_id(place.iso2).is_some(), "{}", place.iso2);
        }
    }
}
