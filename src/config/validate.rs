//! Walks the spanned TOML tree and turns it into workflow parts, collecting
//! every problem with its location instead of stopping at the first.
//!
//! Each section is handled the same way: reject keys the section does not know
//! (for sections with a `kind`, keys of the other kinds get their own message),
//! then read each known key with a typed getter that reports wrong types,
//! failed `${VAR}` expansion and out-of-range values. A getter returns `None`
//! after reporting, so the caller just continues with the next key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::interpolate::expand;
use super::{
    CatalogKind, CatchUp, ConfigError, ConfigErrors, DEFAULT_OPEN_PARTITIONS,
    DEFAULT_PARTITION_MIN_ROWS, Distribution, Encrypt, LakeConfig, LakePartition, Limits, LoadMode,
    MIN_MEMORY, Mode, MssqlSettings, MysqlTargetConfig, OnFailure, Overlap, PartitionSetting,
    S3Settings, SchemaChanges, Secret, SourceConfig, StarRocksConfig, TableModel, TableOverride,
    TableSelection, TargetConfig, VerifyMode, compile_glob, parse_size,
};

/// The validated contents of a workflow file.
pub(super) struct Parsed {
    pub description: Option<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub on_failure: OnFailure,
    pub history_retention_secs: u64,
    pub source: SourceConfig,
    pub lake: LakeConfig,
    pub target: Option<TargetConfig>,
    pub limits: Limits,
    pub tables: TableSelection,
    pub overrides: BTreeMap<String, TableOverride>,
    pub verify: VerifyMode,
    pub schema_changes: SchemaChanges,
}

/// Parses and validates `text`; the errors are sorted by position.
pub(super) fn validate(
    text: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, ConfigErrors> {
    let mut v = Validator {
        file,
        lines: LineIndex::new(text),
        env,
        errors: Vec::new(),
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // Validating a half-parsed document would only add noise.
        for e in syntax_errors {
            let span = e.span().unwrap_or(0..0);
            match text.get(span.clone()) {
                Some(key) if e.message() == "duplicate key" => {
                    v.report(span.start, "", format!("duplicate key `{key}`"))
                }
                _ => v.report(span.start, "", e.message()),
            }
        }
        v.errors.sort_by_key(|e| (e.line, e.column));
        return Err(ConfigErrors(v.errors));
    }
    let root = Section {
        key: String::new(),
        table: root.get_ref(),
        at: 0,
    };
    let parsed = v.workflow(&root);
    match parsed {
        Some(parsed) if v.errors.is_empty() => Ok(parsed),
        _ => {
            // Stable: problems at the same place keep the order they were found in.
            v.errors.sort_by_key(|e| (e.line, e.column));
            Err(ConfigErrors(v.errors))
        }
    }
}

/// Keys a section accepts: `common` ones, plus those of its `kind`.
struct Keys {
    common: &'static [&'static str],
    by_kind: &'static [(&'static str, &'static [&'static str])],
}

const ROOT_KEYS: Keys = Keys {
    common: &[
        "description",
        "schedule",
        "timezone",
        "overlap",
        "catch_up",
        "on_failure",
        "history_retention",
        "source",
        "lake",
        "target",
        "limits",
        "tables",
        "table",
        "verify",
        "schema_changes",
    ],
    by_kind: &[],
};

const SOURCE_KEYS: Keys = Keys {
    common: &["kind"],
    by_kind: &[
        ("sqlite", &["path", "generate_demo", "demo_big_rows"]),
        (
            "mssql",
            &[
                "url",
                "host",
                "port",
                "database",
                "user",
                "password",
                "schema",
                "encrypt",
                "trust_server_certificate",
                "command_timeout",
                "connect_timeout",
            ],
        ),
    ],
};

const LAKE_KEYS: Keys = Keys {
    common: &[
        "catalog",
        "uri",
        "catalog_name",
        "warehouse",
        "namespace",
        "partition",
        "partition_min_rows",
        "open_partitions",
        "retention",
        "s3",
    ],
    by_kind: &[],
};

const LAKE_S3_KEYS: Keys = Keys {
    common: &[
        "endpoint",
        "region",
        "access_key_id",
        "secret_access_key",
        "path_style",
    ],
    by_kind: &[],
};

const TARGET_KEYS: Keys = Keys {
    common: &["kind"],
    by_kind: &[
        ("sqlite", &["path"]),
        (
            "mysql",
            &[
                "url",
                "user",
                "password",
                "database",
                "create_tables",
                "insert_bytes",
            ],
        ),
        (
            "starrocks",
            &[
                "url",
                "user",
                "password",
                "database",
                "http_url",
                "create_tables",
                "model",
                "distribution",
                "buckets",
                "replication_num",
                "load",
                "lake_catalog",
                "request_bytes",
                "max_filter_ratio",
                "timeout",
            ],
        ),
    ],
};

const LIMITS_KEYS: Keys = Keys {
    common: &[
        "memory",
        "source_connections",
        "concurrent_loads",
        "retries",
        "batch_rows",
        "stop_grace",
    ],
    by_kind: &[],
};

const TABLES_KEYS: Keys = Keys {
    common: &["include", "exclude"],
    by_kind: &[],
};

const OVERRIDE_KEYS: Keys = Keys {
    common: &[
        "chunk_key",
        "chunk_rows",
        "partition",
        "partition_min_rows",
        "mode",
        "cursor",
        "full_refresh",
        "after",
        "exclude_columns",
        "cast",
        "connections",
        "verify",
        "schema_changes",
    ],
    by_kind: &[],
};

/// A TOML table being validated.
struct Section<'t, 'i> {
    /// Dotted key of the table; empty for the document root.
    key: String,
    table: &'t DeTable<'i>,
    /// Where "missing key" errors point: the table's header or opening brace.
    at: usize,
}

