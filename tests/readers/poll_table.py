#!/usr/bin/env python3
"""Polls an Iceberg table through pyiceberg while `dag` refreshes it, and prints what it saw.

Why this script exists: a full refresh must be atomic for readers, who see the old snapshot or
the new one and never a mix or an empty table. A reader that shares no code with `dag` reads the
table over and over (catalog -> metadata -> manifests -> Parquet, the rows themselves, not a
summary) until the stop file appears, then prints one JSON object:
{"polls": N, "counts": {"<rows>": times}, "errors": ["..."]}.

Usage: poll_table.py --catalog CATALOG.db|postgres://... --warehouse DIR --namespace NS
       --table T --column C --stop FILE
"""
import argparse
import json
import os
import sys
import time

from check_lake import add_table_args, open_catalog  # the readers' one way to our catalogs


def main() -> int:
    p = argparse.ArgumentParser()
    add_table_args(p)
    p.add_argument("--column", required=True, help="one column to read (keeps each poll cheap)")
    p.add_argument("--stop", required=True, help="stop polling once this file exists")
    a = p.parse_args()

    catalog = open_catalog(a.catalog_name, a.catalog, a.warehouse)
    counts: dict[str, int] = {}
    errors: list[str] = []
    polls = 0
    print("polling", file=sys.stderr, flush=True)
    while True:
        stop = os.path.exists(a.stop)
        try:
            t = catalog.load_table((a.namespace, a.table))
            n = t.scan(selected_fields=(a.column,)).to_arrow().num_rows
            counts[str(n)] = counts.get(str(n), 0) + 1
        except Exception as e:  # recorded, never hidden: the test asserts there are none
            errors.append(f"{type(e).__name__}: {e}")
        polls += 1
        if stop:
            break
        time.sleep(0.005)
    print(json.dumps({"polls": polls, "counts": counts, "errors": errors[:20]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
