//! The opt-in live suite: with `MSSQL_URL` set (an ADO.NET connection string), a scratch schema
//! with a table of edge values is created on that real SQL Server, moved by `dag`, and dropped.
//! The edge values are the acceptance list's; `dag`'s own verification (source digest taken
//! while extracting vs. the lake read back) must pass, and the lake's row count must match.

use crate::support::*;

const DDL: &str = "CREATE TABLE {T} (
  ID int NOT NULL PRIMARY KEY,
  D38_10 decimal(38,10), D38_0 decimal(38,0), M money, SM smallmoney,
  DT2 datetime2(7), DTO datetimeoffset(7), DT datetime, TI tinyint,
  NV nvarchar(max), VB varbinary(max), G uniqueidentifier, E nvarchar(10))";

const ROWS: &[&str] = &[
    "(1, 9999999999999999999999999999.9999999999, 99999999999999999999999999999999999999, \
      922337203685477.5807, 214748.3647, '9999-12-31T23:59:59.9999999', \
      '2024-01-01T00:00:00.0000001+14:00', '2024-02-29T23:59:59.997', 255, \
      N'Grüße 東京 😀', 0x00FF10, '6F9619FF-8B86-D011-B42D-00C04FD430C8', N'')",
    "(2, -9999999999999999999999999999.9999999999, -99999999999999999999999999999999999999, \
      -922337203685477.5808, -214748.3648, '0001-01-01T00:00:00', \
      '2024-01-01T00:00:00-12:00', '1753-01-01T00:00:00', 0, \
      REPLICATE(CAST(N'x' AS nvarchar(max)), 5000000), CAST(REPLICATE(CAST('y' AS varchar(max)), 70000) AS varbinary(max)), NULL, NULL)",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
];

async fn exec(url: &str, sql: &str) {
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    let config = tiberius::Config::from_ado_string(url).expect("MSSQL_URL is an ADO.NET string");
    let tcp = tokio::net::TcpStream::connect(config.get_addr())
        .await
        .expect("connect to MSSQL_URL");
    let mut client = tiberius::Client::connect(config, tcp.compat_write())
        .await
        .expect("log in to MSSQL_URL");
    if let Err(e) = client.execute(sql, &[]).await {
        panic!("{sql}: {e}");
    }
}

pub fn run(url: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let schema = format!("dag_it_{}", std::process::id());
    let table = format!("[{schema}].[EDGES]");
    rt.block_on(async {
        exec(url, &format!("CREATE SCHEMA [{schema}]")).await;
        exec(url, &DDL.replace("{T}", &table)).await;
        for r in ROWS {
            exec(url, &format!("INSERT INTO {table} VALUES {r}")).await;
        }
    });
    let env = Env::new();
    env.workflow(
        "live",
        &format!(
            "[source]\nkind = \"mssql\"\nurl = \"${{MSSQL_URL}}\"\nschema = \"{schema}\"\n\n\
             [lake]\nnamespace = \"live\"\n\n[limits]\nmemory = \"512MiB\"\n"
        ),
    );
    let r = env.dag(&["run", "live", "--lake-only"]);
    rt.block_on(async {
        exec(url, &format!("DROP TABLE {table}")).await;
        exec(url, &format!("DROP SCHEMA [{schema}]")).await;
    });
    assert_eq!(r.code, Some(0), "{r:?}");
    let verify = env.task("live", "EDGES", "verify");
    assert_eq!(verify["status"], "succeeded", "{verify}");
    assert_eq!(verify["outputs"]["lake"]["rows"], 3, "{verify}");
    let extract = env.task("live", "EDGES", "extract");
    // 9999-12-31 23:59:59.9999999 and +14:00 .0000001 lose their 100 ns digit.
    assert_eq!(extract["outputs"]["lossy"]["DT2"], 1, "{extract}");
    assert_eq!(extract["outputs"]["lossy"]["DTO"], 1, "{extract}");
}
