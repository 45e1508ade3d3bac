//! Workflow-file tests: every problem reported at once with its location, interpolation, secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

const FILE: &str = "workflows/demo.toml";

fn env(name: &str) -> Option<String> {
    match name {
        "TARGET_URL" => Some("mysql://loader:hunter2@db:9030".to_owned()),
        "MSSQL_URL" => Some("mssql://sa:s3cret@sql:1433/WorldZone".to_owned()),
        "STATE" => Some("state".to_owned()),
        _ => None,
    }
}

fn parse_ok(text: &str) -> Workflow {
    match parse(text, Path::new(FILE), &env) {
        Ok(workflow) => workflow,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

fn parse_err(text: &str) -> Vec<String> {
    match parse(text, Path::new(FILE), &env) {
        Ok(workflow) => panic!("expected errors, got {workflow:?}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

const MINIMAL: &str = r#"
[source]
kind = "sqlite"
path = "db.sqlite"

[lake]
namespace = "ns"
"#;

#[test]
fn full_file_round_trips() {
    let text = r#"
description = "WorldZone dbo -> lake -> target"
schedule = "0 0 2 * * *"

[source]
kind = "sqlite"
path = "${STATE}/demo/worldzone.db"
generate_demo = true
demo_big_rows = 5_000

[lake]
catalog = "sql"
uri = "sqlite:state/catalog.db"
catalog_name = "wz"
warehouse = "state/warehouse"
namespace = "worldzone"

[target]
kind = "starrocks"
url = "${TARGET_URL}"
database = "wz"
http_url = "http://fe:8030"

[limits]
memory = "1GiB"
source_connections = 4
concurrent_loads = 3
retries = 0
batch_rows = 1024

[tables]
include = ["*"]
exclude = ["TMP_*"]

[table.AGENTSVES]
chunk_key = "AGENT_ID"
chunk_rows = 2000
partition = "HIRE_DATE"
mode = "incremental"
cursor = "UPDATED_AT"
after = ["COUNTRIES"]

[table.COUNTRIES]
"#;
    let workflow = parse_ok(text);
    let expected = Workflow {
        name: "demo".to_owned(),
        path: PathBuf::from(FILE),
        description: Some("WorldZone dbo -> lake -> target".to_owned()),
        schedule: Some("0 0 2 * * *".to_owned()),
        timezone: None,
        overlap: crate::config::Overlap::Skip,
        catch_up: crate::config::CatchUp::Once,
        on_failure: crate::config::OnFailure::Restart,
        history_retention_secs: crate::config::DEFAULT_HISTORY_RETENTION_SECS,
        source: SourceConfig::Sqlite {
            path: PathBuf::from("state/demo/worldzone.db"),
            generate_demo: true,
            demo_big_rows: 5_000,
        },
        lake: LakeConfig {
            catalog: CatalogKind::Sql,
            uri: Some("sqlite:state/catalog.db".to_owned()),
            catalog_name: "wz".to_owned(),
            warehouse: Some(PathBuf::from("state/warehouse")),
            namespace: "worldzone".to_owned(),
            s3: None,
            partition: LakePartition::Auto,
            partition_min_rows: 1000,
            partition_min_rows_per_day: 1000,
            open_partitions: 8,
            retention_secs: crate::config::DEFAULT_LAKE_RETENTION_SECS,
        },
        target: Some(TargetConfig::StarRocks(crate::config::StarRocksConfig {
            url: Secret::new("mysql://loader:hunter2@db:9030"),
            database: "wz".to_owned(),
            http_url: Some("http://fe:8030".to_owned()),
            user: None,
            password: None,
            create_tables: true,
            model: crate::config::TableModel::Duplicate,
            distribution: None,
            buckets: None,
            replication_num: None,
            load: crate::config::LoadMode::Stream,
            lake_catalog: None,
            request_bytes: 100_000_000,
            max_filter_ratio: "0".to_owned(),
            timeout_secs: 600,
        })),
        limits: Limits {
            memory: Some(1 << 30),
            source_connections: 4,
            concurrent_loads: 3,
            retries: 0,
            batch_rows: 1024,
            stop_grace_secs: 30,
        },
        tables: TableSelection::new(vec!["*".to_owned()], vec!["TMP_*".to_owned()]).unwrap(),
        overrides: BTreeMap::from([
            (
                "AGENTSVES".to_owned(),
                TableOverride {
                    chunk_key: Some("AGENT_ID".to_owned()),
                    chunk_rows: Some(2000),
                    partition: Some(PartitionSetting::Column("HIRE_DATE".to_owned())),
                    mode: Mode::Incremental,
                    cursor: Some("UPDATED_AT".to_owned()),
                    after: vec!["COUNTRIES".to_owned()],
                    ..TableOverride::default()
                },
            ),
            ("COUNTRIES".to_owned(), TableOverride::default()),
        ]),
        verify: crate::config::VerifyMode::Full,
        schema_changes: crate::config::SchemaChanges::Additive,
        raw_hash: workflow.raw_hash.clone(),
    };
    assert_eq!(workflow, expected);
    assert_eq!(workflow.raw_hash.len(), 16);
    assert!(workflow.tables.selects("agentsves"));
    assert!(!workflow.tables.selects("tmp_load"));
    assert_eq!(
        workflow.override_for("agentsves").map(|o| o.mode),
        Some(Mode::Incremental)
    );
}

#[test]
fn defaults_fill_in_optional_keys() {
    let workflow = parse_ok(MINIMAL);
    assert_eq!(workflow.description, None);
    assert_eq!(workflow.schedule, None);
    assert_eq!(
        workflow.source,
        SourceConfig::Sqlite {
            path: PathBuf::from("db.sqlite"),
            generate_demo: false,
            demo_big_rows: 1_000_000,
        }
    );
    assert_eq!(
        workflow.lake,
        LakeConfig {
            catalog: CatalogKind::Sql,
            uri: None,
            catalog_name: "dag".to_owned(),
            warehouse: None,
            namespace: "ns".to_owned(),
            s3: None,
            partition: LakePartition::Auto,
            partition_min_rows: 1000,
            partition_min_rows_per_day: 1000,
            open_partitions: 8,
            retention_secs: crate::config::DEFAULT_LAKE_RETENTION_SECS,
        }
    );
    assert_eq!(workflow.target, None);
    assert_eq!(workflow.limits, Limits::default());
    assert_eq!(workflow.limits.batch_rows, 8192);
    assert_eq!(workflow.tables, TableSelection::default());
    assert!(workflow.tables.selects("ANYTHING"));
    assert!(workflow.overrides.is_empty());
}

#[test]
fn mssql_source_and_mysql_target() {
    let text = r#"
[source]
kind = "mssql"
url = "${MSSQL_URL}"

[lake]
namespace = "wz"

[target]
kind = "mysql"
url = "${TARGET_URL}"
database = "wz"
"#;
    let workflow = parse_ok(text);
    let SourceConfig::Mssql(ms) = &workflow.source else {
        panic!("expected mssql, got {:?}", workflow.source);
    };
    let url = ms.url.as_ref().expect("url");
    assert_eq!(url.expose(), "mssql://sa:s3cret@sql:1433/WorldZone");
    assert_eq!(ms.schema, "dbo");
    assert_eq!(ms.encrypt, crate::config::Encrypt::On);
    assert_eq!(ms.command_timeout_secs, 3600);
    assert_eq!(
        workflow.target,
        Some(TargetConfig::Mysql(crate::config::MysqlTargetConfig {
            url: Secret::new("mysql://loader:hunter2@db:9030"),
            user: None,
            password: None,
            database: "wz".to_owned(),
            create_tables: true,
            insert_bytes: 1 << 20,
        }))
    );
}

#[test]
fn reports_every_problem_at_once_with_locations() {
    let text = r#"description = "broken"
schedule = "every night"
colour = "blue"

[lake]
namespace = "wz"

[limits]
memory = "2 gigs"
retries = 99

[tables]
include = ["A*", "[abc"]
"#;
    let errors = parse_err(text);
    assert_eq!(
        errors,
        vec![
            "workflows/demo.toml:1:1: source: missing required section".to_owned(),
            format!(
                "workflows/demo.toml:2:1: schedule: \"every night\" is not a cron expression ({}); \
                 use \"sec min hour day month weekday\" or a 5-field crontab line",
                "every night".parse::<cron::Schedule>().unwrap_err()
            ),
            "workflows/demo.toml:3:1: colour: unknown key (expected one of: description, \
             schedule, timezone, overlap, catch_up, on_failure, history_retention, source, lake, \
             target, limits, tables, table, verify, schema_changes)"
                .to_owned(),
            "workflows/demo.toml:9:1: limits.memory: \"2 gigs\" is not a size (use e.g. 512MiB, 2GiB)"
                .to_owned(),
            "workflows/demo.toml:10:1: limits.retries: must be between 0 and 20, got 99".to_owned(),
            "workflows/demo.toml:13:18: tables.include[1]: \"[abc\" is not a valid glob: \
             unclosed character class; missing ']'"
                .to_owned(),
        ]
    );
}

#[test]
fn errors_display_with_summary_line() {
    let text = "[source]\nkind = \"sqlite\"\npth = \"x.db\"\n\n[lake]\nnamespace = \"wz\"\n";
    let Err(errors) = parse(text, Path::new(FILE), &env) else {
        panic!("expected errors");
    };
    assert_eq!(
        errors.to_string(),
        "workflows/demo.toml:1:1: source.path: missing; required for kind = \"sqlite\"\n\
         workflows/demo.toml:3:1: source.pth: unknown key (expected one of: kind, path, \
         generate_demo, demo_big_rows); did you mean `path`?\n\
         2 problems in workflows/demo.toml"
    );
}

#[test]
fn keys_of_another_kind_are_rejected() {
    let text = r#"
[source]
kind = "mssql"
url = "${MSSQL_URL}"
generate_demo = true

[lake]
namespace = "wz"

[target]
kind = "mysql"
url = "mysql://x"
database = "d"
http_url = "http://fe:8030"
"#;
    assert_eq!(
        parse_err(text),
        vec![
            "workflows/demo.toml:5:1: source.generate_demo: not valid for kind = \"mssql\" \
             (only for kind \"sqlite\")",
            "workflows/demo.toml:14:1: target.http_url: not valid for kind = \"mysql\" \
             (only for kind \"starrocks\")",
        ]
    );
}

#[test]
fn wrong_types_and_bad_values() {
    let text = r#"
[source]
kind = "postgres"

[lake]
catalog = "glue"
namespace = "world-zone"

[limits]
memory = "8MiB"
source_connections = "2"
batch_rows = 1.5

[table.A]
mode = "incremental"
after = ["a", 3]
"#;
    assert_eq!(
        parse_err(text),
        vec![
            "workflows/demo.toml:3:1: source.kind: \"postgres\" is not a supported source kind \
             (expected one of: sqlite, mssql)",
            "workflows/demo.toml:6:1: lake.catalog: \"glue\" is not a supported catalog \
             (expected one of: sql, rest)",
            "workflows/demo.toml:7:1: lake.namespace: \"world-zone\" is not a namespace \
             (use ASCII letters, digits and '_')",
            "workflows/demo.toml:10:1: limits.memory: 8MiB is below the minimum of 16MiB",
            "workflows/demo.toml:11:1: limits.source_connections: expected an integer, \
             found a string",
            "workflows/demo.toml:12:1: limits.batch_rows: expected an integer, found a float",
            "workflows/demo.toml:15:1: table.A.mode: \"incremental\" needs a `cursor` column",
            "workflows/demo.toml:16:15: table.A.after[1]: expected a string, found an integer",
        ]
    );
}

#[test]
fn table_overrides_cannot_wait_for_themselves_or_repeat() {
    let text = format!(
        "{MINIMAL}\n[table.Orders]\nafter = [\"Customers\", \"ORDERS\"]\n\n[table.ORDERS]\n\n[table.\"dbo.x\"]\nchunk_rows = 0\n"
    );
    // MINIMAL is 7 lines, plus the joining newline.
    assert_eq!(
        parse_err(&text),
        vec![
            "workflows/demo.toml:10:23: table.Orders.after[1]: a table cannot wait for itself",
            "workflows/demo.toml:12:8: table.ORDERS: same table as `table.Orders` \
             (table names are matched case-insensitively)",
            "workflows/demo.toml:15:1: table.\"dbo.x\".chunk_rows: must be at least 1, got 0",
        ]
    );
}

#[test]
fn an_order_cycle_is_reported_at_the_table_declared_first() {
    let text = format!(
        "{MINIMAL}\n[table.Zeta]\nafter = [\"alpha\"]\n\n[table.Alpha]\nafter = [\"Mid\"]\n\n[table.Mid]\nafter = [\"zeta\"]\n"
    );
    // Tables are named as first written in name order (`Alpha`, its `Mid`, then `Mid`'s `zeta`),
    // and the cycle starts at the table declared first in the file.
    assert_eq!(
        parse_err(&text),
        vec![
            "workflows/demo.toml:9:8: table.Zeta.after: the declared table order has a cycle: \
             zeta -> Alpha -> Mid -> zeta",
        ]
    );
}

#[test]
fn syntax_errors_have_their_own_locations() {
    let errors = parse_err("[source]\nkind = \"sqlite\npath = 1\n\n[lake]\nnamespace = \n");
    assert_eq!(
        errors,
        vec![
            "workflows/demo.toml:2:15: invalid basic string, expected `\"`",
            "workflows/demo.toml:6:13: string values must be quoted, expected literal string",
        ]
    );
}

#[test]
fn duplicate_keys_are_syntax_errors() {
    let errors = parse_err("[lake]\nnamespace = \"a\"\nnamespace = \"b\"\n");
    assert_eq!(
        errors,
        vec!["workflows/demo.toml:3:1: duplicate key `namespace`"],
        "{errors:?}"
    );
}

#[test]
fn env_interpolation_expands_escapes_and_reports_missing_variables() {
    let text = format!("description = \"in ${{STATE}}, cost $5, literal $${{STATE}}\"\n{MINIMAL}");
    let workflow = parse_ok(&text);
    assert_eq!(
        workflow.description.as_deref(),
        Some("in state, cost $5, literal ${STATE}")
    );

    let text = "[source]\nkind = \"mssql\"\nurl = \"mssql://${DB_USER}:${DB_PASS}@h\"\n\n[lake]\nnamespace = \"${NS\"\n";
    assert_eq!(
        parse_err(text),
        vec![
            "workflows/demo.toml:3:1: source.url: environment variable `DB_USER` is not set",
            "workflows/demo.toml:3:1: source.url: environment variable `DB_PASS` is not set",
            "workflows/demo.toml:6:1: lake.namespace: unterminated `${` (write `$${` for a literal `${`)",
        ]
    );
}

#[test]
fn raw_hash_is_fnv1a_of_the_expanded_text() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);

    let text = "[source]\nkind = \"mssql\"\nurl = \"${URL}\"\n[lake]\nnamespace = \"n\"\n";
    let hash_with = |url: &'static str| {
        let env = move |name: &str| (name == "URL").then(|| url.to_owned());
        parse(text, Path::new(FILE), &env).unwrap().raw_hash
    };
    let expanded = text.replace("${URL}", "mssql://a");
    assert_eq!(
        hash_with("mssql://a"),
        format!("{:016x}", fnv1a64(expanded.as_bytes()))
    );
    assert_ne!(hash_with("mssql://a"), hash_with("mssql://b"));
}

#[test]
fn secrets_are_redacted() {
    let text = "[source]\nkind = \"mssql\"\nurl = \"${MSSQL_URL}\"\n[lake]\nnamespace = \"n\"\n";
    let workflow = parse_ok(text);
    let debug = format!("{workflow:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("url: Some(***)"), "{debug}");
    let secret = Secret::new("p@ss");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(secret.expose(), "p@ss");
}

#[test]
fn schedules_accept_crontab_lines() {
    let text = format!("schedule = \"30 2 * * *\"\n{MINIMAL}");
    assert_eq!(parse_ok(&text).schedule.as_deref(), Some("0 30 2 * * *"));
}

#[test]
fn table_selection_matches_case_insensitively() {
    let selection = TableSelection::new(
        vec!["agent*".to_owned(), "COUNTRIES".to_owned()],
        vec!["*_TMP".to_owned()],
    )
    .unwrap();
    assert!(selection.selects("AGENTSVES"));
    assert!(selection.selects("countries"));
    assert!(!selection.selects("AGENTS_tmp"));
    assert!(!selection.selects("REGIONS"));
    assert!(TableSelection::new(vec!["[".to_owned()], vec![]).is_err());
}

#[test]
fn parse_size_cases() {
    assert_eq!(parse_size("64MiB"), Ok(64 << 20));
    assert_eq!(parse_size("2GiB"), Ok(2 << 30));
    assert_eq!(parse_size("512MB"), Ok(512_000_000));
    assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
    assert_eq!(parse_size("1048576"), Ok(1_048_576));
    assert_eq!(parse_size(" 16 mib "), Ok(16 << 20));
    for bad in ["", "2 gigs", "GiB", "-1GiB", "1.5", "1e3", "99999999999EiB"] {
        assert!(parse_size(bad).is_err(), "{bad:?} should not parse");
    }
    assert_eq!(
        parse_size("2 gigs"),
        Err("\"2 gigs\" is not a size (use e.g. 512MiB, 2GiB)".to_owned())
    );
}

#[test]
fn resolve_by_name_and_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    std::fs::write(workflows.join("demo.toml"), MINIMAL).unwrap();
    std::fs::write(workflows.join("nightly.toml"), MINIMAL).unwrap();

    assert_eq!(resolve("demo", &workflows), Ok(workflows.join("demo.toml")));

    let by_path = workflows.join("nightly.toml");
    let by_path = by_path.to_str().unwrap();
    assert_eq!(
        resolve(by_path, Path::new("elsewhere")),
        Ok(PathBuf::from(by_path))
    );

    assert_eq!(
        resolve("demoo", &workflows),
        Err(
            "no workflow named \"demoo\" (available: demo, nightly); did you mean `demo`?"
                .to_owned()
        )
    );
    let missing = workflows.join("missing.toml");
    assert!(resolve(missing.to_str().unwrap(), &workflows).is_err());
}

#[test]
fn load_reads_the_file_and_reports_read_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let workflow = load(&path).unwrap();
    assert_eq!(workflow.name, "demo");
    assert_eq!(workflow.path, path);

    let missing = dir.path().join("missing.toml");
    let errors = load(&missing).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!((errors.0[0].line, errors.0[0].column), (0, 0));
    assert!(
        errors.to_string().starts_with(&format!(
            "{}: cannot read workflow file: ",
            missing.display()
        )),
        "{errors}"
    );
}

#[test]
fn mssql_settings_from_separate_keys_and_their_errors() {
    let text = r#"
[source]
kind = "mssql"
host = "sql.example"
port = "1444"
database = "WorldZone"
user = "dag"
password = ""
encrypt = "required"
trust_server_certificate = true
command_timeout = "2h"

[lake]
namespace = "wz"

[table.T]
exclude_columns = ["GEO"]
cast = { LOC = "nvarchar(max)" }
connections = 3
"#;
    let workflow = parse_ok(text);
    let SourceConfig::Mssql(ms) = &workflow.source else {
        panic!("expected mssql");
    };
    assert_eq!(ms.host.as_deref(), Some("sql.example"));
    assert_eq!(ms.port, Some(1444));
    assert_eq!(ms.password.as_ref().map(|p| p.expose()), Some(""));
    assert_eq!(ms.encrypt, crate::config::Encrypt::Required);
    assert!(ms.trust_server_certificate);
    assert_eq!(ms.command_timeout_secs, 7200);
    let ov = workflow.override_for("t").unwrap();
    assert_eq!(ov.exclude_columns, vec!["GEO".to_string()]);
    assert_eq!(
        ov.cast.get("LOC").map(String::as_str),
        Some("nvarchar(max)")
    );
    assert_eq!(ov.connections, Some(3));

    let bad = "[source]\nkind = \"mssql\"\nhost = \"h\"\nport = \"x\"\nencrypt = \"maybe\"\n\
               command_timeout = \"soon\"\n\n[lake]\nnamespace = \"wz\"\n";
    let errs = parse_err(bad).join("\n");
    assert!(
        errs.contains("source.port: \"x\" is not a port number"),
        "{errs}"
    );
    assert!(
        errs.contains("source.encrypt: \"maybe\" is not an encryption mode"),
        "{errs}"
    );
    assert!(
        errs.contains("source.command_timeout: \"soon\" is not a duration"),
        "{errs}"
    );
    assert!(errs.contains("missing: database, user"), "{errs}");
}

#[test]
fn starrocks_target_settings_are_checked_together() {
    let text = r#"verify = "sometimes"

[source]
kind = "sqlite"
path = "x.db"

[lake]
namespace = "wz"

[target]
kind = "starrocks"
url = "mysql://fe:9030"
http_url = "https://fe:8030"
database = "wz-1"
model = "unique"
load = "lake"
max_filter_ratio = "2"
request_bytes = "1KiB"

[table.T]
verify = "count"
"#;
    let errors = parse_err(text);
    for want in [
        "verify: \"sometimes\" is not valid (expected one of: full, count)",
        "target.http_url: \"https://fe:8030\" is not an http:// URL",
        "target.database: \"wz-1\": use letters, digits and `_` only",
        "target.model: \"unique\" is not valid (expected one of: duplicate, primary)",
        "target.load: \"lake\" needs `lake_catalog`",
        "target.max_filter_ratio: \"2\" is not a ratio between 0 and 1",
        "target.request_bytes: 1024 bytes is outside",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{want:?} not in {errors:#?}"
        );
    }
    let ok = parse_ok(
        &text
            .replace("\"sometimes\"", "\"count\"")
            .replace("https://", "http://")
            .replace("wz-1", "wz")
            .replace("\"unique\"", "\"primary\"")
            .replace(
                "load = \"lake\"",
                "load = \"lake\"\nlake_catalog = \"lake\"",
            )
            .replace("\"2\"", "\"0.1\"")
            .replace("1KiB", "64MiB"),
    );
    assert_eq!(ok.verify, crate::config::VerifyMode::Count);
    let Some(TargetConfig::StarRocks(sr)) = &ok.target else {
        panic!("{:?}", ok.target)
    };
    assert_eq!(sr.model, crate::config::TableModel::Primary);
    assert_eq!(sr.load, crate::config::LoadMode::Lake);
    assert_eq!(sr.request_bytes, 64 << 20);
    assert_eq!(sr.timeout_secs, 600);
    assert_eq!(
        ok.override_for("t").and_then(|o| o.verify),
        Some(crate::config::VerifyMode::Count)
    );
}

#[test]
fn schema_changes_by_workflow_and_table() {
    let wf = parse_ok(&format!(
        "schema_changes = \"any\"\n{MINIMAL}\n[table.A]\nschema_changes = \"additive\"\n"
    ));
    assert_eq!(wf.schema_changes, crate::config::SchemaChanges::Any);
    assert_eq!(
        wf.override_for("a").and_then(|o| o.schema_changes),
        Some(crate::config::SchemaChanges::Additive)
    );
    assert_eq!(
        parse_ok(MINIMAL).schema_changes,
        crate::config::SchemaChanges::Additive
    );
    let errors = parse_err(&format!(
        "{MINIMAL}\n[table.A]\nschema_changes = \"drop\"\n"
    ));
    assert!(
        errors.iter().any(|e| e.contains("table.A.schema_changes")
            && e.contains("expected one of: additive, any")),
        "{errors:?}"
    );
}

const S3_SOURCE: &str = r#"
[source]
kind = "sqlite"
path = "demo.db"
"#;

fn s3_env(name: &str) -> Option<String> {
    match name {
        "AWS_ACCESS_KEY_ID" => Some("env-key".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
        "LAKE_SECRET" => Some("file-secret".to_owned()),
        _ => None,
    }
}

#[test]
fn s3_warehouse_with_its_settings() {
    let text = format!(
        r#"{S3_SOURCE}
[lake]
namespace = "ns"
warehouse = "s3://lake-bucket/some/prefix/"

[lake.s3]
endpoint = "http://127.0.0.1:9000/"
region = "eu-west-1"
access_key_id = "file-key"
secret_access_key = "${{LAKE_SECRET}}"
path_style = true
"#
    );
    let wf = parse(&text, Path::new(FILE), &s3_env).unwrap();
    let s3 = wf.lake.s3.clone().expect("s3 settings");
    assert_eq!(wf.lake.warehouse, None);
    assert_eq!(s3.bucket, "lake-bucket");
    assert_eq!(s3.prefix, "some/prefix");
    assert_eq!(s3.url(), "s3://lake-bucket/some/prefix");
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(s3.region, "eu-west-1");
    assert_eq!(s3.access_key_id.expose(), "file-key");
    assert_eq!(s3.secret_access_key.expose(), "file-secret");
    assert!(s3.path_style);
    let shown = format!("{wf:?}");
    assert!(
        !shown.contains("file-secret") && !shown.contains("file-key"),
        "{shown}"
    );
}

#[test]
fn s3_credentials_default_to_the_environment() {
    let text = format!("{S3_SOURCE}\n[lake]\nnamespace = \"ns\"\nwarehouse = \"s3://bkt\"\n");
    let wf = parse(&text, Path::new(FILE), &s3_env).unwrap();
    let s3 = wf.lake.s3.expect("s3 settings");
    assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("bkt", ""));
    assert_eq!(s3.url(), "s3://bkt");
    assert_eq!(s3.endpoint, None);
    assert_eq!(s3.region, "us-east-1");
    assert_eq!(s3.access_key_id.expose(), "env-key");
    assert_eq!(s3.secret_access_key.expose(), "env-secret");
    assert!(!s3.path_style);
    // A key in the file wins over the environment.
    let text = format!("{text}\n[lake.s3]\naccess_key_id = \"mine\"\n");
    let s3 = parse(&text, Path::new(FILE), &s3_env)
        .unwrap()
        .lake
        .s3
        .unwrap();
    assert_eq!(s3.access_key_id.expose(), "mine");
    assert_eq!(s3.secret_access_key.expose(), "env-secret");
}

#[test]
fn s3_settings_errors_name_their_keys() {
    let no_env = |_: &str| None;
    // An S3 warehouse without credentials anywhere.
    let text = format!("{S3_SOURCE}\n[lake]\nnamespace = \"ns\"\nwarehouse = \"s3://bkt/p\"\n");
    let errors: Vec<String> = parse(&text, Path::new(FILE), &no_env)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "workflows/demo.toml:8:1: lake.s3.access_key_id: missing; required for an s3:// \
             warehouse (or set the environment variable AWS_ACCESS_KEY_ID)",
            "workflows/demo.toml:8:1: lake.s3.secret_access_key: missing; required for an s3:// \
             warehouse (or set the environment variable AWS_SECRET_ACCESS_KEY)",
        ]
    );

    // [lake.s3] beside a local warehouse, and a bad value of each kind.
    let text = format!(
        r#"{S3_SOURCE}
[lake]
namespace = "ns"
warehouse = "state/warehouse"

[lake.s3]
region = "eu-west-1"
"#
    );
    assert_eq!(
        parse_err(&text),
        [
            "workflows/demo.toml:10:1: lake.s3: only used with an S3 warehouse; set \
          lake.warehouse = \"s3://bucket/prefix\" or remove [lake.s3]"
        ]
    );
    let text = format!(
        r#"{S3_SOURCE}
[lake]
namespace = "ns"
warehouse = "s3://Bad_Bucket/x"

[lake.s3]
endpoint = "127.0.0.1:9000"
path_style = "yes"
secret = "x"
"#
    );
    assert_eq!(
        parse(&text, Path::new(FILE), &s3_env)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "workflows/demo.toml:8:1: lake.warehouse: \"Bad_Bucket\" is not an S3 bucket name \
             (3 to 63 lowercase letters, digits, '-' and '.')",
            "workflows/demo.toml:11:1: lake.s3.endpoint: \"127.0.0.1:9000\" is not an http:// \
             or https:// URL",
            "workflows/demo.toml:12:1: lake.s3.path_style: expected true or false, found a string",
            "workflows/demo.toml:13:1: lake.s3.secret: unknown key (expected one of: endpoint, \
             region, access_key_id, secret_access_key, path_style)",
        ]
    );
    let text = format!("{S3_SOURCE}\n[lake]\nnamespace = \"ns\"\nwarehouse = \"gs://b/p\"\n");
    assert_eq!(
        parse_err(&text),
        [
            "workflows/demo.toml:8:1: lake.warehouse: \"gs://b/p\": only local directories and \
          s3://bucket/prefix are supported"
        ]
    );
}

