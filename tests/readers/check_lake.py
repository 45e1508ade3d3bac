#!/usr/bin/env python3
"""Independent check of an Iceberg lake written by `dag` against its SQLite source.

Why this script exists
----------------------
`dag` verifies its own work: it fingerprints what it read from the source and what it wrote to the
lake, both with its own Rust code. A bug shared by the writer and the verifier (a wrong type
mapping, a mis-scaled decimal, a lost time zone, a reader that skips a data file) would then go
unnoticed. This script is a second opinion that shares no code with the project. It:

1. reads the SQLite source with Python's `sqlite3` and interprets every value from the column's
   *declared* type, transcribing the conventions of the project spec cell by cell in plain Python;
2. reads the Iceberg table with pyiceberg (SQL catalog -> metadata -> manifests -> Parquet);
3. reads the same table with DuckDB's iceberg extension (`iceberg_scan(<metadata file>)`), a third,
   C++ implementation of the Iceberg read path;

and compares row count and the canonical, order-independent content fingerprint of all three.
The Arrow results of (2) and (3) are canonicalised with vectorised pyarrow code, the source with a
per-cell Python transcription of the spec, so the two fingerprint implementations in this file
also cross-check each other (see `--self-test`).

Canonical fingerprint (from the project spec): for each row, concatenate for each column in table
column order either 0x00 (NULL) or 0x01 + u32-LE length + canonical text, where the text is
bool "1"/"0"; integers in decimal; decimal(p,s) as the unscaled integer; float64 as 16 lowercase
hex digits of the IEEE-754 bits; date as days and timestamp as microseconds since 1970-01-01;
strings as UTF-8; binaries raw. row_hash = first 16 bytes of SHA-256(row) as a little-endian u128;
fingerprint = sum of row hashes mod 2^128 as 32 hex digits.

SQLite storage note: columns declared DECIMAL/NUMERIC/MONEY/BOOLEAN/DATE/DATETIME have NUMERIC
affinity, so SQLite itself turns a decimal text such as '-1234.5600' into REAL -1234.56 and '7'
into INTEGER 7 when it is stored. Decimal cells are therefore accepted as TEXT (plain decimal
notation), INTEGER (exact) or REAL (read through its shortest round-trip repr, i.e. the text it
came from when that had at most 15 significant digits); in every case the value must be exactly
representable at the declared scale and fit the declared precision, otherwise the source is
reported as invalid.

Usage:
  python3 tests/readers/check_lake.py --source SRC.db --catalog CATALOG.db --catalog-name dag \
      --warehouse DIR --namespace worldzone [--tables A,B] [--readers pyiceberg,duckdb] \
      [--json OUT.json]
  python3 tests/readers/check_lake.py ... --warehouse s3://BUCKET/PREFIX \
      [--s3-endpoint http://127.0.0.1:9000] [--s3-region us-east-1] [--s3-path-style]
  (S3 keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, so they stay out of the command
  line; DuckDB reads S3 through the httpfs extension from PyPI `duckdb-extension-httpfs`.)
  python3 tests/readers/check_lake.py --self-test

Exit status: 0 when every selected reader matches the source (rows, fingerprint, Iceberg schema)
for every table; 1 on any mismatch, on a table missing from the lake, or on a source value that
does not follow the spec; 2 on bad arguments (missing files, unknown reader, a --tables name that
is not in the source).
"""

from __future__ import annotations

import argparse
import array
import datetime as _dt
import glob
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

READERS = ("pyiceberg", "duckdb")
MASK128 = (1 << 128) - 1
EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
US_PER_DAY = 86_400_000_000
SOURCE_FETCH_ROWS = 20_000  # rows fetched from SQLite at a time
ARROW_CHUNK_ROWS = 65_536  # rows canonicalised at a time on the Arrow side (bounds memory)
DUCKDB_BATCH_ROWS = 131_072

# Known value (see --self-test): one row, one int column, value 1. Row bytes are
# b'\x01' + (1).to_bytes(4, 'little') + b'1' = b'\x01\x01\x00\x00\x001';
# sha256 = 0cf6eddd351be7f61aaf93e89ed41bad96aa1a0a85fc307914c0403b530e899f, whose first 16 bytes
# read as a little-endian u128 give:
ONE_INT_ROW_FINGERPRINT = "ad1bd49ee893af1af6e71b35ddedf60c"
EMPTY_FINGERPRINT = "0" * 32


class SourceError(Exception):
    """The source does not follow the spec (unsupported declared type, malformed value)."""


# ---------------------------------------------------------------------------------------------
# Fingerprint accumulator (shared by all paths: it only sums SHA-256 prefixes of row bytes)
# ---------------------------------------------------------------------------------------------


@dataclass
class Digest:
    """Row count and running fingerprint sum; add_rows() hashes canonical row bytes."""

    rows: int = 0
    total: int = 0

    def add_rows(self, row_bytes: Iterable[bytes]) -> None:
        sha, from_bytes = hashlib.sha256, int.from_bytes
        n = 0
        s = 0
        for b in row_bytes:
            s += from_bytes(sha(b).digest()[:16], "little")
            n += 1
        self.rows += n
        self.total = (self.total + s) & MASK128

    @property
    def fingerprint(self) -> str:
        return format(self.total, "032x")

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "fingerprint": self.fingerprint}


# ---------------------------------------------------------------------------------------------
# Source side: declared types and a per-cell Python transcription of the spec
# ---------------------------------------------------------------------------------------------

