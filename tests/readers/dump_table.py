#!/usr/bin/env python3
"""Prints one Iceberg table of dag's lake as JSON rows, read with pyiceberg.

The StarRocks test double stands in for StarRocks reading the lake through its own external
Iceberg catalog (`load = "lake"`): it asks this script, an Iceberg reader we did not write, for the
rows. Cells are printed in StarRocks' text forms: null, or a string (booleans 1/0, decimals in
plain notation, dates YYYY-MM-DD, timestamps YYYY-MM-DD HH:MM:SS.ffffff in UTC), binaries as
{"hex": "..."}.

Usage: dump_table.py --catalog FILE --warehouse DIR --namespace NS --table T --columns A,B,...
"""

import argparse
import datetime
import decimal
import json
import sys

from check_lake import add_table_args, open_table  # the readers' one way to our tables


def cell(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (bytes, bytearray)):
        return {"hex": bytes(v).hex()}
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        # strftime's %Y drops leading zeros of years below 1000 on Linux.
        return (
            f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
            f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
        )
    if isinstance(v, datetime.date):
        return f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def main() -> int:
    p = argparse.ArgumentParser()
    add_table_args(p)
    p.add_argument("--columns", required=True)
    a = p.parse_args()
    table = open_table(a)
    cols = a.columns.split(",")
    arrow = table.scan(selected_fields=tuple(cols)).to_arrow()
    data = [arrow.column(c).to_pylist() for c in cols]
    rows = [[cell(col[i]) for col in data] for i in range(arrow.num_rows)]
    json.dump(rows, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
