#!/usr/bin/env bash
# Benchmark (not a test): a 66-column table of 2,000,000 rows (about 1.4 KB a row on the wire)
# from the TDS test server, run as its own process, into the local lake with the SQL Server
# connector, reading with 1 and with 4 connections, and once with default limits.
# Prints rows/s and peak RSS of the dag process. Usage: tests/bench/mssql.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-2000000}
# DAG=/absolute/path/to/dag measures another build of dag (e.g. an older commit) with these scripts.
# shellcheck source=tests/bench/dag.sh
. tests/bench/dag.sh
cargo build --release --quiet -p dag-doubles --bins
WORK=$(mktemp -d)
"$PWD/target/release/tds_server" --port 0 --rows "$ROWS" --user dag --password bench \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do grep -q listening "$WORK/server.out" && break; sleep 0.1; done
PORT=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/server.out")

measure() { # name, connections ("" = default limits)
  local name=$1 conns=$2 dir="$WORK/$1"
  mkdir -p "$dir/workflows"
  {
    printf '[source]\nkind = "mssql"\nhost = "127.0.0.1"\nport = %s\ndatabase = "WorldZone"\n' "$PORT"
    printf 'user = "dag"\npassword = "bench"\nencrypt = "off"\n\n[lake]\nnamespace = "bench"\npartition = "off"\n\n'
    printf '[tables]\ninclude = ["AGENTSVES"]\n\n'
    if [ -n "$conns" ]; then
      printf '[limits]\nsource_connections = %s\n\n[table.AGENTSVES]\nconnections = %s\n' "$conns" "$conns"
    fi
  } >"$dir/workflows/bench.toml"
  (cd "$dir" && DAG_PROGRESS=plain /usr/bin/time -v -o "$dir/time.txt" \
      "$DAG" run bench --lake-only >"$dir/out.txt" 2>"$dir/err.txt") || {
    echo "$name: dag failed"; cat "$dir/err.txt"; exit 1; }
  (cd "$dir" && "$DAG" status bench --json >"$dir/status.json")
  python3 - "$name" "$dir/time.txt" "$dir/status.json" <<'PY'
import json, re, sys
from datetime import datetime
name, time_txt, status = sys.argv[1:4]
t = open(time_txt).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1)
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
st = json.load(open(status))[0]
ex = [x for x in st["tasks"] if x["stage"] == "extract"][0]
rows = ex["outputs"]["digest"]["rows"]
f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
ex_secs = (f(ex["ended_at"]) - f(ex["started_at"])).total_seconds()
cpu = re.search(r"Percent of CPU this job got: (\d+)%", t).group(1)
print(f"{name:<22} rows={rows:>9}  wall={secs:6.2f}s  rows/s={rows / secs:>8,.0f}  cpu={cpu}%  "
      f"extract rows/s={rows / ex_secs:>8,.0f}  peak RSS={rss_kb / 1024:6.1f} MiB  "
      f"reserved={ex['mem_estimate'] / 2**20:6.1f} MiB  status={st['run']['status']}")
PY
}

echo "dag $("$DAG" --version | cut -d' ' -f2), $(nproc) cores, TDS test server in its own process"
measure one-connection 1
measure four-connections 4
measure default-limits ""