_BASE_TYPES = {
    "BOOLEAN": "bool", "BIT": "bool", "BOOL": "bool",
    "INT": "int32", "SMALLINT": "int32", "TINYINT": "int32", "MEDIUMINT": "int32",
    "INTEGER": "int64", "BIGINT": "int64",
    "DECIMAL": "decimal", "NUMERIC": "decimal", "MONEY": "money",
    "REAL": "float64", "FLOAT": "float64", "DOUBLE": "float64",
    "DATE": "date",
    "DATETIME": "timestamp", "TIMESTAMP": "timestamp",
    "TEXT": "string", "VARCHAR": "string", "NVARCHAR": "string", "CHAR": "string",
    "NCHAR": "string", "CLOB": "string", "STRING": "string",
    "BLOB": "binary", "VARBINARY": "binary", "BINARY": "binary",
}
_DECL_RE = re.compile(r"^([A-Z]+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")


@dataclass
class SourceColumn:
    name: str
    declared: str
    kind: str  # bool int32 int64 decimal float64 date timestamp string binary
    precision: int = 0
    scale: int = 0

    @property
    def logical(self) -> str:
        return f"decimal({self.precision},{self.scale})" if self.kind == "decimal" else self.kind


def parse_declared_type(name: str, declared: str) -> SourceColumn:
    """Maps a SQLite declared type to the spec's logical type (raises SourceError if unknown)."""
    norm = " ".join(declared.upper().split())
    # "TEXT DECIMAL(p,s)" / "TEXT MONEY": a decimal declared with TEXT affinity so that SQLite
    # keeps its exact text (a plain DECIMAL column would turn long values into lossy REALs).
    for qualified in ("TEXT DECIMAL", "TEXT NUMERIC", "TEXT MONEY"):
        if norm.startswith(qualified):
            norm = norm[len("TEXT "):]
    m = _DECL_RE.match(norm)
    kind = _BASE_TYPES.get(m.group(1)) if m else None
    if kind in ("decimal",) and m.group(2) is None:
        kind = None  # a bare DECIMAL / NUMERIC has numeric affinity
    if kind is None:
        return SourceColumn(name, declared, affinity_kind(norm))
    p, s = m.group(2), m.group(3)
    if kind == "money":
        if p is not None:
            raise SourceError(f"column {name!r}: MONEY takes no precision ({declared!r})")
        return SourceColumn(name, declared, "decimal", 19, 4)
    if kind == "decimal":
        if p is None:
            raise SourceError(f"column {name!r}: {declared!r} needs (precision, scale)")
        precision, scale = int(p), int(s or 0)
        if not (1 <= precision <= 38 and 0 <= scale <= precision):
            raise SourceError(f"column {name!r}: bad decimal precision/scale in {declared!r}")
        return SourceColumn(name, declared, "decimal", precision, scale)
    if s is not None and kind != "decimal":
        raise SourceError(f"column {name!r}: unexpected parameters in {declared!r}")
    return SourceColumn(name, declared, kind)


def affinity_kind(norm: str) -> str:
    """SQLite's column affinity rules (sqlite.org/datatype3.html, 3.1), in their order, for a
    declared type the spec has no name for: INT -> int64; CHAR, CLOB, TEXT -> string; BLOB ->
    binary; no type -> string; everything else (REAL and numeric affinity) -> float64."""
    if "INT" in norm:
        return "int64"
    if "CHAR" in norm or "CLOB" in norm or "TEXT" in norm:
        return "string"
    if "BLOB" in norm:
        return "binary"
    if norm == "":
        return "string"
    return "float64"


def _text(v: Any) -> str:
    """TEXT cells arrive as bytes (text_factory=bytes); the structured kinds must be ASCII."""
    if isinstance(v, bytes):
        try:
            return v.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"non-ASCII text {v!r}") from None
    raise ValueError(f"expected TEXT, found {type(v).__name__} {v!r}")


def _conv_bool(v: Any) -> bytes:
    if type(v) is int and v in (0, 1):
        return b"1" if v else b"0"
    raise ValueError(f"boolean must be INTEGER 0/1, found {v!r}")


def _conv_int(lo: int, hi: int) -> Callable[[Any], bytes]:
    def conv(v: Any) -> bytes:
        if type(v) is int and lo <= v <= hi:
            return str(v).encode()
        raise ValueError(f"integer out of range or not INTEGER: {v!r}")
    return conv


_PLAIN_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _conv_decimal(precision: int, scale: int) -> Callable[[Any], bytes]:
    limit = 10 ** precision

    def conv(v: Any) -> bytes:
        if type(v) is int:
            unscaled = v * 10 ** scale
        else:
            if type(v) is float:
                if v != v or v in (float("inf"), float("-inf")):
                    raise ValueError(f"decimal is not finite: {v!r}")
                text = repr(v)  # shortest round-trip text; may use exponent notation
            else:
                text = _text(v)
                if not _PLAIN_DECIMAL_RE.fullmatch(text):
                    raise ValueError(f"not plain decimal notation: {text!r}")
            try:
                sign, digits, exp = Decimal(text).as_tuple()
            except InvalidOperation:
                raise ValueError(f"not a decimal: {text!r}") from None
            magnitude = int("".join(map(str, digits)) or "0")
            shift = exp + scale
            if shift >= 0:
                magnitude *= 10 ** shift
            else:
                magnitude, rest = divmod(magnitude, 10 ** -shift)
                if rest:
                    raise ValueError(f"{text!r} has more than {scale} fraction digits")
            unscaled = -magnitude if sign else magnitude
        if not -limit < unscaled < limit:
            raise ValueError(f"{v!r} does not fit decimal({precision},{scale})")
        return str(unscaled).encode()

    return conv


def _conv_float(v: Any) -> bytes:
    if type(v) is float:
        return struct.pack(">d", v).hex().encode()
    if type(v) is int and float(v) == v:
        return struct.pack(">d", float(v)).hex().encode()
    raise ValueError(f"expected REAL, found {v!r}")


_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?")


def _days(y: str, m: str, d: str) -> int:
    return _dt.date(int(y), int(m), int(d)).toordinal() - EPOCH_ORDINAL


def _conv_date(v: Any) -> bytes:
    text = _text(v)
    m = _DATE_RE.fullmatch(text)
    if not m:
        raise ValueError(f"date must be 'YYYY-MM-DD', found {text!r}")
    return str(_days(*m.groups())).encode()


