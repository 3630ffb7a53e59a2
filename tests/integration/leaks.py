"""Where a raw value (an e-mail, a phone number) was written: files, inside parquet and zip too.

Parquet compresses and dictionary-encodes strings, and skops models and wheels are zip
files, so a byte search of the raw file is not enough: parquet files are also read column by
column (and their key-value metadata), zip members are searched decompressed.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

PARQUET_MAGIC = b"PAR1"
ZIP_MAGIC = b"PK\x03\x04"


def _parquet_texts(data: bytes) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(io.BytesIO(data))
    for key, value in (parquet.schema_arrow.metadata or {}).items():
        yield key + b"=" + value
    table = parquet.read()
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            yield "\n".join(v for v in column.to_pylist() if v is not None).encode()
        elif pa.types.is_binary(column.type):
            yield b"\n".join(v for v in column.to_pylist() if v is not None)


def _zip_members(data: bytes) -> Iterator[bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            yield archive.read(name)


def _views(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The file as bytes, then what it holds once decoded (parquet cells, zip members)."""
    yield "bytes", data
    if data.startswith(PARQUET_MAGIC) and data.endswith(PARQUET_MAGIC):
        for text in _parquet_texts(data):
            yield "parquet cells", text
    if data.startswith(ZIP_MAGIC):
        for member in _zip_members(data):
            yield "zip member", member


def files_under(roots: Iterable[Path]) -> Iterator[Path]:
    """Each root that is a file, and every file below each root that is a folder."""
    for root in roots:
        if root.is_file():
            yield root
        else:
            yield from (p for p in sorted(root.rglob("*")) if p.is_file())


def find(marker: bytes, roots: Iterable[Path]) -> list[str]:
    """`<path> (<where in it>)` for every file under `roots` that holds `marker`."""
    found = []
    for path in files_under(roots):
        for view, data in _views(path.read_bytes()):
            if marker in data:
                found.append(f"{path} ({view})")
                break
    return found


def parquet_column_values(roots: Iterable[Path], column: str) -> set[str]:
    """Every value of `column` in the parquet files under `roots` that have it."""
    import pyarrow.parquet as pq

    values: set[str] = set()
    for path in files_under(roots):
        if path.suffix == ".parquet" and column in pq.read_schema(path).names:
            values |= set(pq.read_table(path, columns=[column]).column(column).to_pylist())
    return values
