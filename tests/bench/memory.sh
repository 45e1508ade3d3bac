#!/usr/bin/env bash
# Benchmark (not a test): does the memory budget hold? For each budget (48MiB, 96MiB, 256MiB,
# 1GiB and the default) and each scenario, one `dag run` in its own process, printing the whole
# process's peak RSS (/usr/bin/time -v) and how much of it was the program's code (file-backed
# pages, the run record's peak_rss_code), the scheduler's peak reservation (the run record's
# peak_reserved), rows/s, the process's RSS while each stage ran (extract, write_iceberg, load,
# verify: the highest over that stage's tasks, from `dag status`), and whether the peak stayed
# within budget + 32 MiB.
#
# Scenarios: tds-1c/2c/4c (the TDS test server's 66-column table, ROWS rows, read with 1, 2 and 4
# connections, lake only), demo (the whole embedded demo), partitioned (a SQLite table of ROWS
# rows over 1,096 days in shuffled day order, partitioned by day, lake only), mariadb and
# starrocks (the 66-column table, 200,000 rows, through the lake into MariaDB at 127.0.0.1:3306
# and into the StarRocks test double, verify by count).
#
# Usage: tests/bench/memory.sh [ROWS] [SCENARIO...]      (default 1,000,000 rows, all scenarios)
#        BUDGETS="48MiB default" tests/bench/memory.sh   (a subset of the budgets)
#        DAG=/absolute/path/to/dag tests/bench/memory.sh (another build of dag)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-1000000}
shift || true
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(tds-1c tds-2c tds-4c demo partitioned mariadb starrocks)
read -r -a BUDGET_LIST <<<"${BUDGETS:-48MiB 96MiB 256MiB 1GiB default}"
LOAD_ROWS=200000
# shellcheck source=tests/bench/dag.sh
. tests/bench/dag.sh
cargo build --release --quiet -p dag-doubles --bins
WF="$PWD/workflows"
WORK=$(mktemp -d)
# shellcheck source=tests/bench/servers.sh
. tests/bench/servers.sh
start_tds "$ROWS" TDS_PORT
start_tds "$LOAD_ROWS" TDS_LOAD_PORT
start_starrocks

mssql_source() { # port
  printf '[source]\nkind = "mssql"\nhost = "127.0.0.1"\nport = %s\ndatabase = "WorldZone"\n' "$1"
  printf 'user = "dag"\npassword = "bench"\nencrypt = "off"\n\n'
}

# The demo's and the partitioned scenario's sources are made once, outside the measurements.
mkdir -p "$WORK/demo-src/state"
(cd "$WORK/demo-src" && "$DAG" --workflows "$WF" plan demo >/dev/null)
python3 - "$WORK/events.db" "$ROWS" <<'PY'
import datetime, random, sqlite3, sys
path, rows = sys.argv[1], int(sys.argv[2])
start = datetime.date(2021, 1, 1)
names = [(start + datetime.timedelta(d)).isoformat() for d in range(1096)]
rng = random.Random(7)
c = sqlite3.connect(path)
c.execute("CREATE TABLE EVENTS (ID INTEGER PRIMARY KEY, DAY DATE NOT NULL, QTY INT, "
          "AMOUNT DOUBLE, NOTE TEXT)")
c.executemany("INSERT INTO EVENTS VALUES (?, ?, ?, ?, ?)",
              ((i, names[rng.randrange(1096)], i % 97, i * 0.25, f"event number {i}")
               for i in range(rows)))
c.commit()
PY