def _conv_timestamp(v: Any) -> bytes:
    text = _text(v)
    m = _TS_RE.fullmatch(text)
    if not m:
        raise ValueError(f"timestamp must be 'YYYY-MM-DD HH:MM:SS[.f]', found {text!r}")
    y, mo, d, hh, mm, ss, frac = m.groups()
    h, mi, s = int(hh), int(mm), int(ss)
    if h > 23 or mi > 59 or s > 59:
        raise ValueError(f"bad time of day in {text!r}")
    us = _days(y, mo, d) * US_PER_DAY + ((h * 60 + mi) * 60 + s) * 1_000_000
    if frac:
        us += int(frac.ljust(6, "0"))
    return str(us).encode()


def _conv_bytes(v: Any) -> bytes:
    # string: TEXT arrives as its raw UTF-8 bytes (text_factory=bytes); binary: BLOB bytes.
    if isinstance(v, bytes):
        return v
    raise ValueError(f"expected TEXT/BLOB, found {type(v).__name__} {v!r}")


def _conv_string(v: Any) -> bytes:
    # TEXT as its raw UTF-8 bytes; an INTEGER (a column of no declared type) as its digits.
    if type(v) is int:
        return str(v).encode()
    return _conv_bytes(v)


def source_converter(col: SourceColumn) -> Callable[[Any], bytes]:
    return {
        "bool": lambda: _conv_bool,
        "int32": lambda: _conv_int(-(2 ** 31), 2 ** 31 - 1),
        "int64": lambda: _conv_int(-(2 ** 63), 2 ** 63 - 1),
        "decimal": lambda: _conv_decimal(col.precision, col.scale),
        "float64": lambda: _conv_float,
        "date": lambda: _conv_date,
        "timestamp": lambda: _conv_timestamp,
        "string": lambda: _conv_string,
        "binary": lambda: _conv_bytes,
    }[col.kind]()


def source_row_bytes(rows: Iterable[tuple], columns: list[SourceColumn]) -> Iterator[bytes]:
    """Yields each row's canonical bytes, cell by cell, exactly as the spec words it."""
    convs = [source_converter(c) for c in columns]
    names = [c.name for c in columns]
    pack = struct.Struct("<BI").pack
    for row in rows:
        parts = []
        for i, v in enumerate(row):
            if v is None:
                parts.append(b"\x00")
                continue
            try:
                t = convs[i](v)
            except ValueError as e:
                raise SourceError(f"column {names[i]!r}: {e}") from None
            parts.append(pack(1, len(t)))
            parts.append(t)
        yield b"".join(parts)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _name(v: Any) -> str:
    """Schema text from the connection (text_factory=bytes) as str."""
    return v.decode("utf-8") if isinstance(v, bytes) else (v or "")


def source_tables(con: sqlite3.Connection) -> list[str]:
    rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    names = [_name(r[0]) for r in rows]
    return sorted(
        n for n in names if not n.lower().startswith("sqlite_") and not n.lower().startswith("_dag")
    )


def source_columns(con: sqlite3.Connection, table: str) -> list[SourceColumn]:
    info = con.execute(f"PRAGMA table_info({quote_ident(table)})").fetchall()
    return [parse_declared_type(_name(r[1]), _name(r[2])) for r in info]


def source_digest(con: sqlite3.Connection, table: str, columns: list[SourceColumn]) -> Digest:
    cols = ", ".join(quote_ident(c.name) for c in columns)
    cur = con.execute(f"SELECT {cols} FROM {quote_ident(table)}")

    def rows() -> Iterator[tuple]:
        while True:
            chunk = cur.fetchmany(SOURCE_FETCH_ROWS)
            if not chunk:
                return
            yield from chunk

    d = Digest()
    d.add_rows(source_row_bytes(rows(), columns))
    return d


# ---------------------------------------------------------------------------------------------
# Arrow side: vectorised canonical text per column, then one SHA-256 per row
# ---------------------------------------------------------------------------------------------


def _fixed_width_binary(data: bytes, width: int, n: int) -> pa.Array:
    """A large_binary array of n values of `width` bytes each, taken consecutively from data."""
    offsets = pa.array(range(0, width * (n + 1), width), pa.int64())
    return pa.Array.from_buffers(
        pa.large_binary(), n, [None, offsets.buffers()[1], pa.py_buffer(data)]
    )


# Decimal types with the same storage width and scale 0: their values print as the unscaled int.
_DECIMAL_AS_INT = {
    4: lambda: pa.decimal32(9, 0),
    8: lambda: pa.decimal64(18, 0),
    16: lambda: pa.decimal128(38, 0),
    32: lambda: pa.decimal256(76, 0),
}


def _decimal_unscaled_text(arr: pa.Array) -> pa.Array:
    """The unscaled integer of each decimal, read from the raw storage (scale ignored)."""
    as_int = _DECIMAL_AS_INT[arr.type.byte_width]()
    same_bits = pa.Array.from_buffers(as_int, len(arr), arr.buffers(), arr.null_count, arr.offset)
    return same_bits.cast(pa.string())


def _float64_bits_hex(arr: pa.Array) -> pa.Array:
    """16 lowercase hex digits of each value's IEEE-754 bit pattern (big-endian)."""
    n = len(arr)
    raw = memoryview(arr.buffers()[1])[arr.offset * 8:(arr.offset + n) * 8]
    bits = array.array("Q")
    if bits.itemsize != 8:
        raise RuntimeError("array('Q') is not 8 bytes wide on this platform")
    bits.frombytes(raw)
    if sys.byteorder == "little":
        bits.byteswap()  # now each value's bytes are most significant first
    return _fixed_width_binary(bits.tobytes().hex().encode("ascii"), 16, n)


