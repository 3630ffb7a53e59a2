"""The digest of a model's files: what changes it, what does not, and the refusal messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from continuous_training import model_digest
from continuous_training.model_digest import ModelDigestError, directory_digest


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.skops").write_bytes(bytes(range(256)) * 10)
    (root / "sub" / "extra.json").write_text("{}")
    return root


def test_the_digest_is_what_sha256sum_prints_hashed(model_dir: Path) -> None:
    """The docstring's shell recipe gives the same digest, so anyone can recompute it."""
    shell = (
        "find . -type f ! -name registered_model_meta -printf '%P\\n' | LC_ALL=C sort "
        "| xargs -d '\\n' sha256sum | sha256sum"
    )
    out = subprocess.run(["bash", "-c", shell], cwd=model_dir, capture_output=True, text=True)
    assert out.stdout.split()[0] == directory_digest(model_dir)


def test_any_change_of_content_name_or_file_set_changes_it(model_dir: Path) -> None:
    before = directory_digest(model_dir)
    assert directory_digest(model_dir) == before
    (model_dir / "model.skops").write_bytes((model_dir / "model.skops").read_bytes() + b"\0")
    changed = directory_digest(model_dir)
    assert changed != before
    (model_dir / "sub" / "extra.json").rename(model_dir / "sub" / "moved.json")
    renamed = directory_digest(model_dir)
    assert renamed != changed
    (model_dir / "new.py").write_text("import os")
    assert directory_digest(model_dir) != renamed


def test_the_file_the_client_writes_on_download_does_not_count(model_dir: Path) -> None:
    before = directory_digest(model_dir)
    (model_dir / "registered_model_meta").write_text("model_name: churn\nmodel_version: '3'\n")
    assert directory_digest(model_dir) == before


def test_a_mismatch_names_model_version_and_both_digests() -> None:
    with pytest.raises(ModelDigestError) as error:
        model_digest._check("churn", "3", "a" * 64, "b" * 64)
    message = str(error.value)
    assert "model churn version 3" in message
    assert f"recorded {'a' * 64}, found {'b' * 64}" in message


def test_a_version_without_a_digest_is_refused_with_the_way_out() -> None:
    with pytest.raises(ModelDigestError, match=r"has no ct\.model_sha256 tag") as error:
        model_digest._check("churn", "1", None, "b" * 64)
    assert "record-digest churn 1" in str(error.value)


# What a worker's task process has loaded before our code runs; then skops, as each way in.
TASK_PROCESS_IMPORT = """
import json, sys, warnings
import airflow.sdk.execution_time.task_runner
warnings.simplefilter("always")
shown = []
warnings.showwarning = lambda message, category, *rest, **kw: shown.append(category.__name__)
if sys.argv[1] == "toolkit":
    from continuous_training import model_digest
    model_digest.import_skops()
import skops.io
print(json.dumps(shown))
"""


@pytest.mark.parametrize(("way", "floods"), [("plain", True), ("toolkit", False)])
def test_skops_imports_without_airflow_deprecation_warnings(way: str, floods: bool) -> None:
    """Plainly imported in a task process, skops warns 1,160 times; through the toolkit, never."""
    out = subprocess.run(
        [sys.executable, "-c", TASK_PROCESS_IMPORT, way],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    shown = json.loads(out.stdout.strip().splitlines()[-1])
    assert ("DeprecatedImportWarning" in shown) is floods, shown[:5]