#[test]
fn partition_settings_of_the_lake_and_of_tables() {
    let text = format!(
        "{MINIMAL}partition = \"off\"\npartition_min_rows = 50\nopen_partitions = 2\n\n\
         [table.A]\npartition = \"auto\"\npartition_min_rows = 0\n\n\
         [table.B]\npartition = \"off\"\n\n[table.C]\npartition = \"OrderDate\"\n"
    );
    let w = parse_ok(&text);
    assert_eq!(w.lake.partition, LakePartition::Off);
    assert_eq!(w.lake.partition_min_rows, 50);
    assert_eq!(w.lake.open_partitions, 2);
    let a = w.override_for("a").unwrap();
    assert_eq!(a.partition, Some(PartitionSetting::Auto));
    assert_eq!(a.partition_min_rows, Some(0));
    assert_eq!(
        w.override_for("B").unwrap().partition,
        Some(PartitionSetting::Off)
    );
    assert_eq!(
        w.override_for("C").unwrap().partition,
        Some(PartitionSetting::Column("OrderDate".to_owned()))
    );

    let bad = format!(
        "{MINIMAL}partition = \"daily\"\nopen_partitions = 0\npartition_min_rows = -1\n\n\
         [table.A]\npartition = \"\"\npartition_min_rows = \"many\"\n"
    );
    assert_eq!(
        parse_err(&bad),
        vec![
            "workflows/demo.toml:8:1: lake.partition: \"daily\" is not valid (expected one of: \
             auto, off)",
            "workflows/demo.toml:9:1: lake.open_partitions: must be between 1 and 1024, got 0",
            "workflows/demo.toml:10:1: lake.partition_min_rows: must be at least 0, got -1",
            "workflows/demo.toml:13:1: table.A.partition: must not be empty",
            "workflows/demo.toml:14:1: table.A.partition_min_rows: expected an integer, found \
             a string",
        ]
    );
}