def _timestamp_micros(arr: pa.Array) -> pa.Array:
    raw = arr.cast(pa.int64())
    unit = arr.type.unit
    if unit == "us":
        return raw
    if unit in ("s", "ms"):
        return pc.multiply_checked(raw, 1_000_000 if unit == "s" else 1_000)
    if unit == "ns":
        # Exact only for whole microseconds; flag sub-microsecond values rather than round them.
        if pc.any(pc.not_equal(pc.subtract(raw, pc.multiply(pc.divide(raw, 1000), 1000)),
                               0)).as_py():
            raise ValueError("timestamp[ns] values with sub-microsecond parts")
        return pc.divide(raw, 1000)
    raise ValueError(f"unknown timestamp unit {unit}")


def arrow_canonical_text(arr: pa.Array) -> pa.Array:
    """Canonical text of every slot as large_binary (null slots: arbitrary, replaced later)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        return arrow_canonical_text(arr.dictionary_decode())
    if pa.types.is_boolean(t):
        text = pc.if_else(arr.fill_null(False), "1", "0")
    elif pa.types.is_integer(t):
        text = arr.cast(pa.string())
    elif pa.types.is_decimal(t):
        text = _decimal_unscaled_text(arr)
    elif pa.types.is_floating(t):
        return _float64_bits_hex(arr if pa.types.is_float64(t) else arr.cast(pa.float64()))
    elif pa.types.is_date32(t):
        text = arr.cast(pa.int32()).cast(pa.string())
    elif pa.types.is_date64(t):
        text = arr.cast(pa.date32()).cast(pa.int32()).cast(pa.string())
    elif pa.types.is_timestamp(t):
        text = _timestamp_micros(arr).cast(pa.string())
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) \
            or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        text = arr
    elif pa.types.is_string_view(t):
        text = arr.cast(pa.large_string())
    elif pa.types.is_binary_view(t):
        text = arr.cast(pa.large_binary())
    else:
        raise ValueError(f"no canonical form for Arrow type {t}")
    return text.cast(pa.large_binary()).fill_null(b"")


_EMPTY_LB = pa.scalar(b"", pa.large_binary())
_ONE = pa.scalar(b"\x01", pa.large_binary())
_NULL_CELL = pa.scalar(b"\x00", pa.large_binary())


def arrow_encoded_cells(arr: pa.Array) -> pa.Array:
    """Per slot: 0x00 for NULL, else 0x01 + u32-LE length + canonical text (large_binary)."""
    n = len(arr)
    text = arrow_canonical_text(arr)
    # Lengths as int32 (fails loudly beyond 2 GiB): a fresh array whose value buffer is exactly
    # the u32 little-endian length bytes we need (lengths are never negative).
    lengths = pc.binary_length(text).cast(pa.int32())
    if lengths.offset != 0 or sys.byteorder != "little":
        raise RuntimeError("length buffer is not a plain little-endian int32 array")
    len_bytes = _fixed_width_binary(memoryview(lengths.buffers()[1])[:4 * n].tobytes(), 4, n)
    cells = pc.binary_join_element_wise(_ONE, len_bytes, text, _EMPTY_LB)
    if arr.null_count:
        cells = pc.if_else(arr.is_valid(), cells, _NULL_CELL)
    return cells


def arrow_row_bytes(columns: list[pa.Array]) -> list[bytes]:
    """Canonical bytes of every row of equally long columns (table column order)."""
    cells = [arrow_encoded_cells(c) for c in columns]
    if not cells:
        return []
    return pc.binary_join_element_wise(*cells, _EMPTY_LB).to_pylist()


def add_arrow_batch(d: Digest, batch: pa.RecordBatch, names: list[str]) -> None:
    """Adds a batch's rows, taking the columns `names` (source column order) by name."""
    index = {n: i for i, n in enumerate(batch.schema.names)}
    cols = [batch.column(index[n]) for n in names]
    n = batch.num_rows
    for start in range(0, n, ARROW_CHUNK_ROWS):
        part = [c.slice(start, ARROW_CHUNK_ROWS) for c in cols]
        if not part:  # zero-column table: each row is the empty byte string
            d.add_rows(b"" for _ in range(min(ARROW_CHUNK_ROWS, n - start)))
        else:
            d.add_rows(arrow_row_bytes(part))


def arrow_digest(batches: Iterable[pa.RecordBatch], names: list[str]) -> Digest:
    d = Digest()
    for batch in batches:
        add_arrow_batch(d, batch, names)
    return d


# ---------------------------------------------------------------------------------------------
# Lake readers
# ---------------------------------------------------------------------------------------------


def expected_iceberg_type(col: SourceColumn) -> str:
    return {
        "bool": "boolean", "int32": "int", "int64": "long", "float64": "double",
        "date": "date", "timestamp": "timestamp", "string": "string", "binary": "binary",
        "decimal": f"decimal({col.precision}, {col.scale})",
    }[col.kind]


def schema_problems(iceberg_schema: Any, columns: list[SourceColumn]) -> list[str]:
    """Differences between the Iceberg schema and the spec's mapping of the source columns."""
    fields = list(iceberg_schema.fields)
    by_name = {f.name: f for f in fields}
    problems = []
    for c in columns:
        f = by_name.get(c.name)
        if f is None:
            problems.append(f"column {c.name!r} missing from the Iceberg table")
            continue
        got = str(f.field_type)
        want = expected_iceberg_type(c)
        if got.replace(" ", "") != want.replace(" ", ""):
            problems.append(f"column {c.name!r}: Iceberg type {got}, expected {want} "
                            f"(declared {c.declared})")
    extra = [f.name for f in fields if f.name not in {c.name for c in columns}]
    if extra:
        problems.append(f"Iceberg columns not in the source: {', '.join(extra)}")
    got_order = [f.name for f in fields if f.name in {c.name for c in columns}]
    if not problems and got_order != [c.name for c in columns]:
        problems.append("Iceberg column order differs from the source")
    return problems


