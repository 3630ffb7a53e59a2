"""The data root: where snapshots, holdouts and small JSON records live.

Everything here takes either a local path or an fsspec URL (`s3://bucket/ct`,
`memory://ct`, `file:///srv/ct`), so the same code runs on a laptop and in a
cluster. Writes are atomic (temp name next to the target, then a rename) so a
reader never sees a half-written file and a re-run replaces instead of
duplicating; every data file is hashed (sha256 of the exact bytes written)
because the hash, not the path, is what decisions are recorded against.

Path building imports nothing heavy, so it is safe to use at DAG-parse time (it
only resolves local paths to catch symlinks leading out of the data root); pyarrow,
pandas and fsspec are imported inside the functions that need them.

Every path the project builds under the data root goes through `join`, and every path
a task is handed by another (XCom) through `require_in_data_root`: both refuse a path
that resolves outside the root (`..`, an absolute path, a symlink out), naming both.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from continuous_training.errors import BadInputError

if TYPE_CHECKING:
    import pandas as pd
    from fsspec import AbstractFileSystem

DEFAULT_DATA_ROOT = "~/.local/share/continuous-training/data"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")
_CHUNK = 1 << 20


class StorageError(BadInputError):
    """A storage path or operation is invalid; the message names the path or part."""


def data_root() -> str:
    """The data root: `CT_DATA_ROOT` if set, else a folder under the user's home.

    URLs are kept as they are (minus a trailing slash); local paths are expanded and
    made absolute so that the working directory of a worker never matters.
    """
    root = os.environ.get("CT_DATA_ROOT") or DEFAULT_DATA_ROOT
    if _is_url(root):
        return root if root.endswith("://") else root.rstrip("/")
    return os.path.abspath(os.path.expanduser(root))


def safe_token(value: str) -> str:
    """Map any string (e.g. an Airflow run id) onto [A-Za-z0-9._=-], replacing the rest with `_`.

    Run ids such as `scheduled__2026-03-01T02:00:00+00:00` contain `:` and `+`, which
    are awkward or illegal in object-store keys and Windows paths.
    """
    return _UNSAFE.sub("_", str(value))


def join(root: str, *parts: str) -> str:
    """Join `parts` under `root`, refusing anything that could escape it.

    A part may hold several `/`-separated segments; each segment is passed through
    `safe_token`. Absolute parts, parts containing `..` and empty or `.` segments raise
    `StorageError` naming the part: these paths are built from config values and run ids,
    and a mistake there must not write outside the data root. The joined path must also
    resolve under `root` (see `require_inside`).
    """
    if not root:
        raise StorageError("storage root is empty")
    segments: list[str] = []
    for part in parts:
        segments.extend(_checked_segments(part))
    if not segments:
        return root
    base = root if root.endswith("/") else root + "/"
    # Segments cannot hold '/' or '..', but a symlink on the way can still lead out.
    return require_inside(base + "/".join(segments), root)


def require_inside(uri: str, root: str, what: str = "path") -> str:
    """`uri` itself if, with `..` and symlinks resolved, it lies under `root`; else StorageError.

    Local paths are resolved on disk (`os.path.realpath`, so a symlink pointing out of the
    root is caught); object-store URLs have no symlinks, only `..` to fold. The error names
    `what`, the path, where it resolves to and the root.
    """
    resolved, base = _resolved(uri), _resolved(root)
    prefix = base if base.endswith("/") else base + "/"
    if resolved != base and not resolved.startswith(prefix):
        raise StorageError(
            f"{what} {uri!r} resolves to {resolved!r}, which is not under {root!r}: "
            "refused, paths must stay inside the data root (CT_DATA_ROOT)"
        )
    return uri


def require_in_data_root(uri: str, what: str = "path") -> str:
    """`require_inside(uri, data_root())`: for paths handed over by another task (XCom)."""
    return require_inside(str(uri), data_root(), what)


def _resolved(uri: str) -> str:
    """`uri` with `.`/`..` folded and, for local paths, symlinks followed."""
    local = uri.removeprefix("file://")
    if not _is_url(local):
        return os.path.realpath(os.path.expanduser(local))
    scheme, _, rest = local.partition("://")
    # Rooted, so '..' cannot climb above the bucket; the trailing '/' of a bare
    # `memory://` root is kept by leaving an empty path empty.
    path = posixpath.normpath("/" + rest).lstrip("/") if rest else ""
    return f"{scheme}://{path}"


def _checked_segments(part: str) -> list[str]:
    text = str(part)
    if not text:
        raise StorageError("empty path part")
    if text.startswith(("/", "\\")) or _is_url(text) or re.match(r"^[A-Za-z]:[\\/]", text):
        raise StorageError(f"absolute path part {text!r} is not allowed")
    if ".." in text:
        raise StorageError(f"path part {text!r} contains '..'")
    segments = [safe_token(s) for s in text.split("/")]
    if any(s in ("", ".") for s in segments):
        raise StorageError(f"path part {text!r} has an empty or '.' segment")
    return segments


def snapshot_uri(pipeline: str, run_id: str, name: str = "snapshot.parquet") -> str:
    """`<root>/<pipeline>/runs/<safe run_id>/<name>`: one folder per pipeline run."""
    return join(data_root(), pipeline, "runs", run_id, name)


def _is_url(value: str) -> bool:
    return "://" in value


def _fs(uri: str) -> tuple[AbstractFileSystem, str]:
    from fsspec.core import url_to_fs

    return url_to_fs(uri)


def _is_local(fs: AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def write_bytes_atomic(data: bytes, uri: str) -> dict[str, Any]:
    """Write `data` to `uri` through a temp name and a rename; return uri, sha256 and size."""
    with open_atomic(uri) as fh:
        fh.write(data)
    return {"uri": uri, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


@contextmanager
def open_atomic(uri: str) -> Iterator[BinaryIO]:
    """A binary file handle whose content appears at `uri` only when the block succeeds.

    Readers see the old file, or none, until the rename; a failure leaves nothing behind,
    also for writers that stream (a pyarrow ParquetWriter fed batch by batch). Locally the
    rename is `os.replace` (atomic on POSIX) after an fsync; on object stores `fs.mv` is
    used, whose final PUT is what readers see.
    """
    fs, path = _fs(uri)
    parent, _, name = path.rpartition("/")
    if not name:
        raise StorageError(f"{uri!r} does not name a file")
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex}"
    try:
        with fs.open(tmp, "wb") as fh:
            yield fh
            if _is_local(fs):
                fh.flush()
                os.fsync(fh.fileno())
        if _is_local(fs):
            os.replace(tmp, path)
        else:
            fs.mv(tmp, path)
    except BaseException:
        _remove_quietly(fs, tmp)
        raise


def list_files(uri: str, pattern: str = "*") -> list[str]:
    """The files directly under the folder `uri` matching `pattern`, as URIs, sorted."""
    fs, path = _fs(uri)
    if not fs.exists(path):
        return []
    prefix = uri[: len(uri) - len(path)] if uri.endswith(path) else ""
    return sorted(prefix + p for p in fs.glob(f"{path.rstrip('/')}/{pattern}"))


def list_entries(uri: str) -> list[str]:
    """The files and folders directly under the folder `uri`, as URIs, sorted."""
    fs, path = _fs(uri)
    if not fs.exists(path):
        return []
    prefix = uri[: len(uri) - len(path)] if uri.endswith(path) else ""
    return sorted(prefix + p for p in fs.ls(path, detail=False))


def remove(uri: str, recursive: bool = False) -> None:
    """Remove the file (or, with `recursive`, the folder) at `uri` if it exists."""
    fs, path = _fs(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


def _remove_quietly(fs: AbstractFileSystem, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path)
    except Exception:  # cleanup must never hide the original error
        pass


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """Serialize a DataFrame to parquet bytes, deterministically.

    The index is dropped (`preserve_index=False`): otherwise a RangeIndex versus a
    filtered index would change the pandas metadata, and so the hash, of equal data.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def write_parquet_atomic(df: pd.DataFrame, uri: str) -> dict[str, Any]:
    """Write `df` as parquet to `uri` atomically; return uri, sha256, rows and bytes."""
    result = write_bytes_atomic(parquet_bytes(df), uri)
    return {**result, "rows": len(df)}


