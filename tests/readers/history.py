#!/usr/bin/env python3
"""Reads a lake table's history the way an engine that knows nothing of dag would, and prints it.

Why this script exists: a full refresh must commit to the *same* Iceberg table (one table-uuid, one
more snapshot), so that engines holding the table keep working and earlier loads stay readable by
snapshot id. This reader shares no code with dag: pyiceberg loads the table through the catalog and
reads every snapshot's rows by snapshot id, and DuckDB's iceberg extension reads every snapshot of
the same metadata file by snapshot id.

Usage:
  history.py <table args> --column C
      prints {"uuid": ..., "current": id, "location": ...,
              "snapshots": [{"id", "parent", "operation", "summary", "pyiceberg": {"rows", "keys"},
                             "duckdb": {"rows", "keys"}}]}
      in commit order; "keys" is the sum of column C (an integer column), so two versions with the
      same row count but other rows tell apart.
  history.py <table args> --column C --hold READY --release GO
      loads the table, creates READY, waits until GO exists (dag refreshes the table meanwhile),
      then refreshes the handle it loaded before and appends the rows of the table's current first
      data file again through pyiceberg; prints {"uuid_before", "uuid_after", "snapshot_before",
      "snapshot_after", "appended_rows", "rows_after"}.
"""
import argparse
import json
import os
import sys
import time

import pyarrow.compute as pc

from check_lake import DuckDBReader, add_table_args, open_table, quote_ident


def summary_of(table, column: str, snapshot_id: int) -> dict:
    t = table.scan(snapshot_id=snapshot_id, selected_fields=(column,)).to_arrow()
    keys = pc.sum(t.column(column)).as_py() if t.num_rows else 0
    return {"rows": t.num_rows, "keys": int(keys or 0)}


def history(a: argparse.Namespace) -> dict:
    table = open_table(a)
    md = table.metadata
    location = table.metadata_location
    duck = DuckDBReader()
    snaps = []
    path = location[len("file://"):] if location.startswith("file://") else location
    try:
        for entry in sorted(md.snapshots, key=lambda s: (s.sequence_number or 0, s.timestamp_ms)):
            sid = entry.snapshot_id
            d = duck.con.execute(
                f"SELECT count(*), coalesce(sum({quote_ident(a.column)}), 0) FROM "
                f"iceberg_scan('{path}', snapshot_from_id => {sid})"
            ).fetchone()
            summary = entry.summary
            snaps.append({
                "id": sid,
                "parent": entry.parent_snapshot_id,
                "operation": summary.operation.value if summary else None,
                "summary": dict(summary.additional_properties) if summary else {},
                "pyiceberg": summary_of(table, a.column, sid),
                "duckdb": {"rows": int(d[0]), "keys": int(d[1])},
            })
    finally:
        duck.close()
    return {
        "uuid": str(md.table_uuid),
        "current": md.current_snapshot_id,
        "location": md.location,
        "snapshots": snaps,
    }


def hold_then_append(a: argparse.Namespace) -> dict:
    table = open_table(a)
    before = (str(table.metadata.table_uuid), table.metadata.current_snapshot_id)
    open(a.hold, "w").close()
    deadline = time.time() + 600
    while not os.path.exists(a.release):
        if time.time() > deadline:
            raise SystemExit("never released")
        time.sleep(0.05)
    table.refresh()
    after = (str(table.metadata.table_uuid), table.metadata.current_snapshot_id)
    first = next(iter(table.scan().plan_files())).file.file_path
    import pyarrow.parquet as pq
    rows = pq.read_table(first[len("file://"):] if first.startswith("file://") else first)
    rows = rows.cast(table.schema().as_arrow())
    table.append(rows)
    n = table.scan(selected_fields=(a.column,)).to_arrow().num_rows
    return {
        "uuid_before": before[0],
        "uuid_after": after[0],
        "snapshot_before": before[1],
        "snapshot_after": after[1],
        "appended_rows": rows.num_rows,
        "rows_after": n,
        "snapshot_appended": table.metadata.current_snapshot_id,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    add_table_args(p)
    p.add_argument("--column", required=True)
    p.add_argument("--hold")
    p.add_argument("--release")
    a = p.parse_args()
    out = hold_then_append(a) if a.hold else history(a)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