@dataclass
class S3Options:
    """Where and how to reach an S3 warehouse (the keys come from the environment)."""
    endpoint: str | None
    region: str
    path_style: bool
    access_key_id: str
    secret_access_key: str


def open_catalog(name: str, catalog_path: str, warehouse: str, s3: S3Options | None = None) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    if catalog_path.startswith(("http://", "https://")):
        # A REST catalog: pyiceberg's own REST client, with the bearer token from the
        # environment (DAG_TEST_REST_TOKEN) so that it stays off the command line.
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(name, uri=catalog_path, token=os.environ["DAG_TEST_REST_TOKEN"])
    props = {}
    if s3 is not None:
        props = {
            "s3.region": s3.region,
            "s3.access-key-id": s3.access_key_id,
            "s3.secret-access-key": s3.secret_access_key,
            # pyarrow's S3 filesystem uses path-style URLs with an endpoint unless forced.
            "s3.force-virtual-addressing": "false" if s3.path_style else "true",
        }
        if s3.endpoint:
            props["s3.endpoint"] = s3.endpoint
    if catalog_path.startswith(("postgres://", "postgresql://")):
        # A PostgreSQL catalog database, read through SQLAlchemy's psycopg2 driver.
        uri = "postgresql+psycopg2://" + catalog_path.split("://", 1)[1]
    else:
        uri = "sqlite:///" + os.path.abspath(catalog_path)
    return SqlCatalog(
        name,
        uri=uri,
        warehouse=warehouse if s3 is not None else "file://" + os.path.abspath(warehouse),
        init_catalog_tables="false",  # a reader must not write to the catalog
        **props,
    )


# `--latest-by KEY:CURSOR`: the lake table of an incremental workflow is a log of row versions
# (each run appends the rows whose cursor moved); compare only the latest version of each key.
LATEST_BY: tuple[str, str] | None = None


def latest_versions(t: pa.Table, key: str, cursor: str) -> pa.Table:
    """The row with the largest cursor of each key, as a reader of the change log would keep."""
    order = pc.sort_indices(t, sort_keys=[(key, "ascending"), (cursor, "descending")])
    t = t.take(order)
    keys = t.column(key).combine_chunks()
    if len(keys) == 0:
        return t
    first = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    mask = pa.concat_arrays([pa.array([True]), first.fill_null(True)])
    return t.filter(mask)


def add_table_args(p: argparse.ArgumentParser) -> None:
    """The arguments that name one lake table, shared by the small readers."""
    p.add_argument("--catalog", required=True,
                   help="SQLite catalog file, postgres:// URI or a REST catalog's http(s):// URI")
    p.add_argument("--catalog-name", default="dag")
    p.add_argument("--warehouse", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--table", required=True)


def open_table(a: argparse.Namespace) -> Any:
    """The table named by `add_table_args`' arguments, loaded through pyiceberg."""
    return open_catalog(a.catalog_name, a.catalog, a.warehouse).load_table(
        f"{a.namespace}.{a.table}")


def read_pyiceberg(table: Any, names: list[str]) -> Digest:
    if LATEST_BY is not None:
        whole = latest_versions(table.scan().to_arrow(), *LATEST_BY)
        return arrow_digest(whole.to_batches(), names)
    reader = table.scan().to_arrow_batch_reader()
    return arrow_digest(reader, names)


def _extension_file(name: str) -> str:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"python package duckdb_extension_{name} is not installed")
    for base in spec.submodule_search_locations:
        found = sorted(glob.glob(os.path.join(base, "extensions", "*", f"{name}.duckdb_extension")))
        if found:
            return found[-1]
    raise RuntimeError(f"no {name}.duckdb_extension under duckdb_extension_{name}")


class DuckDBReader:
    """DuckDB with the pip-installed avro + iceberg extensions, offline."""

    def __init__(self, s3: S3Options | None = None) -> None:
        import duckdb

        self._dir = tempfile.mkdtemp(prefix="check_lake_duckdb_ext_")
        self.con = duckdb.connect(config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "extension_directory": self._dir,
        })
        exts = ("avro", "iceberg") + (("httpfs",) if s3 is not None else ())
        for ext in exts:
            path = _extension_file(ext).replace("'", "''")
            self.con.execute(f"INSTALL '{path}'")
        for ext in exts:
            self.con.execute(f"LOAD {ext}")
        if s3 is not None:
            def lit(v: str) -> str:
                return "'" + v.replace("'", "''") + "'"
            opts = [f"KEY_ID {lit(s3.access_key_id)}", f"SECRET {lit(s3.secret_access_key)}",
                    f"REGION {lit(s3.region)}",
                    f"URL_STYLE {lit('path' if s3.path_style else 'vhost')}"]
            if s3.endpoint:
                # DuckDB wants host:port, with TLS chosen separately.
                host = re.sub(r"^https?://", "", s3.endpoint).rstrip("/")
                opts.append(f"ENDPOINT {lit(host)}")
                opts.append(f"USE_SSL {'true' if s3.endpoint.startswith('https://') else 'false'}")
            self.con.execute("CREATE SECRET lake_s3 (TYPE s3, " + ", ".join(opts) + ")")

    def digest(self, metadata_location: str, names: list[str]) -> Digest:
        path = metadata_location
        if path.startswith("file://"):
            path = path[len("file://"):]
        cols = ", ".join(quote_ident(n) for n in names)
        sql = f"SELECT {cols} FROM iceberg_scan('{path.replace(chr(39), chr(39) * 2)}')"
        if LATEST_BY is not None:
            key, cursor = (quote_ident(n) for n in LATEST_BY)
            sql += f" QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {cursor} DESC) = 1"
        result = self.con.execute(sql)
        # to_arrow_reader() is the newer name of fetch_record_batch() (deprecated in 1.5).
        fetch = getattr(result, "to_arrow_reader", None) or result.fetch_record_batch
        reader = fetch(DUCKDB_BATCH_ROWS)
        return arrow_digest(reader, names)

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