impl<'t, 'i> Section<'t, 'i> {
    fn get(&self, name: &str) -> Option<(&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>)> {
        self.table.iter().find(|(key, _)| key.get_ref() == name)
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn key_of(&self, name: &str) -> String {
        join_key(&self.key, name)
    }
}

/// A value read from the file, with the offset that errors about it point at.
struct Located<T> {
    value: T,
    at: usize,
}

/// Whether a getter reports an absent key.
#[derive(Clone, Copy)]
enum Need<'a> {
    Optional,
    Required,
    /// Required for the section's `kind`, which is named in the message.
    RequiredFor(&'a str),
}

struct Validator<'a> {
    file: &'a Path,
    lines: LineIndex<'a>,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
}

impl<'a> Validator<'a> {
    fn report(&mut self, at: usize, key: &str, message: impl Into<String>) {
        let (line, column) = self.lines.position(at);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn workflow(&mut self, root: &Section<'_, '_>) -> Option<Parsed> {
        self.check_keys(root, &ROOT_KEYS, None);
        let description = self.string(root, "description", Need::Optional);
        let schedule = self.schedule(root);
        let timezone = self.timezone(root);
        let overlap = self.choice(
            root,
            "overlap",
            &[("skip", Overlap::Skip), ("queue", Overlap::Queue)],
        );
        let catch_up = self.choice(
            root,
            "catch_up",
            &[("once", CatchUp::Once), ("skip", CatchUp::Skip)],
        );
        let on_failure = self.choice(
            root,
            "on_failure",
            &[
                ("restart", OnFailure::Restart),
                ("resume", OnFailure::Resume),
            ],
        );
        let history_retention_secs = self.duration(
            root,
            "history_retention",
            3600,
            3650 * 86_400,
            "e.g. \"30d\", \"90d\"; at least 1h",
        );
        let source = self.source(root);
        let lake = self.lake(root);
        let target = self.target(root);
        let limits = self.limits(root);
        let tables = self.tables(root);
        let overrides = self.overrides(root);
        let verify = self.verify(root);
        let schema_changes = self.schema_changes(root);
        Some(Parsed {
            verify: verify.unwrap_or_default(),
            schema_changes: schema_changes.unwrap_or_default(),
            description: description.map(|d| d.value),
            schedule,
            timezone,
            overlap: overlap.unwrap_or_default(),
            catch_up: catch_up.unwrap_or_default(),
            on_failure: on_failure.unwrap_or_default(),
            history_retention_secs: history_retention_secs
                .unwrap_or(crate::config::DEFAULT_HISTORY_RETENTION_SECS),
            source: source?,
            lake: lake?,
            target,
            limits,
            tables: tables?,
            overrides,
        })
    }

    fn schedule(&mut self, root: &Section<'_, '_>) -> Option<String> {
        let expr = self.string(root, "schedule", Need::Optional)?;
        let trimmed = expr.value.trim();
        let normalized = if trimmed.split_whitespace().count() == 5 {
            format!("0 {trimmed}")
        } else {
            trimmed.to_owned()
        };
        match normalized.parse::<cron::Schedule>() {
            Ok(_) => Some(normalized),
            Err(e) => {
                let message = format!(
                    "{:?} is not a cron expression ({e}); use \"sec min hour day month weekday\" \
                     or a 5-field crontab line",
                    expr.value
                );
                self.report(expr.at, "schedule", message);
                None
            }
        }
    }

    /// `timezone`: an IANA zone name such as `"Europe/Paris"` (or `"UTC"`).
    fn timezone(&mut self, root: &Section<'_, '_>) -> Option<String> {
        let tz = self.string(root, "timezone", Need::Optional)?;
        match tz.value.trim().parse::<chrono_tz::Tz>() {
            Ok(_) => Some(tz.value.trim().to_owned()),
            Err(_) => {
                let message = format!(
                    "{:?} is not an IANA time zone (e.g. \"Europe/Paris\", \"America/New_York\", \"UTC\")",
                    tz.value
                );
                self.report(tz.at, "timezone", message);
                None
            }
        }
    }

    /// `full_refresh`: `"never"`, `"daily"`, `"weekly"`, `"monthly"` (30 days) or a duration.
    fn full_refresh(&mut self, sec: &Section<'_, '_>) -> Option<u64> {
        let (key, at, value) = self.lookup(sec, "full_refresh", Need::Optional)?;
        if let DeValue::String(_) = value.get_ref() {
            let text = self.expand(&key, at, value)?;
            match text.trim() {
                "never" => return None,
                "daily" => return Some(86_400),
                "weekly" => return Some(7 * 86_400),
                "monthly" => return Some(30 * 86_400),
                _ => {}
            }
        }
        self.duration(
            sec,
            "full_refresh",
            3600,
            3650 * 86_400,
            "\"never\", \"daily\", \"weekly\", \"monthly\" or a duration such as \"14d\"",
        )
    }

    fn source(&mut self, root: &Section<'_, '_>) -> Option<SourceConfig> {
        let sec = self.section(root, "source", Need::Required)?;
        let kind = self.kind(&sec, &SOURCE_KEYS, "source");
        self.check_keys(&sec, &SOURCE_KEYS, kind);
        match kind? {
            "sqlite" => {
                let need = Need::RequiredFor("sqlite");
                let path = self.path(&sec, "path", need);
                let generate_demo = self.boolean(&sec, "generate_demo");
                let demo_big_rows = self.integer(&sec, "demo_big_rows", 1, u64::MAX);
                Some(SourceConfig::Sqlite {
                    path: path?,
                    generate_demo: generate_demo.unwrap_or(false),
                    demo_big_rows: demo_big_rows.map_or(1_000_000, |n| n.value),
                })
            }
            _ /* "mssql" */ => self.mssql(&sec).map(SourceConfig::Mssql),
        }
    }

    fn mssql(&mut self, sec: &Section<'_, '_>) -> Option<MssqlSettings> {
        let url = self.secret(sec, "url", Need::Optional);
        let host = self.name(sec, "host", Need::Optional);
        // A number, or a string so that `port = "${MSSQL_PORT}"` works.
        let port = match self.lookup(sec, "port", Need::Optional) {
            Some((key, at, v)) if matches!(v.get_ref(), DeValue::String(_)) => {
                let text = self.expand(&key, at, v);
                match text.as_deref().map(|t| t.trim().parse::<u16>()) {
                    Some(Ok(p)) if p > 0 => Some(p),
                    Some(_) => {
                        let message = format!(
                            "{:?} is not a port number (1-65535)",
                            text.unwrap_or_default()
                        );
                        self.report(at, &key, message);
                        None
                    }
                    None => None,
                }
            }
            Some(_) => self.integer(sec, "port", 1, 65535).map(|p| p.value as u16),
            None => None,
        };
        let database = self.name(sec, "database", Need::Optional);
        let user = self.name(sec, "user", Need::Optional);
        let password = self
            .lookup(sec, "password", Need::Optional)
            .and_then(|(key, at, v)| {
                // An empty password is a password; only its presence matters here.
                self.expand(&key, at, v).map(Secret::new)
            });
        let schema = self.name(sec, "schema", Need::Optional);
        let encrypt = self.string(sec, "encrypt", Need::Optional).and_then(|e| {
            match e.value.to_ascii_lowercase().as_str() {
                "off" | "false" | "no" => Some(Encrypt::Off),
                "on" | "true" | "yes" => Some(Encrypt::On),
                "required" | "strict" | "mandatory" => Some(Encrypt::Required),
                other => {
                    let message = format!(
                        "{other:?} is not an encryption mode (expected one of: off, on, required)"
                    );
                    self.report(e.at, &sec.key_of("encrypt"), message);
                    None
                }
            }
        });
        let trust = self.boolean(sec, "trust_server_certificate");
        let command_timeout = self.seconds(sec, "command_timeout");
        let connect_timeout = self.seconds(sec, "connect_timeout");
        // Keys present but unusable were reported where they are; only absent ones count here.
        let missing: Vec<&str> = ["host", "database", "user"]
            .into_iter()
            .filter(|k| !sec.has(k))
            .collect();
        if !sec.has("url") && !missing.is_empty() {
            let message = format!(
                "give either `url` (an ADO connection string) or host, database and user (missing: {})",
                missing.join(", ")
            );
            self.report(sec.at, &sec.key, message);
            return None;
        }
        Some(MssqlSettings {
            url,
            host,
            port,
            database,
            user,
            password,
            schema: schema.unwrap_or_else(|| "dbo".to_owned()),
            encrypt: encrypt.unwrap_or_default(),
            trust_server_certificate: trust.unwrap_or(false),
            command_timeout_secs: command_timeout.unwrap_or(3600),
            connect_timeout_secs: connect_timeout.unwrap_or(30),
        })
    }

    /// A duration: an integer number of seconds or a string such as `"90s"`, `"10m"`, `"2h"`.
    /// A timeout: whole seconds or a duration, from 1 s to a week.
    fn seconds(&mut self, sec: &Section<'_, '_>, name: &str) -> Option<u64> {
        self.duration(
            sec,
            name,
            1,
            7 * 86_400,
            "e.g. 600, \"90s\", \"10m\", \"2h\"",
        )
    }

    /// `[lake] retention`: `0`, or a duration such as `"36h"` or `"7d"`, up to ten years.
    fn retention(&mut self, sec: &Section<'_, '_>) -> Option<u64> {
        self.duration(
            sec,
            "retention",
            0,
            3650 * 86_400,
            "e.g. 0, \"36h\", \"7d\"",
        )
    }

    /// Seconds from an integer or a text such as `"90s"`, `"10m"`, `"2h"` or `"7d"`, in
    /// `min..=max`; `example` shows accepted forms in the error.
    fn duration(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        min: u64,
        max: u64,
        example: &str,
    ) -> Option<u64> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        if let DeValue::Integer(_) = value.get_ref() {
            return self.integer_value(&key, at, value, min, max);
        }
        let text = self.expand(&key, at, value)?;
        let t = text.trim();
        let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let mult = match unit.trim() {
            "" | "s" => Some(1),
            "m" | "min" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            _ => None,
        };
        match (num.parse::<u64>(), mult) {
            (Ok(n), Some(m)) if n.checked_mul(m).is_some_and(|s| (min..=max).contains(&s)) => {
                Some(n * m)
            }
            _ => {
                let message = format!("{text:?} is not a duration ({example})");
                self.report(at, &key, message);
                None
            }
        }
    }

