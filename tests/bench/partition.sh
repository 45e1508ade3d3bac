#!/usr/bin/env bash
# Benchmark (not a test): day-partitioned lake tables. A generated SQLite table of ROWS rows
# (default 2,000,000) whose DAY column spans 1,096 days (three years) or 30 days, with rows in
# day order ("ordered") or in an order unrelated to the day ("shuffled"), is moved into the lake
# (--lake-only) partitioned by day(DAY), and once unpartitioned for comparison. Prints rows/s,
# peak RSS (/usr/bin/time -v) and the number of data files: the peak must not grow with the days.
# Usage: tests/bench/partition.sh [ROWS]     (needs /usr/bin/time and python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
# DAG=/absolute/path/to/dag measures another build of dag (e.g. an older commit) with these scripts.
# shellcheck source=tests/bench/dag.sh
. tests/bench/dag.sh
ROWS=${1:-2000000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

make_source() { # path, days, ordered|shuffled
  python3 - "$@" "$ROWS" <<'PY'
import datetime, random, sqlite3, sys
path, days, order, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
start = datetime.date(2021, 1, 1)
names = [(start + datetime.timedelta(d)).isoformat() for d in range(days)]
rng = random.Random(7)
c = sqlite3.connect(path)
c.execute("CREATE TABLE EVENTS (ID INTEGER PRIMARY KEY, DAY DATE NOT NULL, QTY INT, "
          "AMOUNT DOUBLE, NOTE TEXT)")
def gen():
    for i in range(rows):
        d = i * days // rows if order == "ordered" else rng.randrange(days)
        yield (i, names[d], i % 97, i * 0.25, f"event number {i}")
c.executemany("INSERT INTO EVENTS VALUES (?, ?, ?, ?, ?)", gen())
c.commit()
PY
}

measure() { # name, days, order, partition setting
  local name=$1 days=$2 order=$3 part=$4
  local dir="$WORK/$name"
  mkdir -p "$dir/workflows"
  make_source "$dir/src.db" "$days" "$order"
  printf '[source]\nkind = "sqlite"\npath = "%s"\n\n[lake]\nnamespace = "bench"\npartition = "%s"\npartition_min_rows_per_day = 1\n\n[limits]\nmemory = "1GiB"\n' \
    "$dir/src.db" "$part" >"$dir/workflows/p.toml"
  (cd "$dir" && DAG_PROGRESS=plain /usr/bin/time -v -o "$dir/time.txt" \
      "$DAG" run p --lake-only >"$dir/out.txt" 2>"$dir/err.txt") || {
    echo "$name: dag failed"; cat "$dir/err.txt"; exit 1; }
  (cd "$dir" && "$DAG" status p --json >"$dir/status.json")
  python3 - "$name" "$dir/time.txt" "$dir/status.json" <<'PY'
import json, re, sys
name, time_txt, status = sys.argv[1:4]
t = open(time_txt).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1)
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
st = json.load(open(status))[0]
ex = next(x for x in st["tasks"] if x["stage"] == "extract")
rows = ex["outputs"]["digest"]["rows"]
print(f"{name:<22} rows={rows:>9}  wall={secs:6.2f}s  rows/s={rows / secs:>9,.0f}  "
      f"peak RSS={rss_kb / 1024:6.1f} MiB  reserved={ex['mem_estimate'] / 2**20:6.1f} MiB  "
      f"data files={ex['outputs']['data_files']:>6}  status={st['run']['status']}")
PY
}

echo "dag $("$DAG" --version | cut -d' ' -f2), $(nproc) cores, $ROWS rows; single runs, lake only"
measure unpartitioned-1096d  1096 ordered  off
measure ordered-1096d        1096 ordered  auto
measure shuffled-1096d       1096 shuffled auto
measure ordered-30d          30   ordered  auto
measure shuffled-30d         30   shuffled auto
