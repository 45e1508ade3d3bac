#!/usr/bin/env python3
"""Reads a query through pytds (python-tds, pinned in requirements.txt), an independent TDS
client, and prints each row as one JSON array of canonical strings, so tests can compare what the
TDS test server sent with what it meant to send (see `canonical` in tests/doubles/src/tds/mod.rs).

Canonical forms: NULL -> null; bool -> "true"/"false"; int -> decimal text; Decimal -> plain text
at the column's scale; float -> repr; date -> YYYY-MM-DD; time -> HH:MM:SS.ffffff; datetime ->
YYYY-MM-DD HH:MM:SS.ffffff; datetimeoffset -> YYYY-MM-DD HH:MM:SS.ffffff+HH:MM (in its own
offset); bytes -> lowercase hex; uuid -> lowercase canonical text; str as is. Python's datetime
stops at microseconds: 100 ns digits are lost (the Rust side compares at 6 digits).

Modes: default prints rows; --count prints only `count N` plus the first and last rows (for big
reads); --cancel-after N fetches N rows, calls cursor.cancel() (TDS Attention), prints
`cancelled after N`, then runs `SELECT 1` on the same connection and prints its row.
Errors print `ERROR <number> <message>` on stderr and exit 3; login failures exit 4.
"""
import argparse
import datetime
import decimal
import json
import sys
import uuid

import pytds


decimal.getcontext().prec = 80


def canon(v, scale=None):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, decimal.Decimal):
        # pytds builds Decimals that drop trailing zeros: print at the column's scale
        if scale and -v.as_tuple().exponent < scale:
            v = v.quantize(decimal.Decimal(1).scaleb(-scale))
        return format(v, "f")
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, datetime.datetime):
        s = v.strftime("%Y-%m-%d %H:%M:%S") + ".%06d" % v.microsecond
        if v.tzinfo is not None:
            off = v.utcoffset()
            mins = int(off.total_seconds()) // 60
            sign = "-" if mins < 0 else "+"
            mins = abs(mins)
            s += "%s%02d:%02d" % (sign, mins // 60, mins % 60)
        # strftime pads years < 1000 inconsistently across platforms: force 4 digits
        return "%04d%s" % (v.year, s[s.index("-"):])
    if isinstance(v, datetime.date):
        return "%04d-%02d-%02d" % (v.year, v.month, v.day)
    if isinstance(v, datetime.time):
        return v.strftime("%H:%M:%S") + ".%06d" % v.microsecond
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, uuid.UUID):
        return str(v)
    return str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--database", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--params", help="JSON list of parameter values (strings/ints)")
    ap.add_argument("--count", action="store_true")
    ap.add_argument("--cancel-after", type=int)
    ap.add_argument("--blocksize", type=int, default=4096)
    a = ap.parse_args()
    try:
        conn = pytds.connect(
            server="127.0.0.1", port=a.port, database=a.database, user=a.user,
            password=a.password, autocommit=True, blocksize=a.blocksize, login_timeout=10,
            timeout=120,
        )
    except pytds.tds_base.Error as e:
        num = getattr(e, "msg_no", getattr(e, "number", ""))
        print("LOGIN FAILED %s %s" % (num, e), file=sys.stderr)
        sys.exit(4)
    out = sys.stdout
    try:
        cur = conn.cursor()
        params = json.loads(a.params) if a.params else None
        if params is not None:
            # pytds uses pyformat placeholders (%s); it sends sp_executesql with @P1..
            cur.execute(a.query, tuple(params))
        else:
            cur.execute(a.query)
        if a.cancel_after is not None:
            rows = cur.fetchmany(a.cancel_after)
            cur.cancel()
            print("cancelled after %d" % len(rows))
            cur.execute("SELECT 1")
            print(json.dumps([canon(v) for v in cur.fetchone()]))
            return
        # money/smallmoney (type codes 60, 122, 110) have no scale in pytds' description: 4
        scales = [4 if d[1] in (60, 122, 110) else d[5] for d in (cur.description or [])]

        def row_json(row):
            return json.dumps([canon(v, s) for v, s in zip(row, scales)], ensure_ascii=False)

        if a.count:
            n = 0
            first = last = None
            while True:
                batch = cur.fetchmany(10000)
                if not batch:
                    break
                if first is None:
                    first = batch[0]
                last = batch[-1]
                n += len(batch)
            print("count %d" % n)
            if first is not None:
                print(row_json(first))
                print(row_json(last))
            return
        if cur.description is None:
            return
        for row in cur:
            out.write(row_json(row))
            out.write("\n")
    except pytds.tds_base.Error as e:
        num = getattr(e, "msg_no", getattr(e, "number", ""))
        print("ERROR %s %s" % (num, e), file=sys.stderr)
        sys.exit(3)
    finally:
        out.flush()


if __name__ == "__main__":
    main()