    fn lake(&mut self, root: &Section<'_, '_>) -> Option<LakeConfig> {
        let sec = self.section(root, "lake", Need::Required)?;
        self.check_keys(&sec, &LAKE_KEYS, None);
        let catalog = self.string(&sec, "catalog", Need::Optional);
        if let Some(catalog) = &catalog
            && catalog.value != "sql"
        {
            let message = format!(
                "{:?} is not a supported catalog (expected one of: sql)",
                catalog.value
            );
            self.report(catalog.at, &sec.key_of("catalog"), message);
        }
        let uri = self.name(&sec, "uri", Need::Optional);
        let catalog_name = self.name(&sec, "catalog_name", Need::Optional);
        let warehouse = self.string(&sec, "warehouse", Need::Optional);
        let s3 = self.lake_s3(&sec, warehouse.as_ref());
        let warehouse = match warehouse {
            Some(w) if w.value.trim().is_empty() => {
                self.report(w.at, &sec.key_of("warehouse"), "must not be empty");
                None
            }
            Some(w) if !w.value.contains("://") => Some(PathBuf::from(w.value)),
            _ => None,
        };
        let namespace = self.string(&sec, "namespace", Need::Required);
        if let Some(ns) = &namespace
            && (ns.value.is_empty()
                || !ns
                    .value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            let message = format!(
                "{:?} is not a namespace (use ASCII letters, digits and '_')",
                ns.value
            );
            self.report(ns.at, &sec.key_of("namespace"), message);
        }
        let partition = self.choice(
            &sec,
            "partition",
            &[("auto", LakePartition::Auto), ("off", LakePartition::Off)],
        );
        let partition_min_rows = self.integer(&sec, "partition_min_rows", 0, u64::MAX);
        let open_partitions = self.integer(&sec, "open_partitions", 1, 1024);
        let retention = self.retention(&sec);
        Some(LakeConfig {
            catalog: CatalogKind::Sql,
            uri,
            catalog_name: catalog_name.unwrap_or_else(|| "dag".to_owned()),
            warehouse,
            namespace: namespace?.value,
            partition: partition.unwrap_or_default(),
            partition_min_rows: partition_min_rows.map_or(DEFAULT_PARTITION_MIN_ROWS, |n| n.value),
            open_partitions: open_partitions.map_or(DEFAULT_OPEN_PARTITIONS, |n| n.value as usize),
            retention_secs: retention.unwrap_or(0),
            s3,
        })
    }

