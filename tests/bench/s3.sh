#!/usr/bin/env bash
# Benchmark (not a test): wall time and peak RSS of the whole demo (1M-row TRANSACTIONS, extract,
# lake, SQLite target, full verify) with the lake on local disk and with the lake in S3, served by
# an in-memory moto server on loopback (so the S3 figure measures the S3 protocol path, not a
# network); two alternating rounds. Usage: tests/bench/s3.sh     (needs /usr/bin/time, python3 and moto_server)
set -euo pipefail
cd "$(dirname "$0")/../.."
# DAG=/absolute/path/to/dag measures another build of dag (e.g. an older commit) with these scripts.
# shellcheck source=tests/bench/dag.sh
. tests/bench/dag.sh
WORK=$(mktemp -d)
MOTO_PID=
trap '[ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
curl -fs -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null

# The demo source is generated once, outside the measurements.
mkdir -p "$WORK/wf-local" "$WORK/wf-s3" "$WORK/src/state"
cp workflows/demo.toml "$WORK/wf-local/demo.toml"
python3 - "$PORT" >"$WORK/wf-s3/demo.toml" <<'PY'
import sys
text = open("workflows/demo.toml").read()
lake = '[lake]\nnamespace = "worldzone"\n'
assert lake in text
print(text.replace(lake, lake + 'warehouse = "s3://bench/lake"\n\n[lake.s3]\n'
                   f'endpoint = "http://127.0.0.1:{sys.argv[1]}"\npath_style = true\n'), end="")
PY
(cd "$WORK/src" && "$DAG" --workflows "$WORK/wf-local" plan demo >/dev/null 2>&1)

measure() { # name, round
  local name=$1 dir="$WORK/$1-$2"
  mkdir -p "$dir/state/demo"
  cp "$WORK/src/state/demo/worldzone.db" "$dir/state/demo/worldzone.db"
  (cd "$dir" && AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench DAG_PROGRESS=plain \
      /usr/bin/time -v -o "$dir/time.txt" "$DAG" --workflows "$WORK/wf-$name" run demo \
      >"$dir/out.txt" 2>"$dir/err.txt") || { echo "$name: dag failed"; cat "$dir/err.txt"; exit 1; }
  python3 - "$name" "$dir/time.txt" "$2" <<'PY'
import re, sys
name, t, rnd = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1)
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(f"round {rnd}: demo, lake on {name:5}: wall {secs:6.2f} s, peak RSS {rss / 1024:6.1f} MiB")
PY
}

# Alternating rounds, so that a warm page cache or a busy machine does not favour one side.
for round in 1 2; do
  measure local "$round"
  measure s3 "$round"
done
