#!/usr/bin/env python3
"""Prints how pyiceberg sees a lake table's partitioning, as one JSON object.

`dag` writes day-partitioned tables with its own partition spec and its own partition values in
each data file's manifest entry; this asks an independent implementation what they mean:

  {"spec": [{"source": "DAY", "name": "DAY_day", "transform": "day"}],
   "partitions": 1096, "null_partition": false, "files": 1096}

`partitions` counts the distinct partition values of the current snapshot's data files.

Usage:
  python3 tests/readers/partitions.py --catalog CATALOG.db --catalog-name dag \
      --warehouse DIR --namespace ns --table T
"""
import argparse
import json

from check_lake import add_table_args, open_table


def main() -> None:
    p = argparse.ArgumentParser()
    add_table_args(p)
    a = p.parse_args()
    table = open_table(a)
    schema = table.schema()
    spec = [
        {
            "source": schema.find_field(f.source_id).name,
            "name": f.name,
            "transform": str(f.transform),
        }
        for f in table.spec().fields
    ]
    values = set()
    files = 0
    for task in table.scan().plan_files():
        files += 1
        values.add(tuple(task.file.partition))
    print(
        json.dumps(
            {
                "spec": spec,
                "partitions": len(values),
                "null_partition": any(None in v for v in values),
                "files": files,
            }
        )
    )


if __name__ == "__main__":
    main()