    /// The S3 settings of an `s3://` warehouse, from `[lake.s3]` and the environment. Reports
    /// `[lake.s3]` beside a local warehouse, other URL schemes and missing credentials.
    fn lake_s3(
        &mut self,
        lake: &Section<'_, '_>,
        warehouse: Option<&Located<String>>,
    ) -> Option<S3Settings> {
        let sec = self.section(lake, "s3", Need::Optional);
        if let Some(sec) = &sec {
            self.check_keys(sec, &LAKE_S3_KEYS, None);
        }
        let warehouse_key = lake.key_of("warehouse");
        let url = warehouse.filter(|w| w.value.contains("://"));
        let Some(url) = url else {
            if let Some(sec) = &sec {
                let message = "only used with an S3 warehouse; set lake.warehouse = \
                               \"s3://bucket/prefix\" or remove [lake.s3]";
                self.report(sec.at, &sec.key, message);
            }
            return None;
        };
        let Some(rest) = url.value.strip_prefix("s3://") else {
            let message = format!(
                "{:?}: only local directories and s3://bucket/prefix are supported",
                url.value
            );
            self.report(url.at, &warehouse_key, message);
            return None;
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            let message = format!(
                "{bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '-' \
                 and '.')"
            );
            self.report(url.at, &warehouse_key, message);
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if prefix
            .split('/')
            .any(|part| part.is_empty() || part == "..")
            && !prefix.is_empty()
        {
            let message = format!("{prefix:?} is not a key prefix (empty or `..` part)");
            self.report(url.at, &warehouse_key, message);
        }
        let mut endpoint = None;
        let mut region = None;
        let mut access_key_id = None;
        let mut secret_access_key = None;
        let mut path_style = None;
        if let Some(sec) = &sec {
            endpoint = self.string(sec, "endpoint", Need::Optional);
            if let Some(e) = &endpoint
                && !(e.value.starts_with("http://") || e.value.starts_with("https://"))
            {
                let message = format!("{:?} is not an http:// or https:// URL", e.value);
                self.report(e.at, &sec.key_of("endpoint"), message);
            }
            region = self.name(sec, "region", Need::Optional);
            access_key_id = self.secret(sec, "access_key_id", Need::Optional);
            secret_access_key = self.secret(sec, "secret_access_key", Need::Optional);
            path_style = self.boolean(sec, "path_style");
        }
        // Credentials absent from the file come from the environment, as AWS tools take them.
        let s3_key = join_key(&lake.key, "s3");
        let at = sec.as_ref().map_or(url.at, |s| s.at);
        let credential = |this: &mut Self, given: Option<Secret>, name: &str, var: &str| {
            let key = join_key(&s3_key, name);
            let present = sec.as_ref().is_some_and(|s| s.has(name));
            match given {
                Some(v) => Some(v),
                // Present but unusable: reported where it is.
                None if present => None,
                None => match (this.env)(var).filter(|v| !v.is_empty()) {
                    Some(v) => Some(Secret::new(v)),
                    None => {
                        let message = format!(
                            "missing; required for an s3:// warehouse (or set the environment \
                             variable {var})"
                        );
                        this.report(at, &key, message);
                        None
                    }
                },
            }
        };
        let access_key_id = credential(self, access_key_id, "access_key_id", "AWS_ACCESS_KEY_ID");
        let secret_access_key = credential(
            self,
            secret_access_key,
            "secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
        );
        if !bucket_ok {
            return None;
        }
        Some(S3Settings {
            bucket: bucket.to_owned(),
            prefix,
            endpoint: endpoint.map(|e| e.value.trim_end_matches('/').to_owned()),
            region: region.unwrap_or_else(|| "us-east-1".to_owned()),
            access_key_id: access_key_id?,
            secret_access_key: secret_access_key?,
            path_style: path_style.unwrap_or(false),
        })
    }

    fn target(&mut self, root: &Section<'_, '_>) -> Option<TargetConfig> {
        let sec = self.section(root, "target", Need::Optional)?;
        let kind = self.kind(&sec, &TARGET_KEYS, "target");
        self.check_keys(&sec, &TARGET_KEYS, kind);
        let kind = kind?;
        if kind == "sqlite" {
            let path = self.path(&sec, "path", Need::RequiredFor(kind));
            return Some(TargetConfig::Sqlite { path: path? });
        }
        let url = self.secret(&sec, "url", Need::RequiredFor(kind));
        if let Some(u) = &url
            && !u.expose().starts_with("mysql://")
            && let Some((_, at, _)) = self.lookup(&sec, "url", Need::Optional)
        {
            let message = "expected a mysql://user:password@host:port URL";
            self.report(at, &sec.key_of("url"), message);
        }
        let user = self.name(&sec, "user", Need::Optional);
        let password = self
            .string(&sec, "password", Need::Optional)
            .map(|p| Secret::new(p.value));
        let database = self.name(&sec, "database", Need::RequiredFor(kind));
        if let Some(db) = &database
            && !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && let Some((_, at, _)) = self.lookup(&sec, "database", Need::Optional)
        {
            let message = format!("{db:?}: use letters, digits and `_` only");
            self.report(at, &sec.key_of("database"), message);
        }
        let create_tables = self.boolean(&sec, "create_tables").unwrap_or(true);
        if kind == "mysql" {
            let insert_bytes = self.size(&sec, "insert_bytes", 64 * 1024, 1 << 30);
            return Some(TargetConfig::Mysql(MysqlTargetConfig {
                url: url?,
                user,
                password,
                database: database?,
                create_tables,
                insert_bytes: insert_bytes.unwrap_or(4 << 20),
            }));
        }
        let http_url = self.string(&sec, "http_url", Need::Optional);
        if let Some(http) = &http_url
            && !http.value.starts_with("http://")
        {
            let message = format!(
                "{:?} is not an http:// URL (Stream Load over https is not supported)",
                http.value
            );
            self.report(http.at, &sec.key_of("http_url"), message);
        }
        let model = self.choice(
            &sec,
            "model",
            &[
                ("duplicate", TableModel::Duplicate),
                ("primary", TableModel::Primary),
            ],
        );
        let distribution = self.choice(
            &sec,
            "distribution",
            &[
                ("hash", Distribution::Hash),
                ("random", Distribution::Random),
            ],
        );
        let buckets = self
            .integer(&sec, "buckets", 1, 1024)
            .map(|n| n.value as u32);
        let replication_num = self
            .integer(&sec, "replication_num", 1, 9)
            .map(|n| n.value as u32);
        let load = self.choice(
            &sec,
            "load",
            &[("stream", LoadMode::Stream), ("lake", LoadMode::Lake)],
        );
        let lake_catalog = self.name(&sec, "lake_catalog", Need::Optional);
        let load_at = self.lookup(&sec, "load", Need::Optional).map(|l| l.1);
        match (load, &lake_catalog, &http_url) {
            (Some(LoadMode::Lake), None, _) => self.report(
                load_at.unwrap_or(sec.at),
                &sec.key_of("load"),
                "\"lake\" needs `lake_catalog`: the external Iceberg catalog StarRocks reads the lake through",
            ),
            (None | Some(LoadMode::Stream), _, None) => self.report(
                sec.at,
                &sec.key_of("http_url"),
                "Stream Load needs `http_url`, the FE's HTTP address (e.g. \"http://fe:8030\")",
            ),
            _ => {}
        }
        let request_bytes = self.size(&sec, "request_bytes", 64 * 1024, 10 << 30);
        let max_filter_ratio = self.string(&sec, "max_filter_ratio", Need::Optional);
        if let Some(r) = &max_filter_ratio
            && !r
                .value
                .parse::<f64>()
                .is_ok_and(|v| (0.0..=1.0).contains(&v))
        {
            let message = format!("{:?} is not a ratio between 0 and 1", r.value);
            self.report(r.at, &sec.key_of("max_filter_ratio"), message);
        }
        let timeout = self.seconds(&sec, "timeout");
        Some(TargetConfig::StarRocks(StarRocksConfig {
            url: url?,
            http_url: http_url.map(|h| h.value.trim_end_matches('/').to_string()),
            user,
            password,
            database: database?,
            create_tables,
            model: model.unwrap_or_default(),
            distribution,
            buckets,
            replication_num,
            load: load.unwrap_or_default(),
            lake_catalog,
            request_bytes: request_bytes.unwrap_or(100_000_000),
            max_filter_ratio: max_filter_ratio.map_or_else(|| "0".to_string(), |r| r.value),
            timeout_secs: timeout.unwrap_or(600),
        }))
    }

    /// One of a fixed set of words.
    fn choice<T: Copy>(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let got = self.string(sec, name, Need::Optional)?;
        if let Some((_, v)) = options.iter().find(|(w, _)| *w == got.value) {
            return Some(*v);
        }
        let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
        let message = format!(
            "{:?} is not valid (expected one of: {})",
            got.value,
            words.join(", ")
        );
        self.report(got.at, &sec.key_of(name), message);
        None
    }

    fn schema_changes(&mut self, sec: &Section<'_, '_>) -> Option<SchemaChanges> {
        self.choice(
            sec,
            "schema_changes",
            &[
                ("additive", SchemaChanges::Additive),
                ("any", SchemaChanges::Any),
            ],
        )
    }

    fn verify(&mut self, sec: &Section<'_, '_>) -> Option<VerifyMode> {
        self.choice(
            sec,
            "verify",
            &[("full", VerifyMode::Full), ("count", VerifyMode::Count)],
        )
    }

    /// A byte size such as `"100MB"` or an integer, in `min..=max`.
    fn size(&mut self, sec: &Section<'_, '_>, name: &str, min: u64, max: u64) -> Option<u64> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        let bytes = match value.get_ref() {
            DeValue::Integer(_) => self.integer_value(&key, at, value, 0, u64::MAX)?,
            _ => {
                let text = self.expand(&key, at, value)?;
                match parse_size(&text) {
                    Ok(b) => b,
                    Err(message) => {
                        self.report(at, &key, message);
                        return None;
                    }
                }
            }
        };
        if !(min..=max).contains(&bytes) {
            let message = format!(
                "{bytes} bytes is outside {}..={}",
                bytesize::ByteSize(min),
                bytesize::ByteSize(max)
            );
            self.report(at, &key, message);
            return None;
        }
        Some(bytes)
    }

