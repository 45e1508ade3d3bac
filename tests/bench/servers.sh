# Sourced by the benchmark scripts: starts the test servers as processes of their own, killed
# (with $WORK removed) when the script exits. The caller sets WORK first.
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$WORK"' EXIT

wait_port() { # file -> the port the server printed it listens on
  for _ in $(seq 100); do grep -q listening "$1" && break; sleep 0.1; done
  sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -1
}

start_tds() { # rows, name of the variable to set to its port
  local out="$WORK/tds-$1-$2.out"
  "$PWD/target/release/tds_server" --port 0 --rows "$1" --user dag --password bench \
    >"$out" 2>"${out%.out}.err" &
  PIDS+=($!)
  printf -v "$2" '%s' "$(wait_port "$out")"
}

start_starrocks() { # sets SR_MYSQL and SR_HTTP
  "$PWD/target/release/starrocks_server" --count-only >"$WORK/sr.out" 2>"$WORK/sr.err" &
  PIDS+=($!)
  wait_port "$WORK/sr.out" >/dev/null
  SR_MYSQL=$(sed -n 's/.*mysql \(mysql:[^ ]*\).*/\1/p' "$WORK/sr.out")
  SR_HTTP=$(sed -n 's/.*http \(http:[^ ]*\).*/\1/p' "$WORK/sr.out")
}
