"""Storage: atomic writes, stable hashes, safe paths, fsspec URLs."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from continuous_training import storage
from continuous_training.storage import StorageError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_time": pd.date_range("2026-03-01", periods=50, freq="h", tz="UTC"),
            "customer_id": [f"C{i:03d}" for i in range(50)],
            "monthly_charges": [20.5 + i for i in range(50)],
            "plan": ["basic", "premium"] * 25,
        }
    )


def test_data_root_defaults_to_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CT_DATA_ROOT", raising=False)
    root = storage.data_root()
    assert root == str(Path.home() / ".local/share/continuous-training/data")


def test_data_root_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CT_DATA_ROOT", "s3://bucket/ct/")
    assert storage.data_root() == "s3://bucket/ct"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CT_DATA_ROOT", "relative/data")
    assert storage.data_root() == str(tmp_path / "relative/data")


def test_snapshot_uri_sanitizes_run_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CT_DATA_ROOT", "s3://bucket/ct")
    uri = storage.snapshot_uri("churn", "scheduled__2026-03-01T02:00:00+00:00")
    assert uri == "s3://bucket/ct/churn/runs/scheduled__2026-03-01T02_00_00_00_00/snapshot.parquet"


@pytest.mark.parametrize(
    ("raw", "token"),
    [
        ("scheduled__2026-03-01T02:00:00+00:00", "scheduled__2026-03-01T02_00_00_00_00"),
        ("manual run/ä", "manual_run__"),
        ("a.b=c-d_e", "a.b=c-d_e"),
    ],
)
def test_safe_token(raw: str, token: str) -> None:
    assert storage.safe_token(raw) == token


def test_join_builds_paths_under_root() -> None:
    assert storage.join("/data", "churn", "runs/x:1") == "/data/churn/runs/x_1"
    assert storage.join("memory://", "a", "b") == "memory://a/b"
    assert storage.join("s3://bucket/", "a") == "s3://bucket/a"


@pytest.mark.parametrize(
    "part",
    ["/etc/passwd", "..", "../up", "a/../../b", "a/..", "s3://other/x", "\\\\server\\x", "C:/x"],
)
def test_join_refuses_escapes(part: str) -> None:
    with pytest.raises(StorageError) as err:
        storage.join("/data/root", "churn", part)
    assert repr(part) in str(err.value)


@pytest.mark.parametrize("part", ["", "a//b", "./a"])
def test_join_refuses_empty_segments(part: str) -> None:
    with pytest.raises(StorageError):
        storage.join("/data/root", part)


def test_write_parquet_atomic_is_stable_and_replaces(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = str(tmp_path / "churn/runs/r1/snapshot.parquet")  # parents do not exist yet
    first = storage.write_parquet_atomic(frame, uri)
    assert first["uri"] == uri
    assert first["rows"] == 50
    assert first["bytes"] == Path(uri).stat().st_size
    assert first["sha256"] == hashlib.sha256(Path(uri).read_bytes()).hexdigest()
    assert storage.sha256_of(uri) == first["sha256"]

    # the same data with a different index and a copy hashes the same: index is not stored
    shuffled = frame.sample(frac=1, random_state=0).sort_values("event_time")
    second = storage.write_parquet_atomic(shuffled, uri)
    assert second["sha256"] == first["sha256"]

    third = storage.write_parquet_atomic(frame.head(10), uri)
    assert third["sha256"] != first["sha256"]
    assert len(storage.read_parquet(uri)) == 10
    assert sorted(p.name for p in Path(uri).parent.iterdir()) == ["snapshot.parquet"]


def test_parquet_round_trip_keeps_dtypes(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = str(tmp_path / "x.parquet")
    storage.write_parquet_atomic(frame, uri)
    pd.testing.assert_frame_equal(storage.read_parquet(uri), frame)


def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_text('{"old": true}\n')
    with pytest.raises(TypeError):  # fails while writing the temp file
        storage.write_bytes_atomic("not bytes", str(target))  # type: ignore[arg-type]

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(storage.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):  # fails at the rename
        storage.write_json_atomic({"new": True}, str(target))
    assert target.read_text() == '{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_json_is_sorted_and_stable(tmp_path: Path) -> None:
    uri = str(tmp_path / "decision.json")
    a = storage.write_json_atomic({"b": 1, "a": pd.Timestamp("2026-03-01", tz="UTC")}, uri)
    assert Path(uri).read_text().splitlines()[1].strip().startswith('"a"')
    assert storage.read_json(uri) == {"a": "2026-03-01 00:00:00+00:00", "b": 1}
    b = storage.write_json_atomic({"a": pd.Timestamp("2026-03-01", tz="UTC"), "b": 1}, uri)
    assert a["sha256"] == b["sha256"]


def test_exists_and_missing_files(tmp_path: Path) -> None:
    uri = str(tmp_path / "nope.parquet")
    assert not storage.exists(uri)
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet"):
        storage.read_parquet(uri)
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet"):
        storage.sha256_of(uri)


def test_memory_url_works(frame: pd.DataFrame) -> None:
    root = f"memory://ct-test-{uuid.uuid4().hex}"
    uri = storage.join(root, "churn", "runs", "manual__2026-03-01T00:00:00+00:00", "s.parquet")
    try:
        first = storage.write_parquet_atomic(frame, uri)
        second = storage.write_parquet_atomic(frame, uri)
        assert storage.exists(uri)
        assert first["sha256"] == second["sha256"] == storage.sha256_of(uri)
        pd.testing.assert_frame_equal(storage.read_parquet(uri), frame)
        fs, path = fsspec.core.url_to_fs(uri)
        assert [p.rsplit("/", 1)[-1] for p in fs.ls(path.rsplit("/", 1)[0], detail=False)] == [
            "s.parquet"
        ]
        storage.write_json_atomic({"ok": True}, storage.join(root, "m.json"))
        assert storage.read_json(storage.join(root, "m.json")) == {"ok": True}
    finally:
        fs, path = fsspec.core.url_to_fs(root)
        fs.rm(path, recursive=True)


# --------------------------------------------------------------------------- the data root


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root with a folder outside it, and CT_DATA_ROOT pointing at the root."""
    (tmp_path / "root" / "churn").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    monkeypatch.setenv("CT_DATA_ROOT", str(tmp_path / "root"))
    return tmp_path / "root"