    fn limits(&mut self, root: &Section<'_, '_>) -> Limits {
        let defaults = Limits::default();
        let Some(sec) = self.section(root, "limits", Need::Optional) else {
            return defaults;
        };
        self.check_keys(&sec, &LIMITS_KEYS, None);
        let count = |v: &mut Self, name: &str, min: u64, max: u64| {
            v.integer(&sec, name, min, max).map(|n| n.value)
        };
        let source_connections = count(self, "source_connections", 1, 64);
        let concurrent_loads = count(self, "concurrent_loads", 1, 64);
        let retries = count(self, "retries", 0, 20);
        let batch_rows = count(self, "batch_rows", 64, 1_000_000);
        let stop_grace = self.duration(&sec, "stop_grace", 0, 86_400, "e.g. \"30s\", \"5m\"");
        // The ranges above keep every value far below `u32::MAX`.
        Limits {
            memory: self.memory(&sec),
            source_connections: source_connections
                .map_or(defaults.source_connections, |n| n as usize),
            concurrent_loads: concurrent_loads.map_or(defaults.concurrent_loads, |n| n as usize),
            retries: retries.map_or(defaults.retries, |n| n as u32),
            batch_rows: batch_rows.map_or(defaults.batch_rows, |n| n as usize),
            stop_grace_secs: stop_grace.unwrap_or(defaults.stop_grace_secs),
        }
    }