@dataclass
class TableReport:
    name: str
    source: dict[str, Any] = field(default_factory=dict)
    readers: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)

    def line(self, selected: list[str]) -> str:
        if "error" in self.source:
            head = f"{self.name} source ERROR: {self.source['error']}"
        else:
            head = f"{self.name} source rows={self.source['rows']} fp={self.source['fingerprint']}"
        parts = [head]
        for r in selected:
            e = self.readers.get(r)
            if e is None:
                continue
            if "error" in e:
                parts.append(f"{r} ERROR: {e['error']}")
            else:
                status = "OK" if e["ok"] else "MISMATCH (" + ", ".join(e["differs"]) + ")"
                parts.append(f"{r} rows={e['rows']} fp={e['fingerprint']} {status}")
        text = " | ".join(parts)
        if self.schema and not self.schema["ok"]:
            text += f"\n{self.name} schema MISMATCH: " + "; ".join(self.schema["problems"])
        return text

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, **self.readers}
        if self.schema is not None:
            out["schema"] = self.schema
        out["ok"] = not self.failures
        return out


def _timed(fn: Callable[[], Digest]) -> tuple[Digest, float]:
    t0 = time.perf_counter()
    d = fn()
    return d, round(time.perf_counter() - t0, 3)


def compare_readers(rep: TableReport, table: Any, names: list[str], readers: list[str],
                    duck: DuckDBReader | None, rows: int, fingerprint: str) -> None:
    """Reads the lake table with each reader and records how it compares with the expectation."""
    for r in readers:
        try:
            if r == "pyiceberg":
                d, secs = _timed(lambda: read_pyiceberg(table, names))
            else:
                assert duck is not None
                d, secs = _timed(lambda: duck.digest(table.metadata_location, names))
        except Exception as e:
            rep.readers[r] = {"error": f"{type(e).__name__}: {e}"}
            rep.failures.append(f"{r}: read failed: {type(e).__name__}: {e}")
            continue
        differs = []
        if d.rows != rows:
            differs.append(f"rows {d.rows} != {rows}")
        if d.fingerprint != fingerprint:
            differs.append(f"fingerprint {d.fingerprint} != {fingerprint}")
        rep.readers[r] = {**d.as_json(), "ok": not differs, "differs": differs, "seconds": secs}
        if differs:
            rep.failures.append(f"{r}: " + ", ".join(differs))


def check_table(name: str, src: sqlite3.Connection, catalog: Any, namespace: str,
                readers: list[str], duck: DuckDBReader | None,
                target: sqlite3.Connection | None = None) -> TableReport:
    rep = TableReport(name)
    try:
        columns = source_columns(src, name)
        sd, secs = _timed(lambda: source_digest(src, name, columns))
        rep.source = {**sd.as_json(), "seconds": secs}
    except SourceError as e:
        rep.source = {"error": str(e)}
        rep.failures.append(f"source: {e}")
        return rep
    names = [c.name for c in columns]

    try:
        table = catalog.load_table((namespace, name))
    except Exception as e:  # NoSuchTableError and friends
        msg = f"table {namespace}.{name} not found in the lake ({type(e).__name__}: {e})"
        for r in readers:
            rep.readers[r] = {"error": msg}
        rep.failures.append(msg)
        return rep

    problems = schema_problems(table.schema(), columns)
    rep.schema = {"ok": not problems, "problems": problems,
                  "metadata_location": table.metadata_location}
    if problems:
        rep.failures.append("schema: " + "; ".join(problems))

    compare_readers(rep, table, names, readers, duck, sd.rows, sd.fingerprint)
    if target is not None:
        # The SQLite target stores values in the source's forms: read it like a source.
        try:
            d, secs = _timed(lambda: source_digest(target, name, source_columns(target, name)))
        except Exception as e:
            rep.readers["target"] = {"error": f"{type(e).__name__}: {e}"}
            rep.failures.append(f"target: read failed: {type(e).__name__}: {e}")
            return rep
        differs = []
        if d.rows != sd.rows:
            differs.append(f"rows {d.rows} != {sd.rows}")
        if d.fingerprint != sd.fingerprint:
            differs.append("fingerprint")
        rep.readers["target"] = {**d.as_json(), "ok": not differs, "differs": differs,
                                 "seconds": secs}
        if differs:
            rep.failures.append("target: " + ", ".join(differs))
    return rep


def check_expected(name: str, want: dict[str, Any], catalog: Any, namespace: str,
                   readers: list[str], duck: DuckDBReader | None) -> TableReport:
    """Compares the lake table with counts, fingerprint and Iceberg types computed by the caller
    from the source's own values (for sources this script cannot read, such as SQL Server)."""
    rep = TableReport(name)
    rep.source = {"rows": want["rows"], "fingerprint": want["fingerprint"]}
    try:
        table = catalog.load_table((namespace, name))
    except Exception as e:
        msg = f"table {namespace}.{name} not found in the lake ({type(e).__name__}: {e})"
        rep.failures.append(msg)
        return rep
    fields = list(table.schema().fields)
    got = [[f.name, str(f.field_type).replace(" ", "")] for f in fields]
    wanted = [[n, t.replace(" ", "")] for n, t in want.get("columns", [])]
    problems = [] if not wanted or got == wanted else [f"Iceberg schema {got}, expected {wanted}"]
    rep.schema = {"ok": not problems, "problems": problems,
                  "metadata_location": table.metadata_location}
    if problems:
        rep.failures.append("schema: " + "; ".join(problems))
    names = [f.name for f in fields]
    compare_readers(rep, table, names, readers, duck, want["rows"], want["fingerprint"])
    return rep


