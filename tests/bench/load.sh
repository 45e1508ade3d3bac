#!/usr/bin/env bash
# Benchmark (not a test): load a 66-column table of 2,000,000 rows (about 1.4 KB a row) from the
# lake into MariaDB (127.0.0.1:3306, root) and into the StarRocks test double (Stream Load, run
# as its own process). The rows come from the TDS test server through a full `dag run`; the
# figures are those of the load task: rows/s over its duration, and the dag process's peak RSS
# sampled while it ran (the whole run's peak is printed too).
# Usage: tests/bench/load.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-2000000}
# DAG=/absolute/path/to/dag measures another build of dag (e.g. an older commit) with these scripts.
# shellcheck source=tests/bench/dag.sh
. tests/bench/dag.sh
cargo build --release --quiet -p dag-doubles --bins
WORK=$(mktemp -d)
# shellcheck source=tests/bench/servers.sh
. tests/bench/servers.sh
start_tds "$ROWS" TDS_PORT
start_starrocks

measure() { # name, target section
  local name=$1 target=$2 dir="$WORK/$1"
  mkdir -p "$dir/workflows"
  {
    printf 'verify = "count"\n\n[source]\nkind = "mssql"\nhost = "127.0.0.1"\nport = %s\n' "$TDS_PORT"
    printf 'database = "WorldZone"\nuser = "dag"\npassword = "bench"\nencrypt = "off"\n\n'
    printf '[lake]\nnamespace = "bench"\npartition = "off"\n\n%s\n\n[tables]\ninclude = ["AGENTSVES"]\n' "$target"
  } >"$dir/workflows/bench.toml"
  (cd "$dir" && DAG_PROGRESS=plain /usr/bin/time -v -o "$dir/time.txt" \
      "$DAG" run bench >"$dir/out.txt" 2>"$dir/err.txt") &
  local runner=$!
  # Sample the dag process's RSS with timestamps while it runs.
  : >"$dir/rss.txt"
  while kill -0 $runner 2>/dev/null; do
    for p in $(pgrep -f "$DAG run bench" || true); do
      [ -r "/proc/$p/status" ] || continue
      rss=$(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
      [ -n "$rss" ] && echo "$(date -u +%s.%N) $rss" >>"$dir/rss.txt"
    done
    sleep 0.1
  done
  wait $runner || { echo "$name: dag failed"; cat "$dir/err.txt"; exit 1; }
  (cd "$dir" && "$DAG" status bench --json >"$dir/status.json")
  python3 - "$name" "$dir/time.txt" "$dir/status.json" "$dir/rss.txt" <<'PY'
import json, re, sys
from datetime import datetime
name, time_txt, status, rss_txt = sys.argv[1:5]
t = open(time_txt).read()
run_rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
st = json.load(open(status))[0]
load = [x for x in st["tasks"] if x["stage"] == "load"][0]
ex = [x for x in st["tasks"] if x["stage"] == "extract"][0]
rows = ex["outputs"]["digest"]["rows"]
f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
a, b = f(load["started_at"]), f(load["ended_at"])
samples = [tuple(map(float, l.split())) for l in open(rss_txt) if l.strip()]
load_rss = max((kb for ts, kb in samples if a <= ts <= b), default=0)
units = load["outputs"].get("chunks_loaded")
print(f"{name:<10} rows={rows:>9}  load {b - a:6.2f}s  load rows/s={rows / (b - a):>9,.0f}  "
      f"peak RSS during load={load_rss / 1024:6.1f} MiB  whole run peak={run_rss / 1024:6.1f} MiB  "
      f"load reserved={load['mem_estimate'] / 2**20:6.1f} MiB  units={units}  status={st['run']['status']}")
PY
}

DBNAME="dag_bench_$$"
echo "dag $("$DAG" --version | cut -d' ' -f2), $(nproc) cores, $ROWS rows x 66 columns"
measure mariadb "$(printf '[target]\nkind = "mysql"\nurl = "mysql://root@127.0.0.1:3306"\ndatabase = "%s"' "$DBNAME")"
mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`$DBNAME\`" || true
measure starrocks "$(printf '[target]\nkind = "starrocks"\nurl = "%s"\nhttp_url = "%s"\ndatabase = "bench"\nreplication_num = 1' "$SR_MYSQL" "$SR_HTTP")"