    fn memory(&mut self, sec: &Section<'_, '_>) -> Option<u64> {
        let (key, at, value) = self.lookup(sec, "memory", Need::Optional)?;
        let (bytes, shown) = match value.get_ref() {
            DeValue::String(_) => {
                let text = self.expand(&key, at, value)?;
                match parse_size(&text) {
                    Ok(bytes) => (bytes, text),
                    Err(message) => {
                        self.report(at, &key, message);
                        return None;
                    }
                }
            }
            DeValue::Integer(_) => {
                let bytes = self.integer_value(&key, at, value, 0, u64::MAX)?;
                (bytes, format!("{bytes} bytes"))
            }
            other => {
                let message = format!(
                    "expected a size such as \"512MiB\", found {}",
                    type_name(other)
                );
                self.report(at, &key, message);
                return None;
            }
        };
        if bytes < MIN_MEMORY {
            let message = format!("{shown} is below the minimum of 16MiB");
            self.report(at, &key, message);
            return None;
        }
        Some(bytes)
    }

    fn tables(&mut self, root: &Section<'_, '_>) -> Option<TableSelection> {
        let Some(sec) = self.section(root, "tables", Need::Optional) else {
            return Some(TableSelection::default());
        };
        self.check_keys(&sec, &TABLES_KEYS, None);
        let include = self.globs(&sec, "include");
        let exclude = self.globs(&sec, "exclude");
        if let Some(include) = &include
            && include.value.is_empty()
        {
            let message = "selects no tables; use [\"*\"] for all of them";
            self.report(include.at, &sec.key_of("include"), message);
        }
        let bad = |list: &Option<_>, name| list.is_none() && sec.has(name);
        if bad(&include, "include") || bad(&exclude, "exclude") {
            return None;
        }
        let include = include.map_or_else(|| vec!["*".to_owned()], |i| i.value);
        let exclude = exclude.map_or_else(Vec::new, |e| e.value);
        // Each glob compiled above, so this can only fail on e.g. a size limit.
        match TableSelection::new(include, exclude) {
            Ok(selection) => Some(selection),
            Err(message) => {
                self.report(sec.at, &sec.key, message);
                None
            }
        }
    }

    /// A list of globs; each bad one is reported at its own position.
    fn globs(&mut self, sec: &Section<'_, '_>, name: &str) -> Option<Located<Vec<String>>> {
        let list = self.string_list(sec, name)?;
        let mut ok = true;
        for (index, pattern) in list.value.iter().enumerate() {
            if let Err(message) = compile_glob(&pattern.value) {
                self.report(
                    pattern.at,
                    &format!("{}[{index}]", sec.key_of(name)),
                    message,
                );
                ok = false;
            }
        }
        ok.then(|| Located {
            value: list.value.into_iter().map(|p| p.value).collect(),
            at: list.at,
        })
    }

    fn overrides(&mut self, root: &Section<'_, '_>) -> BTreeMap<String, TableOverride> {
        let mut overrides = BTreeMap::new();
        let Some(sec) = self.section(root, "table", Need::Optional) else {
            return overrides;
        };
        let mut entries: Vec<_> = sec.table.iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut located: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (name, value) in entries {
            let table_name = name.get_ref().to_string();
            let key = sec.key_of(&table_name);
            let at = name.span().start;
            located.insert(table_name.to_lowercase(), (at, format!("{key}.after")));
            if table_name.trim().is_empty() {
                self.report(at, &key, "table name must not be empty");
                continue;
            }
            if let Some(first) = seen.insert(table_name.to_lowercase(), table_name.clone()) {
                let message = format!(
                    "same table as `{}` (table names are matched case-insensitively)",
                    sec.key_of(&first)
                );
                self.report(at, &key, message);
                continue;
            }
            let DeValue::Table(table) = value.get_ref() else {
                let message = format!("expected a table, found {}", type_name(value.get_ref()));
                self.report(at, &key, message);
                continue;
            };
            let table_sec = Section {
                key,
                table,
                at: value.span().start,
            };
            if let Some(o) = self.table_override(&table_sec, &table_name) {
                overrides.insert(table_name, o);
            }
        }
        self.order_cycles(&overrides, &located);
        overrides
    }

    /// Reports every cycle among `after` declarations, with the tables on it in order. Whether
    /// the tables exist is only known at run time; a cycle is wrong whatever the source holds.
    fn order_cycles(
        &mut self,
        overrides: &BTreeMap<String, TableOverride>,
        located: &BTreeMap<String, (usize, String)>,
    ) {
        use petgraph::graph::DiGraph;
        let mut g: DiGraph<String, ()> = DiGraph::new();
        let mut idx = BTreeMap::new();
        let mut node = |g: &mut DiGraph<String, ()>, name: &str| {
            *idx.entry(name.to_lowercase())
                .or_insert_with(|| g.add_node(name.to_string()))
        };
        for (table, o) in overrides {
            let b = node(&mut g, table);
            for dep in &o.after {
                let a = node(&mut g, dep);
                g.add_edge(a, b, ());
            }
        }
        for scc in petgraph::algo::kosaraju_scc(&g) {
            if scc.len() < 2 {
                continue; // self-waits are reported per key above
            }
            // Start at the table declared first (a stable message), then follow "waits for"
            // edges (incoming ones: an edge runs from the awaited table to the waiting one)
            // along a shortest way back to it.
            let start = *scc
                .iter()
                .min_by_key(|n| {
                    located
                        .get(&g[**n].to_lowercase())
                        .map_or(usize::MAX, |l| l.0)
                })
                .expect("non-empty component");
            let names = shortest_cycle(&g, start, &scc);
            let first = names[0].to_lowercase();
            let (at, key) = located
                .get(&first)
                .cloned()
                .unwrap_or((0, "table".to_string()));
            let message = format!(
                "the declared table order has a cycle: {}",
                names.join(" -> ")
            );
            self.report(at, &key, message);
        }
    }