#[test]
fn lake_retention() {
    let with = |v: &str| MINIMAL.replace("[lake]\n", &format!("[lake]\nretention = {v}\n"));
    assert!(MINIMAL.contains("[lake]\n"));
    assert_eq!(
        parse_ok(MINIMAL).lake.retention_secs,
        crate::config::DEFAULT_LAKE_RETENTION_SECS
    );
    assert_eq!(parse_ok(&with("\"7d\"")).lake.retention_secs, 7 * 86_400);
    assert_eq!(parse_ok(&with("\"36h\"")).lake.retention_secs, 36 * 3600);
    assert_eq!(parse_ok(&with("0")).lake.retention_secs, 0);
    let errors = parse_err(&with("\"a week\""));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("lake.retention: \"a week\" is not a duration")),
        "{errors:?}"
    );
}

#[test]
fn schedule_policies_and_incremental_refreshes_parse_with_their_defaults() {
    let wf = parse_ok(MINIMAL);
    assert_eq!(wf.timezone, None);
    assert_eq!(wf.overlap, crate::config::Overlap::Skip);
    assert_eq!(wf.catch_up, crate::config::CatchUp::Once);
    assert_eq!(wf.on_failure, crate::config::OnFailure::Restart);
    assert_eq!(wf.limits.stop_grace_secs, 30);
    let text = format!(
        "schedule = \"30 2 * * *\"\ntimezone = \"Europe/Paris\"\noverlap = \"queue\"\n\
         catch_up = \"skip\"\non_failure = \"resume\"\nhistory_retention = \"30d\"\n{MINIMAL}\n\
         [limits]\nstop_grace = \"2m\"\n\n[table.A]\nmode = \"incremental\"\ncursor = \"U\"\n\
         full_refresh = \"weekly\"\n\n[table.B]\nmode = \"incremental\"\ncursor = \"U\"\n\
         full_refresh = \"36h\"\n"
    );
    let wf = parse_ok(&text);
    assert_eq!(wf.schedule.as_deref(), Some("0 30 2 * * *"));
    assert_eq!(wf.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(wf.overlap, crate::config::Overlap::Queue);
    assert_eq!(wf.catch_up, crate::config::CatchUp::Skip);
    assert_eq!(wf.on_failure, crate::config::OnFailure::Resume);
    assert_eq!(wf.history_retention_secs, 30 * 86_400);
    assert_eq!(wf.limits.stop_grace_secs, 120);
    assert_eq!(wf.overrides["A"].full_refresh_secs, Some(7 * 86_400));
    assert_eq!(wf.overrides["B"].full_refresh_secs, Some(36 * 3600));
}

#[test]
fn bad_time_zones_and_refreshes_of_full_tables_are_reported_where_they_are() {
    let text = format!(
        "timezone = \"Europe/Pariss\"\n{MINIMAL}\n[table.A]\nfull_refresh = \"weekly\"\n\n\
         [table.B]\nmode = \"incremental\"\ncursor = \"U\"\nfull_refresh = \"fortnightly\"\n"
    );
    let errors = parse_err(&text);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "workflows/demo.toml:1:1: timezone: \"Europe/Pariss\" is not an IANA time zone"
        ),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with(
            "workflows/demo.toml:11:1: table.A.full_refresh: only an incremental table"
        ),
        "{errors:#?}"
    );
    assert!(
        errors[2].contains("table.B.full_refresh: \"fortnightly\" is not a duration"),
        "{errors:#?}"
    );
}

