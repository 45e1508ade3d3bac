//! The keys each section of a workflow file accepts, in one place: unknown keys are
//! reported with these lists (and a spelling hint), and keys of another `kind` get
//! their own message.

/// Keys a section accepts: `common` ones, plus those of its `kind`.
pub(super) struct Keys {
    pub(super) common: &'static [&'static str],
    pub(super) by_kind: &'static [(&'static str, &'static [&'static str])],
}

pub(super) const ROOT_KEYS: Keys = Keys {
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

pub(super) const SOURCE_KEYS: Keys = Keys {
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

pub(super) const LAKE_KEYS: Keys = Keys {
    common: &[
        "catalog",
        "uri",
        "catalog_name",
        "warehouse",
        "namespace",
        "partition",
        "partition_min_rows",
        "partition_min_rows_per_day",
        "open_partitions",
        "retention",
        "s3",
    ],
    by_kind: &[
        ("sql", &[]),
        (
            "rest",
            &[
                "catalog_warehouse",
                "token",
                "credential",
                "oauth_uri",
                "scope",
            ],
        ),
    ],
};

pub(super) const LAKE_S3_KEYS: Keys = Keys {
    common: &[
        "endpoint",
        "region",
        "access_key_id",
        "secret_access_key",
        "path_style",
    ],
    by_kind: &[],
};

pub(super) const TARGET_KEYS: Keys = Keys {
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

pub(super) const LIMITS_KEYS: Keys = Keys {
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

pub(super) const TABLES_KEYS: Keys = Keys {
    common: &["include", "exclude"],
    by_kind: &[],
};

pub(super) const OVERRIDE_KEYS: Keys = Keys {
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