    fn table_override(&mut self, sec: &Section<'_, '_>, table: &str) -> Option<TableOverride> {
        self.check_keys(sec, &OVERRIDE_KEYS, None);
        let chunk_key = self.name(sec, "chunk_key", Need::Optional);
        let chunk_rows = self.integer(sec, "chunk_rows", 1, u64::MAX);
        let partition = self
            .name(sec, "partition", Need::Optional)
            .map(|p| match p.as_str() {
                "auto" => PartitionSetting::Auto,
                "off" => PartitionSetting::Off,
                _ => PartitionSetting::Column(p),
            });
        let partition_min_rows = self
            .integer(sec, "partition_min_rows", 0, u64::MAX)
            .map(|n| n.value);
        let mode = self.mode(sec);
        let cursor = self.name(sec, "cursor", Need::Optional);
        let full_refresh_secs = self.full_refresh(sec);
        if let Some((k, _)) = sec.get("full_refresh")
            && mode.as_ref().is_none_or(|m| m.value != Mode::Incremental)
        {
            self.report(
                k.span().start,
                &sec.key_of("full_refresh"),
                "only an incremental table (mode = \"incremental\") has periodic full refreshes",
            );
        }
        if let Some(mode) = &mode
            && mode.value == Mode::Incremental
            && !sec.has("cursor")
        {
            let message = "\"incremental\" needs a `cursor` column";
            self.report(mode.at, &sec.key_of("mode"), message);
        }
        let after = self.string_list(sec, "after");
        for (index, other) in after.iter().flat_map(|a| &a.value).enumerate() {
            let key = format!("{}[{index}]", sec.key_of("after"));
            if other.value.trim().is_empty() {
                self.report(other.at, &key, "table name must not be empty");
            } else if other.value.eq_ignore_ascii_case(table) {
                self.report(other.at, &key, "a table cannot wait for itself");
            }
        }
        let exclude_columns = self.string_list(sec, "exclude_columns");
        let cast = self.string_map(sec, "cast");
        let connections = self
            .integer(sec, "connections", 1, 64)
            .map(|n| n.value as usize);
        let verify = self.verify(sec);
        let schema_changes = self.schema_changes(sec);
        Some(TableOverride {
            verify,
            schema_changes,
            exclude_columns: exclude_columns
                .map_or_else(Vec::new, |a| a.value.into_iter().map(|s| s.value).collect()),
            cast: cast.unwrap_or_default(),
            connections,
            chunk_key,
            chunk_rows: chunk_rows.map(|n| n.value),
            partition,
            partition_min_rows,
            mode: mode.map_or(Mode::Full, |m| m.value),
            cursor,
            full_refresh_secs,
            after: after.map_or_else(Vec::new, |a| a.value.into_iter().map(|s| s.value).collect()),
        })
    }

    fn mode(&mut self, sec: &Section<'_, '_>) -> Option<Located<Mode>> {
        let mode = self.string(sec, "mode", Need::Optional)?;
        let value = match mode.value.as_str() {
            "full" => Mode::Full,
            "incremental" => Mode::Incremental,
            other => {
                let message =
                    format!("{other:?} is not a mode (expected one of: full, incremental)");
                self.report(mode.at, &sec.key_of("mode"), message);
                return None;
            }
        };
        Some(Located { value, at: mode.at })
    }

    // ---- structure ----

    /// The sub-table `name` of `parent`.
    fn section<'t, 'i>(
        &mut self,
        parent: &Section<'t, 'i>,
        name: &str,
        need: Need<'_>,
    ) -> Option<Section<'t, 'i>> {
        let key = parent.key_of(name);
        let Some((key_span, value)) = parent.get(name) else {
            if let Need::Required | Need::RequiredFor(_) = need {
                self.report(parent.at, &key, "missing required section");
            }
            return None;
        };
        match value.get_ref() {
            DeValue::Table(table) => Some(Section {
                key,
                table,
                at: value.span().start,
            }),
            other => {
                let message = format!("expected a table, found {}", type_name(other));
                self.report(key_span.span().start, &key, message);
                None
            }
        }
    }

