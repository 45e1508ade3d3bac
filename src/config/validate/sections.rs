//! The workflow's `[source]`, `[lake]` (with `[lake.s3]`), `[target]` and `[limits]`
//! sections: each reads its keys with the typed getters and checks what only makes
//! sense together (a `url` or host/database/user, credentials for an S3 warehouse,
//! Stream Load needing `http_url`).

use std::path::PathBuf;

use toml::de::DeValue;

use super::keys::{LAKE_KEYS, LAKE_S3_KEYS, LIMITS_KEYS, SOURCE_KEYS, TARGET_KEYS};
use super::text::{join_key, type_name};
use super::{Located, Need, Section, Validator};
use crate::config::{
    CatalogKind, DEFAULT_OPEN_PARTITIONS, DEFAULT_PARTITION_MIN_ROWS, Distribution, Encrypt,
    LakeConfig, LakePartition, Limits, LoadMode, MIN_MEMORY, MssqlSettings, MysqlTargetConfig,
    RestCatalogConfig, S3Settings, Secret, SourceConfig, StarRocksConfig, TableModel, TargetConfig,
    parse_size,
};

impl Validator<'_> {
    pub(super) fn source(&mut self, root: &Section<'_, '_>) -> Option<SourceConfig> {
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

    pub(super) fn mssql(&mut self, sec: &Section<'_, '_>) -> Option<MssqlSettings> {
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

    /// `[lake] retention`: `0`, or a duration such as `"36h"` or `"7d"`, up to ten years.
    pub(super) fn retention(&mut self, sec: &Section<'_, '_>) -> Option<u64> {
        self.duration(
            sec,
            "retention",
            0,
            3650 * 86_400,
            "e.g. 0, \"36h\", \"7d\"",
        )
    }

    pub(super) fn lake(&mut self, root: &Section<'_, '_>) -> Option<LakeConfig> {
        let sec = self.section(root, "lake", Need::Required)?;
        let catalog = self.string(&sec, "catalog", Need::Optional);
        let kind = catalog.as_ref().map_or("sql", |c| c.value.as_str());
        let known = ["sql", "rest"].contains(&kind);
        self.check_keys(&sec, &LAKE_KEYS, known.then_some(kind));
        if !known && let Some(catalog) = &catalog {
            let message = format!(
                "{:?} is not a supported catalog (expected one of: sql, rest)",
                catalog.value
            );
            self.report(catalog.at, &sec.key_of("catalog"), message);
        }
        let (uri, catalog_kind) = if kind == "rest" {
            let uri = self.string(&sec, "uri", Need::RequiredFor("rest"));
            if let Some(u) = &uri
                && !(u.value.starts_with("http://") || u.value.starts_with("https://"))
            {
                let message = format!(
                    "{:?} is not a REST catalog URL (expected http://host:port[/path] or \
                     https://...)",
                    u.value
                );
                self.report(u.at, &sec.key_of("uri"), message);
            }
            let token = self.secret(&sec, "token", Need::Optional);
            let credential = self.secret(&sec, "credential", Need::Optional);
            if token.is_some() && credential.is_some() {
                self.report(
                    sec.at,
                    &sec.key,
                    "set either token or credential for the REST catalog, not both",
                );
            }
            let rest = RestCatalogConfig {
                warehouse: self.name(&sec, "catalog_warehouse", Need::Optional),
                token,
                credential,
                oauth_uri: self.name(&sec, "oauth_uri", Need::Optional),
                scope: self.name(&sec, "scope", Need::Optional),
            };
            (uri.map(|u| u.value), CatalogKind::Rest(rest))
        } else {
            (self.name(&sec, "uri", Need::Optional), CatalogKind::Sql)
        };
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
        let per_day = self.integer(&sec, "partition_min_rows_per_day", 0, u64::MAX);
        let open_partitions = self.integer(&sec, "open_partitions", 1, 1024);
        let retention = self.retention(&sec);
        Some(LakeConfig {
            catalog: catalog_kind,
            uri,
            catalog_name: catalog_name.unwrap_or_else(|| "dag".to_owned()),
            warehouse,
            namespace: namespace?.value,
            partition: partition.unwrap_or_default(),
            partition_min_rows: partition_min_rows.map_or(DEFAULT_PARTITION_MIN_ROWS, |n| n.value),
            partition_min_rows_per_day: per_day
                .map_or(crate::config::DEFAULT_PARTITION_MIN_ROWS_PER_DAY, |n| {
                    n.value
                }),
            open_partitions: open_partitions.map_or(DEFAULT_OPEN_PARTITIONS, |n| n.value as usize),
            retention_secs: retention.unwrap_or(crate::config::DEFAULT_LAKE_RETENTION_SECS),
            s3,
        })
    }

    /// The S3 settings of an `s3://` warehouse, from `[lake.s3]` and the environment. Reports
    /// `[lake.s3]` beside a local warehouse, other URL schemes and missing credentials.
    pub(super) fn lake_s3(
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

    pub(super) fn target(&mut self, root: &Section<'_, '_>) -> Option<TargetConfig> {
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
                insert_bytes: insert_bytes.unwrap_or(1 << 20),
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

    pub(super) fn limits(&mut self, root: &Section<'_, '_>) -> Limits {
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

    pub(super) fn memory(&mut self, sec: &Section<'_, '_>) -> Option<u64> {
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
}
