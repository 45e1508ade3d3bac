//! Runs the StarRocks test double (`dag_doubles::starrocks`) as its own process, for benchmarks
//! and manual checks with real clients (curl, the mariadb client).
//!
//! ```text
//! cargo run --release -p dag-doubles --bin starrocks_server -- [--count-only] [--log]
//! ```
//! Prints `listening on 127.0.0.1:PORT mysql mysql://root:secret@127.0.0.1:PORT http
//! http://127.0.0.1:PORT` once it accepts connections; runs until killed. `--count-only` keeps
//! no loaded cells (only row counts), so a multi-million-row load measures the loader, not the
//! double's memory.

use std::io::Write;

use dag_doubles::starrocks;

fn main() {
    let mut cfg = starrocks::DoubleConfig::default();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--count-only" => starrocks::set_discard_rows(true),
            "--log" => cfg.log_stderr = true,
            other => {
                eprintln!(
                    "unknown argument {other}\nusage: starrocks_server [--count-only] [--log]"
                );
                std::process::exit(2);
            }
        }
    }
    let sr = starrocks::StarRocksDouble::start(cfg);
    println!(
        "listening on 127.0.0.1:{} mysql {} http {}",
        sr.mysql_port(),
        sr.mysql_url(),
        sr.http_url()
    );
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
