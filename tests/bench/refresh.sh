#!/usr/bin/env bash
# Benchmark (not a test): ten full refreshes of the demo's lake tables in a row, once with the
# default `[lake] retention` (a week: every refresh stays as a snapshot to go back to) and once
# with `retention = 0` (only the current snapshot and the one before it). Prints each refresh's
# wall time and the lake's size and snapshot count after it, so the cost of keeping history is a
# figure, not a guess.
# Usage: tests/bench/refresh.sh [REFRESHES]      (needs python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/bench/dag.sh
. tests/bench/dag.sh
N="${1:-10}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

WF="$PWD/workflows"
mkdir -p "$WORK/src/state"
(cd "$WORK/src" && "$DAG" --workflows "$WF" plan demo >/dev/null)
SRC_DB="$WORK/src/state/demo/worldzone.db"
[ -f "$SRC_DB" ] || { echo "the demo source was not generated"; exit 1; }

series() { # name, retention line for [lake] (empty: the default)
  local name=$1 retention=$2 dir="$WORK/$1"
  mkdir -p "$dir/wf" "$dir/state/demo"
  cp "$SRC_DB" "$dir/state/demo/worldzone.db"
  python3 - "$PWD/workflows/demo.toml" "$dir/wf/demo.toml" "$retention" <<'PY'
import sys
src, dst, line = sys.argv[1:4]
text = open(src).read()
if line:
    text = text.replace("[lake]\n", "[lake]\n" + line + "\n", 1)
open(dst, "w").write(text)
PY
  echo "-- $name (${retention:-default retention})"
  for i in $(seq 1 "$N"); do
    local t0 t1
    t0=$(date +%s.%N)
    (cd "$dir" && DAG_PROGRESS=plain "$DAG" --workflows "$dir/wf" run demo --lake-only \
        >"$dir/out.txt" 2>"$dir/err.txt") || { echo "refresh $i failed"; cat "$dir/err.txt"; exit 1; }
    t1=$(date +%s.%N)
    (cd "$dir" && "$DAG" --workflows "$dir/wf" status demo --json >"$dir/status.json")
    python3 - "$i" "$t0" "$t1" "$dir/state/warehouse" "$dir/status.json" <<'PY'
import json, os, sys
i, t0, t1, wh, status = sys.argv[1:6]
size = files = 0
for root, _, names in os.walk(wh):
    for n in names:
        size += os.path.getsize(os.path.join(root, n))
        files += 1
tasks = json.load(open(status))[0]["tasks"]
snaps = {t["table"]: t["outputs"].get("snapshots") for t in tasks if t["stage"] == "write_iceberg"}
print(f"refresh {int(i):>2}: {float(t1) - float(t0):6.2f}s  lake {size / 2**20:8.1f} MiB in "
      f"{files:>5} files  snapshots per table {sorted(set(snaps.values()))}")
PY
  done
}

echo "dag $("$DAG" --version | cut -d' ' -f2), $(nproc) cores, $N refreshes of the demo (lake only)"
series keep-history ""
series retention-0 "retention = 0"