def self_test() -> None:
    """Known fingerprints, plus agreement of the per-cell (source) and Arrow implementations."""
    if not __debug__:
        raise SystemExit("--self-test relies on assert: run it without python -O")
    # Empty table: 32 zeros, on both paths.
    assert Digest().fingerprint == EMPTY_FINGERPRINT
    assert arrow_digest([pa.record_batch({"x": pa.array([], pa.int32())})], ["x"]).fingerprint \
        == EMPTY_FINGERPRINT
    # One row, one int column, value 1: row bytes b'\x01\x01\x00\x00\x001'.
    h = hashlib.sha256(b"\x01\x01\x00\x00\x001").hexdigest()
    assert h == "0cf6eddd351be7f61aaf93e89ed41bad96aa1a0a85fc307914c0403b530e899f", h
    int_col = SourceColumn("x", "INT", "int32")
    d = Digest()
    d.add_rows(source_row_bytes([(1,)], [int_col]))
    assert (d.rows, d.fingerprint) == (1, ONE_INT_ROW_FINGERPRINT), d
    for typ in (pa.int32(), pa.int64()):
        a = arrow_digest([pa.record_batch({"x": pa.array([1], typ)})], ["x"])
        assert (a.rows, a.fingerprint) == (1, ONE_INT_ROW_FINGERPRINT), a

    # Canonical texts worked out by hand from the spec.
    dec4, dec2 = _conv_decimal(38, 4), _conv_decimal(10, 2)
    assert dec4(b"12.34") == b"123400" and dec2(b"-0.5") == b"-50" and dec2(b"-0.00") == b"0"
    assert dec2(7) == b"700" and dec2(-1234.5) == b"-123450" and dec4(b"0.05") == b"500"
    assert _conv_date(b"1969-12-31") == b"-1" and _conv_date(b"1970-01-02") == b"1"
    assert _conv_timestamp(b"1969-12-31 23:59:59.999999") == b"-1"
    assert _conv_timestamp(b"1970-01-01 00:00:01.5") == b"1500000"
    assert _conv_float(1.0) == b"3ff0000000000000" and _conv_float(-0.0) == b"8000000000000000"
    for bad in (lambda: dec2(b"1.234"), lambda: dec2(b"1e3"), lambda: _conv_decimal(3, 2)(b"10"),
                lambda: _conv_date(b"2024-02-30"), lambda: _conv_bool(2)):
        try:
            bad()
        except ValueError:
            pass
        else:
            raise AssertionError("malformed source value accepted")

    # The two implementations agree on every type, NULLs included, and order does not matter.
    cols = [
        SourceColumn("b", "BOOLEAN", "bool"), SourceColumn("i", "INT", "int32"),
        SourceColumn("l", "BIGINT", "int64"), SourceColumn("d", "DECIMAL(38,4)", "decimal", 38, 4),
        SourceColumn("f", "DOUBLE", "float64"), SourceColumn("dt", "DATE", "date"),
        SourceColumn("ts", "DATETIME", "timestamp"), SourceColumn("s", "TEXT", "string"),
        SourceColumn("bin", "BLOB", "binary"),
    ]
    src_rows = [
        (1, -42, 2 ** 63 - 1, b"-1234.5600", 0.1, b"1900-01-01", b"1969-12-31 23:59:59.5",
         "é 漢字 🎉".encode(), b"\x00\xff"),
        (0, None, -(2 ** 63), b"12345678901234567890123456789012.3456", float("-inf"), None,
         b"2024-02-29 12:00:00", b"", b""),
        (None, 0, None, None, None, b"1970-01-01", None, None, None),
    ]
    arrow_cols = {
        "b": pa.array([True, False, None]), "i": pa.array([-42, None, 0], pa.int32()),
        "l": pa.array([2 ** 63 - 1, -(2 ** 63), None], pa.int64()),
        "d": pa.array([Decimal("-1234.5600"), Decimal("12345678901234567890123456789012.3456"),
                       None], pa.decimal128(38, 4)),
        "f": pa.array([0.1, float("-inf"), None]),
        "dt": pa.array([_dt.date(1900, 1, 1), None, _dt.date(1970, 1, 1)]),
        "ts": pa.array([_dt.datetime(1969, 12, 31, 23, 59, 59, 500000),
                        _dt.datetime(2024, 2, 29, 12), None], pa.timestamp("us")),
        "s": pa.array(["é 漢字 🎉", "", None]), "bin": pa.array([b"\x00\xff", b"", None]),
    }
    batch = pa.record_batch(arrow_cols)
    s = Digest()
    s.add_rows(source_row_bytes(src_rows, cols))
    names = [c.name for c in cols]
    a = arrow_digest([batch], names)
    assert (s.rows, s.fingerprint) == (a.rows, a.fingerprint), (s, a)
    # Reversed row order, split over two batches, columns shuffled in the batch: same result.
    rev = batch.take(pa.array([2, 1, 0]))
    rev = rev.select(list(reversed(rev.schema.names)))
    a2 = arrow_digest([rev.slice(0, 1), rev.slice(1)], names)
    assert a2.fingerprint == a.fingerprint
    # One changed cell changes it; NULL differs from the empty string.
    changed = batch.set_column(7, "s", pa.array(["e 漢字 🎉", "", None]))
    assert arrow_digest([changed], names).fingerprint != a.fingerprint
    nul = batch.set_column(7, "s", pa.array(["é 漢字 🎉", None, None]))
    assert arrow_digest([nul], names).fingerprint != a.fingerprint
    print("self-test OK: empty=" + EMPTY_FINGERPRINT + " one-int-row=" + ONE_INT_ROW_FINGERPRINT)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Independently verify an Iceberg lake written by dag against its SQLite "
                    "source (pyiceberg and DuckDB readers).")
    p.add_argument("--source", help="SQLite source database")
    p.add_argument("--expect", help="instead of --source: JSON {table: {rows, fingerprint, "
                                    "columns: [[name, iceberg type], ...]}} computed from the "
                                    "source's values by the caller")
    p.add_argument("--catalog", help="SQLite file holding the Iceberg SQL catalog, the "
                   "postgres://user@host:port/db URI of a PostgreSQL one, or the http(s):// URI "
                   "of a REST catalog (bearer token in DAG_TEST_REST_TOKEN)")
    p.add_argument("--catalog-name", default="dag", help="catalog name (default: dag)")
    p.add_argument("--warehouse", help="warehouse directory, or s3://bucket/prefix")
    p.add_argument("--s3-endpoint", help="S3-compatible server, e.g. http://127.0.0.1:9000 "
                                         "(default: AWS)")
    p.add_argument("--s3-region", default="us-east-1", help="S3 region (default: us-east-1)")
    p.add_argument("--s3-path-style", action="store_true",
                   help="path-style S3 URLs (MinIO-like servers) instead of virtual-host style")
    p.add_argument("--namespace", help="Iceberg namespace (e.g. worldzone)")
    p.add_argument("--tables", help="comma-separated table names (default: all user tables)")
    p.add_argument("--readers", default=",".join(READERS),
                   help="comma-separated subset of: " + ", ".join(READERS))
    p.add_argument("--target-db", help="also compare this SQLite target database's tables")
    p.add_argument("--json", help="write the per-table results to this JSON file")
    p.add_argument("--latest-by", metavar="KEY:CURSOR",
                   help="the lake tables are logs of row versions (incremental appends): compare "
                        "only the row with the largest CURSOR of each KEY")
    p.add_argument("--self-test", action="store_true",
                   help="check the fingerprint implementation against known values and exit")
    args = p.parse_args(argv)
    if args.self_test:
        return args
    needed = ("catalog", "warehouse", "namespace") + (() if args.expect else ("source",))
    missing = [f"--{k.replace('_', '-')}" for k in needed if not getattr(args, k)]
    if missing:
        p.error("missing " + ", ".join(missing))
    args.s3 = None
    checks = [("--source", args.source or args.expect, False),
              ("--catalog", None if "://" in args.catalog else args.catalog, False)]
    if args.warehouse.startswith("s3://"):
        keys = [os.environ.get(v, "") for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
        if not all(keys):
            p.error("an s3:// --warehouse needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                    "in the environment")
        args.s3 = S3Options(args.s3_endpoint, args.s3_region, args.s3_path_style, *keys)
    elif "://" in args.warehouse:
        p.error(f"--warehouse {args.warehouse}: a directory or s3://bucket/prefix")
    else:
        checks.append(("--warehouse", args.warehouse, True))
    for flag, path, is_dir in checks:
        if path is not None and not (os.path.isdir(path) if is_dir else os.path.isfile(path)):
            p.error(f"{flag} {path}: no such {'directory' if is_dir else 'file'}")
    args.reader_list = [r.strip() for r in args.readers.split(",") if r.strip()]
    unknown = [r for r in args.reader_list if r not in READERS]
    if unknown or not args.reader_list:
        p.error(f"--readers: unknown {unknown or 'empty list'}; choose from {', '.join(READERS)}")
    args.table_list = [t.strip() for t in args.tables.split(",") if t.strip()] \
        if args.tables is not None else None
    if args.table_list is not None and not args.table_list:
        p.error("--tables: empty list")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    global LATEST_BY
    if args.latest_by:
        key, _, cursor = args.latest_by.partition(":")
        LATEST_BY = (key, cursor)
    if args.self_test:
        self_test()
        return 0

    if args.expect:
        with open(args.expect, encoding="utf-8") as f:
            expected = json.load(f)
        catalog = open_catalog(args.catalog_name, args.catalog, args.warehouse, args.s3)
        duck = DuckDBReader(args.s3) if "duckdb" in args.reader_list else None
        reports = []
        try:
            for t, want in expected.items():
                rep = check_expected(t, want, catalog, args.namespace, args.reader_list, duck)
                print(rep.line(args.reader_list), flush=True)
                reports.append(rep)
        finally:
            if duck is not None:
                duck.close()
        failed = [r for r in reports if r.failures]
        for r in failed:
            print(f"  {r.name}: " + "; ".join(r.failures), file=sys.stderr)
        return 1 if failed else 0

    src = sqlite3.connect(f"file:{os.path.abspath(args.source)}?mode=ro", uri=True)
    src.text_factory = bytes  # TEXT cells as their raw UTF-8 bytes
    available = source_tables(src)
    if args.table_list is None:
        tables = available
    else:
        by_lower = {t.lower(): t for t in available}
        absent = [t for t in args.table_list if t.lower() not in by_lower]
        if absent:
            print(f"error: --tables: not in the source: {', '.join(absent)}", file=sys.stderr)
            return 2
        tables = [by_lower[t.lower()] for t in args.table_list]
    if not tables:
        print("error: the source has no user tables", file=sys.stderr)
        return 2

    catalog = open_catalog(args.catalog_name, args.catalog, args.warehouse, args.s3)
    duck = DuckDBReader(args.s3) if "duckdb" in args.reader_list else None
    target = None
    if args.target_db:
        target = sqlite3.connect(f"file:{os.path.abspath(args.target_db)}?mode=ro", uri=True)
        target.text_factory = bytes
    shown = args.reader_list + (["target"] if target is not None else [])
    reports = []
    try:
        for t in tables:
            rep = check_table(t, src, catalog, args.namespace, args.reader_list, duck, target)
            print(rep.line(shown), flush=True)
            reports.append(rep)
    finally:
        if duck is not None:
            duck.close()
        src.close()
        if target is not None:
            target.close()

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({r.name: r.as_json() for r in reports}, f, indent=2)
            f.write("\n")

    failed = [r for r in reports if r.failures]
    if failed:
        print(f"FAILED: {len(failed)} of {len(reports)} tables", file=sys.stderr)
        for r in failed:
            print(f"  {r.name}: " + "; ".join(r.failures), file=sys.stderr)
        return 1
    print(f"all {len(reports)} tables match the source ({', '.join(shown)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
