"""A registered model's files as one sha256: recorded at registration, checked before every load.

Training downloads the model it just logged, hashes the files the server holds and registers
the version with the digest as the tag `ct.model_sha256`. Whatever loads a version to use it
(evaluation, batch inference, the drift check) goes through `load_verified`: it downloads the
version's files into a temporary folder, recomputes the digest, refuses on a difference and
only then loads the model from that verified local copy, never from the store a second time.

This catches a model file changed in the artifact store after registration (a bucket or a
volume writable by more people than the registry, a partial restore, bit rot). It does not
protect against someone who can write both the artifacts and the version's tags.

A version without the tag (registered before digests were recorded) is refused too: trusting
it silently would make the check optional for exactly the oldest models. After checking such a
version by hand, `python -m continuous_training.cli record-digest <model> <version>` records
the digest of what is stored now.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training import registry

if TYPE_CHECKING:
    from mlflow import MlflowClient

TAG_MODEL_SHA = "ct.model_sha256"
# MLflow's client writes this file into every model it downloads (name and version of the
# request); the server does not store it, so it is not part of what was registered.
CLIENT_WRITTEN = frozenset({"registered_model_meta"})
_CHUNK = 1 << 20


class ModelDigestError(registry.RegistryRefusedError):
    """A model version's files do not match its recorded digest, or it has none."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def directory_digest(root: Path) -> str:
    """sha256 over `<sha256 of file>  <relative path>` lines, one per file, sorted by path.

    The lines are what `sha256sum` prints, so the digest can be recomputed by hand:
    `(cd model && find . -type f ! -name registered_model_meta -printf '%P\\n' | LC_ALL=C sort
    | xargs -d '\\n' sha256sum) | sha256sum`. Renaming, adding or removing a file changes it
    as much as changing a byte.
    """
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix() not in CLIENT_WRITTEN
    )
    lines = "".join(f"{file_sha256(root / name)}  {name}\n" for name in files)
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def download(model_uri: str, destination: Path) -> Path:
    import mlflow

    return Path(
        mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(destination))
    )


def digest_of(model_uri: str) -> str:
    """The digest of a logged model's files as the tracking server holds them."""
    with tempfile.TemporaryDirectory(prefix="ct-model-") as tmp:
        return directory_digest(download(model_uri, Path(tmp)))


def _check(model_name: str, version: str, recorded: str | None, found: str) -> None:
    if recorded is None:
        raise ModelDigestError(
            f"model {model_name} version {version} has no {TAG_MODEL_SHA} tag (registered "
            "before model digests were recorded), so its artifacts cannot be verified: "
            "retrain, or check it and run `python -m continuous_training.cli record-digest "
            f"{model_name} {version}`"
        )
    if recorded != found:
        raise ModelDigestError(
            f"model {model_name} version {version}: its artifacts do not match the digest "
            f"recorded at registration ({TAG_MODEL_SHA}): recorded {recorded}, found {found}; "
            "refusing to load it (the artifact store changed after registration)"
        )


def _verified_copy(
    client: MlflowClient, model_name: str, version: str, folder: Path
) -> tuple[Path, str]:
    """The version's files downloaded into `folder`, and their digest, once it matched."""
    recorded = registry.version_tags(client, model_name, version).get(TAG_MODEL_SHA)
    local = download(registry.model_uri(model_name, version), folder)
    found = directory_digest(local)
    _check(model_name, version, recorded, found)
    return local, found


def verify(client: MlflowClient, model_name: str, version: str) -> str:
    """The digest of the version's stored files, once it matched the recorded one."""
    with tempfile.TemporaryDirectory(prefix="ct-model-") as tmp:
        return _verified_copy(client, model_name, version, Path(tmp))[1]


def import_skops() -> Any:
    """`skops.io`, the format MLflow keeps sklearn models in, imported without a warning flood.

    On import, skops looks every scipy.special ufunc up in every loaded module. In a task
    process that includes Airflow's deprecated-name shims, and each lookup there warns:
    1,160 "attribute is deprecated" lines, 99% of the log of every task that saves or loads
    a model. They say nothing about the task; the scan itself still runs (about 2 s).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"skops\.io\._utils")
        import skops.io

    return skops.io


def load_verified(client: MlflowClient, model_name: str, version: str) -> Any:
    """The sklearn model of a version, loaded from a local copy that matched its digest."""
    import mlflow

    import_skops()
    with tempfile.TemporaryDirectory(prefix="ct-model-") as tmp:
        local, _ = _verified_copy(client, model_name, version, Path(tmp))
        return mlflow.sklearn.load_model(str(local))


def record(client: MlflowClient, model_name: str, version: str) -> str:
    """Tag a version registered without a digest with the digest of its files as stored now."""
    if TAG_MODEL_SHA in registry.version_tags(client, model_name, version):
        raise ModelDigestError(
            f"model {model_name} version {version} already has {TAG_MODEL_SHA}: "
            "a recorded digest is never replaced"
        )
    digest = digest_of(registry.model_uri(model_name, version))
    registry.set_version_tags(client, model_name, version, {TAG_MODEL_SHA: digest})
    return digest