    /// The section's required `kind`, if it is one of `keys.by_kind`.
    fn kind(&mut self, sec: &Section<'_, '_>, keys: &Keys, what: &str) -> Option<&'static str> {
        let kind = self.string(sec, "kind", Need::Required)?;
        let known = keys.by_kind.iter().map(|(k, _)| *k);
        if let Some(found) = known.clone().find(|k| *k == kind.value) {
            return Some(found);
        }
        let message = format!(
            "{:?} is not a supported {what} kind (expected one of: {})",
            kind.value,
            known.collect::<Vec<_>>().join(", ")
        );
        self.report(kind.at, &sec.key_of("kind"), message);
        None
    }

    /// Reports keys that `sec` does not accept. With an unknown `kind`, the
    /// keys of every kind are accepted.
    fn check_keys(&mut self, sec: &Section<'_, '_>, keys: &Keys, kind: Option<&str>) {
        let mut allowed: Vec<&str> = keys.common.to_vec();
        for (k, kind_keys) in keys.by_kind {
            if kind.is_none_or(|kind| kind == *k) {
                for key in *kind_keys {
                    if !allowed.contains(key) {
                        allowed.push(key);
                    }
                }
            }
        }
        for (key, _) in sec.table.iter() {
            let name = key.get_ref().as_ref();
            if allowed.contains(&name) {
                continue;
            }
            let owners: Vec<String> = keys
                .by_kind
                .iter()
                .filter(|(_, kind_keys)| kind_keys.contains(&name))
                .map(|(k, _)| format!("{k:?}"))
                .collect();
            let message = match kind {
                Some(kind) if !owners.is_empty() => format!(
                    "not valid for kind = {kind:?} (only for kind {})",
                    owners.join(" or ")
                ),
                _ => {
                    let mut message =
                        format!("unknown key (expected one of: {})", allowed.join(", "));
                    if let Some(close) = closest(name, allowed.iter().copied()) {
                        message += &format!("; did you mean `{close}`?");
                    }
                    message
                }
            };
            self.report(key.span().start, &sec.key_of(name), message);
        }
    }

    // ---- typed getters: report problems, return None after reporting ----

    /// The key, its position and its value; reports an absent required key.
    fn lookup<'t, 'i>(
        &mut self,
        sec: &Section<'t, 'i>,
        name: &str,
        need: Need<'_>,
    ) -> Option<(String, usize, &'t Spanned<DeValue<'i>>)> {
        let key = sec.key_of(name);
        match sec.get(name) {
            Some((key_span, value)) => Some((key, key_span.span().start, value)),
            None => {
                match need {
                    Need::Optional => {}
                    Need::Required => self.report(sec.at, &key, "missing required key"),
                    Need::RequiredFor(kind) => {
                        let message = format!("missing; required for kind = {kind:?}");
                        self.report(sec.at, &key, message);
                    }
                }
                None
            }
        }
    }

    fn string(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        need: Need<'_>,
    ) -> Option<Located<String>> {
        let (key, at, value) = self.lookup(sec, name, need)?;
        let value = self.expand(&key, at, value)?;
        Some(Located { value, at })
    }

    /// A string that must not be blank, such as a column or database name.
    fn name(&mut self, sec: &Section<'_, '_>, name: &str, need: Need<'_>) -> Option<String> {
        let value = self.string(sec, name, need)?;
        if value.value.trim().is_empty() {
            self.report(value.at, &sec.key_of(name), "must not be empty");
            return None;
        }
        Some(value.value)
    }

    fn path(&mut self, sec: &Section<'_, '_>, name: &str, need: Need<'_>) -> Option<PathBuf> {
        self.name(sec, name, need).map(PathBuf::from)
    }

    fn secret(&mut self, sec: &Section<'_, '_>, name: &str, need: Need<'_>) -> Option<Secret> {
        self.name(sec, name, need).map(Secret::new)
    }

    fn boolean(&mut self, sec: &Section<'_, '_>, name: &str) -> Option<bool> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                let message = format!("expected true or false, found {}", type_name(other));
                self.report(at, &key, message);
                None
            }
        }
    }

    /// An optional integer in `min..=max`.
    fn integer(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
        min: u64,
        max: u64,
    ) -> Option<Located<u64>> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        let value = self.integer_value(&key, at, value, min, max)?;
        Some(Located { value, at })
    }

    fn integer_value(
        &mut self,
        key: &str,
        at: usize,
        value: &Spanned<DeValue<'_>>,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let DeValue::Integer(int) = value.get_ref() else {
            let message = format!("expected an integer, found {}", type_name(value.get_ref()));
            self.report(at, key, message);
            return None;
        };
        let parsed = i128::from_str_radix(int.as_str(), int.radix()).ok();
        match parsed.and_then(|n| u64::try_from(n).ok()) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let message = if max == u64::MAX {
                    format!("must be at least {min}, got {int}")
                } else {
                    format!("must be between {min} and {max}, got {int}")
                };
                self.report(at, key, message);
                None
            }
        }
    }

    /// An optional inline table of strings, such as `cast = { GEO = "nvarchar(max)" }`.
    fn string_map(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
    ) -> Option<BTreeMap<String, String>> {
        let inner = self.section(sec, name, Need::Optional)?;
        let mut out = BTreeMap::new();
        for (k, v) in inner.table.iter() {
            let key = inner.key_of(k.get_ref());
            if let Some(text) = self.expand(&key, v.span().start, v) {
                if text.trim().is_empty() {
                    self.report(v.span().start, &key, "must not be empty");
                } else {
                    out.insert(k.get_ref().to_string(), text);
                }
            }
        }
        Some(out)
    }

    /// An optional array of strings; each element is located at itself.
    fn string_list(
        &mut self,
        sec: &Section<'_, '_>,
        name: &str,
    ) -> Option<Located<Vec<Located<String>>>> {
        let (key, at, value) = self.lookup(sec, name, Need::Optional)?;
        let DeValue::Array(items) = value.get_ref() else {
            let message = format!(
                "expected an array of strings, found {}",
                type_name(value.get_ref())
            );
            self.report(at, &key, message);
            return None;
        };
        let mut list = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let item_key = format!("{key}[{index}]");
            let item_at = item.span().start;
            match self.expand(&item_key, item_at, item) {
                Some(value) => list.push(Located { value, at: item_at }),
                None => ok = false,
            }
        }
        ok.then_some(Located { value: list, at })
    }

    /// A string value with `${VAR}` expanded; reports non-strings and
    /// unexpandable references. Never echoes the value, which may be secret.
    fn expand(&mut self, key: &str, at: usize, value: &Spanned<DeValue<'_>>) -> Option<String> {
        let DeValue::String(text) = value.get_ref() else {
            let message = format!("expected a string, found {}", type_name(value.get_ref()));
            self.report(at, key, message);
            return None;
        };
        let (expanded, problems) = expand(text, self.env);
        for problem in &problems {
            self.report(at, key, problem.to_string());
        }
        problems.is_empty().then_some(expanded)
    }
}

/// `parent.name`, quoting `name` when it is not a bare TOML key.
/// The tables on a shortest cycle from `start` back to itself, following "waits for" edges
/// inside the strongly connected component `scc`; `start` is repeated at the end.
fn shortest_cycle<'g>(
    g: &'g petgraph::graph::DiGraph<String, ()>,
    start: petgraph::graph::NodeIndex,
    scc: &[petgraph::graph::NodeIndex],
) -> Vec<&'g str> {
    use petgraph::Direction::Incoming;
    let mut prev = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    'search: while let Some(n) = queue.pop_front() {
        for m in g.neighbors_directed(n, Incoming) {
            if !scc.contains(&m) || prev.contains_key(&m) {
                continue;
            }
            prev.insert(m, n);
            if m == start {
                break 'search;
            }
            queue.push_back(m);
        }
    }
    // Walk back from start's predecessor to start, then reverse into waiting order.
    let mut path = vec![start];
    let mut cur = start;
    while let Some(&p) = prev.get(&cur) {
        if p == start {
            break;
        }
        path.push(p);
        cur = p;
    }
    path.push(start);
    path.reverse();
    path.into_iter().map(|n| g[n].as_str()).collect()
}

fn join_key(parent: &str, name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let name = if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    };
    if parent.is_empty() {
        name
    } else {
        format!("{parent}.{name}")
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The candidate closest to `word` within edit distance 2, if any.
pub(super) fn closest<'c>(
    word: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// Byte offset to 1-based line and column (in characters).
struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, line_starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, column + 1)
    }
}