def test_join_refuses_a_symlink_out_of_the_root(root: Path) -> None:
    (root / "elsewhere").symlink_to(root.parent / "outside", target_is_directory=True)
    with pytest.raises(StorageError) as err:
        storage.join(str(root), "elsewhere", "runs", "r1", "snapshot.parquet")
    message = str(err.value)
    assert f"'{root}/elsewhere/runs/r1/snapshot.parquet'" in message
    assert f"resolves to '{root.parent}/outside/runs/r1/snapshot.parquet'" in message
    assert f"not under '{root}'" in message and "CT_DATA_ROOT" in message


def test_a_symlinked_data_root_and_links_inside_it_are_fine(root: Path, tmp_path: Path) -> None:
    link = tmp_path / "root-link"
    link.symlink_to(root, target_is_directory=True)
    (root / "alias").symlink_to(root / "churn", target_is_directory=True)
    assert storage.join(str(link), "alias", "x.json") == f"{link}/alias/x.json"


@pytest.mark.parametrize(
    "uri",
    ["{root}/churn/../../outside/x.parquet", "{root}/../outside/x.parquet", "/etc/passwd", "x.pq"],
    ids=["dotdot-deep", "dotdot", "absolute", "relative"],
)
def test_a_handed_over_path_outside_the_root_is_refused(root: Path, uri: str) -> None:
    uri = uri.format(root=root)
    with pytest.raises(StorageError) as err:
        storage.require_in_data_root(uri, "snapshot")
    assert str(err.value).startswith(f"snapshot {uri!r} resolves to ")
    assert repr(str(root)) in str(err.value)


def test_a_handed_over_symlink_out_of_the_root_is_refused(root: Path) -> None:
    secret = root.parent / "outside" / "secret.parquet"
    secret.write_bytes(b"PAR1")
    (root / "churn" / "snapshot.parquet").symlink_to(secret)
    with pytest.raises(StorageError, match=r"outside/secret\.parquet"):
        storage.require_in_data_root(str(root / "churn" / "snapshot.parquet"), "snapshot")


def test_a_handed_over_path_inside_the_root_is_returned_as_is(root: Path) -> None:
    inside = f"{root}/churn/runs/r1/../r2/snapshot.parquet"
    assert storage.require_in_data_root(inside) == inside
    assert storage.require_in_data_root(f"file://{root}/churn/x") == f"file://{root}/churn/x"


@pytest.mark.parametrize(
    ("uri", "inside"),
    [
        ("s3://bucket/ct/churn/x.parquet", True),
        ("s3://bucket/ct/churn/../../other/x.parquet", False),
        ("s3://bucket/ct-other/x.parquet", False),
        ("s3://other-bucket/ct/x.parquet", False),
        ("gs://bucket/ct/x.parquet", False),
    ],
)
def test_object_store_paths_are_checked_after_folding_dotdot(
    monkeypatch: pytest.MonkeyPatch, uri: str, inside: bool
) -> None:
    monkeypatch.setenv("CT_DATA_ROOT", "s3://bucket/ct")
    if inside:
        assert storage.require_in_data_root(uri) == uri
    else:
        with pytest.raises(StorageError, match=r"not under 's3://bucket/ct'"):
            storage.require_in_data_root(uri)


def test_unreadable_files_are_bad_input_naming_the_file(tmp_path: Path) -> None:
    import pandas as pd

    from continuous_training.errors import BadInputError

    good = tmp_path / "good.parquet"
    pd.DataFrame({"a": range(100)}).to_parquet(good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[:-50])
    message = f"{re.escape(str(cut))} is not a readable parquet file"
    with pytest.raises(storage.StorageError, match=message):
        storage.read_parquet(str(cut))
    (tmp_path / "bad.json").write_text('{"a": ')
    with pytest.raises(BadInputError, match=r"bad\.json is not a readable JSON file"):
        storage.read_json(str(tmp_path / "bad.json"))
    with pytest.raises(FileNotFoundError):  # absent, not bad: may appear on retry
        storage.read_parquet(str(tmp_path / "absent.parquet"))


def test_list_entries_and_recursive_remove(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "f").write_text("x")
    (tmp_path / "d" / "g").write_text("y")
    entries = storage.list_entries(str(tmp_path / "d"))
    assert [e.rsplit("/", 1)[-1] for e in entries] == ["g", "sub"]
    storage.remove(entries[1], recursive=True)
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["g"]
    assert storage.list_entries(str(tmp_path / "absent")) == []
