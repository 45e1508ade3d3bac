#!/usr/bin/env bash
# Benchmark (not a test): wall time, rows/s and peak RSS of the whole demo, of the 9,066 x 66
# AGENTSVES table alone, and of the 1M-row TRANSACTIONS table alone into the lake.
# Usage: tests/bench/demo.sh [--memory SIZE]     (needs /usr/bin/time and python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
# DAG=/absolute/path/to/dag measures another build of dag (e.g. an older commit) with these scripts.
# shellcheck source=tests/bench/dag.sh
. tests/bench/dag.sh
WF="$PWD/workflows"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
extra=("$@")

# The demo source is generated once, outside the measurements.
mkdir -p "$WORK/src/state"
(cd "$WORK/src" && "$DAG" --workflows "$WF" plan demo >/dev/null)
SRC_DB="$WORK/src/state/demo/worldzone.db"

measure() { # name, then dag arguments
  local name=$1; shift
  local dir="$WORK/$name"
  mkdir -p "$dir/state/demo"
  cp "$SRC_DB" "$dir/state/demo/worldzone.db"
  (cd "$dir" && DAG_PROGRESS=plain /usr/bin/time -v -o "$dir/time.txt" \
      "$DAG" --workflows "$WF" "$@" ${extra[@]+"${extra[@]}"} >"$dir/out.txt" 2>"$dir/err.txt") || {
    echo "$name: dag failed"; cat "$dir/err.txt"; exit 1; }
  (cd "$dir" && "$DAG" status demo --json >"$dir/status.json")
  python3 - "$name" "$dir/time.txt" "$dir/status.json" <<'PY'
import json, re, sys
name, time_txt, status = sys.argv[1:4]
t = open(time_txt).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1)
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
st = json.load(open(status))[0]
tasks = st["tasks"]
rows = sum(x["outputs"].get("digest", {}).get("rows", 0) for x in tasks if x["stage"] == "extract")
def dur(x):
    from datetime import datetime
    f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (f(x["ended_at"]) - f(x["started_at"])).total_seconds()
lake = [x for x in tasks if x["stage"] in ("extract", "write_iceberg")]
lake_secs = sum(dur(x) for x in lake)
print(f"{name:<26} rows={rows:>9}  wall={secs:6.2f}s  rows/s={rows / secs:>10,.0f}  "
      f"to-lake rows/s={rows / lake_secs if lake_secs else 0:>10,.0f}  peak RSS={rss_kb / 1024:6.1f} MiB  "
      f"status={st['run']['status']}")
PY
}

echo "dag $("$DAG" --version | cut -d' ' -f2), $(nproc) cores; figures below are single runs"
measure demo-all            run demo
measure agentsves-alone     run demo --tables AGENTSVES
measure transactions-lake   run demo --tables TRANSACTIONS --lake-only
measure transactions-all    run demo --tables TRANSACTIONS