/// A workflow file whose lake is a REST catalog with the key lines `keys`.
fn rest_lake(keys: &str) -> String {
    format!(
        "\n[source]\nkind = \"sqlite\"\npath = \"db.sqlite\"\n\n[lake]\ncatalog = \"rest\"\n{keys}\
         namespace = \"ns\"\n"
    )
}

#[test]
fn rest_catalogs_take_a_url_and_one_kind_of_credential() {
    let wf = parse_ok(&rest_lake(
        "uri = \"https://catalog.example:8181/api\"\ncredential = \"${MSSQL_URL}\"\n\
         scope = \"PRINCIPAL_ROLE:ALL\"\ncatalog_warehouse = \"lakehouse\"\n",
    ));
    assert_eq!(
        wf.lake.uri.as_deref(),
        Some("https://catalog.example:8181/api")
    );
    let CatalogKind::Rest(rest) = &wf.lake.catalog else {
        panic!("not a REST catalog: {:?}", wf.lake.catalog);
    };
    assert_eq!(
        rest.credential.as_ref().map(Secret::expose),
        Some("mssql://sa:s3cret@sql:1433/WorldZone")
    );
    assert_eq!(rest.token, None);
    assert_eq!(rest.scope.as_deref(), Some("PRINCIPAL_ROLE:ALL"));
    assert_eq!(rest.warehouse.as_deref(), Some("lakehouse"));
    assert!(!format!("{wf:?}").contains("s3cret"), "a secret is printed");

    let errors = parse_err(&rest_lake(
        "uri = \"sqlite:state/catalog.db\"\ntoken = \"t\"\ncredential = \"c\"\n",
    ));
    assert_eq!(
        errors,
        vec![
            "workflows/demo.toml:6:1: lake: set either token or credential for the REST \
             catalog, not both",
            "workflows/demo.toml:8:1: lake.uri: \"sqlite:state/catalog.db\" is not a REST \
             catalog URL (expected http://host:port[/path] or https://...)",
        ]
    );
    let errors = parse_err(&rest_lake("token = \"t\"\n"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("lake.uri"), "{errors:?}");
    // REST-only keys beside the SQL catalog are reported.
    let errors = parse_err(&MINIMAL.replace("[lake]\n", "[lake]\ntoken = \"t\"\n"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("lake.token"), "{errors:?}");
}
