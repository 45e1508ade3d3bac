#!/usr/bin/env bash
# Benchmark (not a test): a nightly incremental run against the full refresh it replaces.
# The demo's 1M-row TRANSACTIONS table (an append-only ledger, cursor TXN_ID) is moved once in
# full into the lake and an SQLite target; then NEW_ROWS new rows arrive (default 10,000, 1%) and
# the incremental run moves only those; a third run finds nothing new. Prints rows moved, wall
# time, peak RSS and the verify task's time (it scans the whole target) of each run.
# Usage: tests/bench/incremental.sh [NEW_ROWS]     (needs /usr/bin/time and python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
# DAG=/absolute/path/to/dag measures another build of dag (e.g. an older commit) with these scripts.
# shellcheck source=tests/bench/dag.sh
. tests/bench/dag.sh
NEW=${1:-10000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The demo source, generated outside the measurements.
REPO=$PWD
mkdir -p "$WORK/gen"
(cd "$WORK/gen" && "$DAG" --workflows "$REPO/workflows" plan demo >/dev/null)
SRC="$WORK/src.db"
cp "$WORK/gen/state/demo/worldzone.db" "$SRC"

mkdir -p "$WORK/wf"
cat >"$WORK/wf/nightly.toml" <<TOML
[source]
kind = "sqlite"
path = "$SRC"

[lake]
namespace = "nightly"

[target]
kind = "sqlite"
path = "$WORK/target.db"

[tables]
include = ["TRANSACTIONS"]

[table.TRANSACTIONS]
mode = "incremental"
cursor = "TXN_ID"
TOML

run() { # label
  (cd "$WORK" && DAG_PROGRESS=plain /usr/bin/time -v -o "$WORK/$1.time" \
      "$DAG" --state "$WORK/state" --workflows "$WORK/wf" run nightly >"$WORK/$1.out" 2>&1) || {
    echo "$1: dag failed"; cat "$WORK/$1.out"; exit 1; }
  "$DAG" --state "$WORK/state" --workflows "$WORK/wf" status nightly --json >"$WORK/$1.json"
  python3 - "$1" "$WORK/$1.time" "$WORK/$1.json" <<'PY'
import json, re, sys
label, time_txt, status = sys.argv[1:4]
t = open(time_txt).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
s = json.load(open(status))[0]
rows = next(x for x in s["tasks"] if x["stage"] == "extract")["outputs"]["digest"]["rows"]
import datetime as dt
def took(stage):
    t = next(x for x in s["tasks"] if x["stage"] == stage)
    iso = lambda v: dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    return (iso(t["ended_at"]) - iso(t["started_at"])).total_seconds()
wm = s["watermarks"][0]["value"]
print(f"{label:<12} rows moved {rows:>9,}  wall {secs:6.2f} s  peak RSS {rss:6.1f} MiB  "
      f"verify {took('verify'):5.2f} s  status {s['run']['status']}  watermark {wm}")
PY
}

run full
python3 - "$SRC" "$NEW" <<'PY'
import sqlite3, sys
src, new = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(src)
top = c.execute("SELECT MAX(TXN_ID) FROM TRANSACTIONS").fetchone()[0]
c.execute(
    "INSERT INTO TRANSACTIONS SELECT TXN_ID + ?, AGENT_ID, AMOUNT, CURRENCY, BOOKED_AT, VALUE_DATE, "
    "STATUS, NOTE FROM TRANSACTIONS WHERE TXN_ID <= ?", (top, new))
c.commit()
PY
run incremental
run nothing-new