# Writes the scenario's workflow into $dir/workflows and prints the dag arguments that run it.
setup() { # scenario, dir
  local s=$1 dir=$2 wf
  mkdir -p "$dir/workflows" "$dir/state"
  wf="$dir/workflows/bench.toml"
  case $s in
    tds-*c)
      local n=${s#tds-}; n=${n%c}
      { mssql_source "$TDS_PORT"
        printf '[lake]\nnamespace = "bench"\npartition = "off"\n\n[tables]\ninclude = ["AGENTSVES"]\n\n'
        printf '[limits]\nsource_connections = %s\n\n[table.AGENTSVES]\nconnections = %s\n' "$n" "$n"
      } >"$wf"
      echo "run bench --lake-only" ;;
    demo)
      mkdir -p "$dir/state/demo"
      cp "$WORK/demo-src/state/demo/worldzone.db" "$dir/state/demo/"
      echo "--workflows $WF run demo" ;;
    partitioned)
      printf '[source]\nkind = "sqlite"\npath = "%s"\n\n[lake]\nnamespace = "bench"\npartition = "auto"\npartition_min_rows_per_day = 1\n' \
        "$WORK/events.db" >"$wf"
      echo "run bench --lake-only" ;;
    mariadb)
      { printf 'verify = "count"\n\n'; mssql_source "$TDS_LOAD_PORT"
        printf '[lake]\nnamespace = "bench"\npartition = "off"\n\n[tables]\ninclude = ["AGENTSVES"]\n\n'
        printf '[target]\nkind = "mysql"\nurl = "mysql://root@127.0.0.1:3306"\ndatabase = "dag_membench_%s"\n' "$$"
      } >"$wf"
      echo "run bench" ;;
    starrocks)
      { printf 'verify = "count"\n\n'; mssql_source "$TDS_LOAD_PORT"
        printf '[lake]\nnamespace = "bench"\npartition = "off"\n\n[tables]\ninclude = ["AGENTSVES"]\n\n'
        printf '[target]\nkind = "starrocks"\nurl = "%s"\nhttp_url = "%s"\ndatabase = "bench"\nreplication_num = 1\n' \
          "$SR_MYSQL" "$SR_HTTP"
      } >"$wf"
      echo "run bench" ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
}

measure() { # scenario, budget
  local s=$1 budget=$2 dir="$WORK/$1-$2" args mem=()
  args=$(setup "$s" "$dir")
  [ "$budget" = default ] || mem=(--memory "$budget")
  # shellcheck disable=SC2086
  (cd "$dir" && DAG_PROGRESS=plain /usr/bin/time -v -o "$dir/time.txt" \
      "$DAG" $args "${mem[@]}" >"$dir/out.txt" 2>"$dir/err.txt") || {
    echo "$s at $budget: dag failed"; tail -5 "$dir/err.txt"; return 0; }
  local wfname=bench
  [ "$s" = demo ] && wfname=demo
  if [ "$s" = demo ]; then
    (cd "$dir" && "$DAG" --workflows "$WF" status "$wfname" --json >"$dir/status.json")
  else
    (cd "$dir" && "$DAG" status "$wfname" --json >"$dir/status.json")
  fi
  [ "$s" = mariadb ] && mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS dag_membench_$$" || true
  python3 - "$s" "$budget" "$dir/time.txt" "$dir/status.json" "$dir/err.txt" <<'PY'
import json, re, sys
scenario, budget, time_txt, status, err = sys.argv[1:6]
t = open(time_txt).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1)
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
st = json.load(open(status))[0]
run = st["run"]
rows = sum(x["outputs"].get("digest", {}).get("rows", 0)
           for x in st["tasks"] if x["stage"] == "extract")
limit = run["memory_budget"] + (32 << 20)
verdict = "ok" if rss <= limit else f"OVER by {(rss - limit) / 2**20:.1f} MiB"
reserved = (run.get("peak_reserved") or 0) / 2**20
warned = "warned" if "over the memory budget" in open(err).read() else ""
# The process's RSS while each stage ran (the highest over the stage's tasks), in MiB.
stages = {}
for x in st["tasks"]:
    if x.get("peak_rss"):
        stages[x["stage"]] = max(stages.get(x["stage"], 0), x["peak_rss"])
by_stage = "/".join(f"{stages[k] / 2**20:.0f}" if k in stages else "-"
                    for k in ("extract", "write_iceberg", "load", "verify"))
code = (run.get("peak_rss_code") or 0) / 2**20
print(f"{scenario:<12} {budget:>8} {rows:>9} {secs:8.2f} {rows / secs:>10,.0f} "
      f"{rss / 2**20:9.1f} {code:8.1f} {reserved:9.1f} {run['memory_budget'] / 2**20:9.0f}  "
      f"{by_stage:<16} {run['status']:<9} {verdict} {warned}")
PY
}

echo "dag $("$DAG" --version | cut -d' ' -f2), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); single runs"
printf '%-12s %8s %9s %8s %10s %9s %8s %9s %9s  %-16s %s\n' scenario budget rows "wall s" "rows/s" \
  "RSS MiB" "code MiB" "rsv MiB" "bgt MiB" "RSS e/w/l/v MiB" "status / within budget+32MiB"
for s in "${SCENARIOS[@]}"; do
  for b in "${BUDGET_LIST[@]}"; do
    measure "$s" "$b"
  done
done
