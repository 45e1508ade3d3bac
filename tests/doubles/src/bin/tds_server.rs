//! Runs the TDS test server (`dag_doubles::tds`) as its own process, for benchmarks and manual
//! checks with real clients: serves `dbo.ALLTYPES`, `dbo.COMPOSITE` and the wide table
//! `dbo.AGENTSVES` (`--rows N`, default 1,000,000).
//!
//! ```text
//! cargo run --release -p dag-doubles --bin tds_server -- --port 0 --rows 2000000 --log
//! ```
//! Prints `listening on 127.0.0.1:PORT` on stdout once it accepts connections; runs until killed.

use std::io::Write;

use dag_doubles::tds;

fn main() {
    let mut port: u16 = 0;
    let mut rows: u64 = 1_000_000;
    let mut user = "sa".to_string();
    let mut password = "Secret123!".to_string();
    let mut database = "WorldZone".to_string();
    let mut log = false;
    let mut max_packet: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    let usage = "usage: tds_server [--port N] [--rows N] [--user U] [--password P] \
                 [--database D] [--max-packet N] [--log]";
    while let Some(a) = args.next() {
        let mut val = || {
            args.next().unwrap_or_else(|| {
                eprintln!("{a} needs a value\n{usage}");
                std::process::exit(2)
            })
        };
        let num = |s: String| -> u64 {
            s.parse().unwrap_or_else(|_| {
                eprintln!("not a number: {s}\n{usage}");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--port" => port = num(val()) as u16,
            "--rows" => rows = num(val()),
            "--user" => user = val(),
            "--password" => password = val(),
            "--database" => database = val(),
            "--max-packet" => max_packet = Some(num(val()) as usize),
            "--log" => log = true,
            "-h" | "--help" => {
                println!("{usage}");
                return;
            }
            other => {
                eprintln!("unknown argument {other}\n{usage}");
                std::process::exit(2)
            }
        }
    }
    let mut cfg = tds::ServerConfig::new(
        &database,
        &user,
        &password,
        vec![
            tds::fixtures::types_table(),
            tds::fixtures::composite_table(10_000),
            tds::fixtures::wide_table("AGENTSVES", rows),
        ],
    );
    cfg.log_stderr = log;
    cfg.max_packet = max_packet;
    let server = tds::TdsServer::start_on(cfg, port).unwrap_or_else(|e| {
        eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
        std::process::exit(1)
    });
    println!("listening on 127.0.0.1:{}", server.port());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