def write_json_atomic(obj: Any, uri: str) -> dict[str, Any]:
    """Write `obj` as JSON (sorted keys, indent 2, `default=str`) to `uri` atomically."""
    text = json.dumps(obj, sort_keys=True, indent=2, default=str) + "\n"
    return write_bytes_atomic(text.encode("utf-8"), uri)


def read_parquet(uri: str) -> pd.DataFrame:
    """Read a parquet file at `uri` into a DataFrame.

    Bytes that are not a readable parquet file (truncated, another format) raise
    `StorageError` naming the file; an I/O failure (OSError) is left as it is, to retry.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, path = _fs(uri)
    _require(fs, path, uri)
    with fs.open(path, "rb") as fh:
        try:
            return pq.read_table(fh).to_pandas()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise StorageError(f"{uri} is not a readable parquet file: {_first_line(exc)}") from exc


def read_json(uri: str) -> Any:
    """Read the JSON file at `uri`; bytes that are not JSON raise `StorageError` naming it."""
    fs, path = _fs(uri)
    _require(fs, path, uri)
    with fs.open(path, "rb") as fh:
        data = fh.read()
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StorageError(f"{uri} is not a readable JSON file: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def sha256_of(uri: str) -> str:
    """The sha256 of the file at `uri`, read in 1 MiB chunks so memory stays flat."""
    fs, path = _fs(uri)
    _require(fs, path, uri)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def exists(uri: str) -> bool:
    fs, path = _fs(uri)
    return bool(fs.exists(path))


def _require(fs: AbstractFileSystem, path: str, uri: str) -> None:
    if not fs.exists(path):
        raise FileNotFoundError(f"no such file: {uri}")
