"""Personal data in a pipeline's source: hashed with a key, or dropped, as soon as it is fetched.

The YAML's `pii` section names the columns (`pii: {hash: [email], drop: [phone]}`). Every
fetch goes through `sources.fetch_window`, which calls `apply` before the frame is returned,
and batch inference calls it on each record batch it reads straight from a file. So no
snapshot, holdout, drift sample, model example, report, prediction or error message written
after the fetch can hold a raw value: the rules are applied before any of them exists.

Hashing is HMAC-SHA256 keyed with a secret from the environment (`pii.key_env`, by default
`CT_PII_HASH_KEY`). The same value always gives the same hash under the same key, so hashed
ids still join across runs, snapshots and predictions; without the key, hashing a dictionary
of e-mail addresses does not find them, as it would for a bare sha256.

No Airflow here: the key is read from the process environment, where a worker puts it
(docker-compose.yaml passes it from `.env`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from continuous_training.errors import BadInputError

if TYPE_CHECKING:
    import pandas as pd

    from continuous_training.config import PiiConfig, PipelineConfig

log = logging.getLogger(__name__)

# 32 characters: 128 bits as hex. A shorter key could be guessed, and with it every hash
# could be reversed by hashing candidate values.
MIN_KEY_CHARS = 32


class PiiError(BadInputError):
    """The PII rules cannot be applied; the message names the key or variable to fix."""


def hash_key(config: PiiConfig, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key from `config.key_env`; refused when missing or short, never echoed."""
    environ = os.environ if environ is None else environ
    value = environ.get(config.key_env, "")
    if not value:
        raise PiiError(
            f"pii.hash lists {config.hash} but the environment variable {config.key_env} "
            "(pii.key_env) is not set: set it to a secret of at least "
            f"{MIN_KEY_CHARS} characters, the same on every worker (docs/operations/security.md)"
        )
    if len(value) < MIN_KEY_CHARS:
        raise PiiError(
            f"the environment variable {config.key_env} (pii.key_env) holds {len(value)} "
            f"characters; a PII hash key needs at least {MIN_KEY_CHARS}"
        )
    return value.encode("utf-8")


def keyed_hash(value: object, key: bytes) -> str:
    """HMAC-SHA256 of the value's text, as 64 hex characters."""
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def hash_column(values: pd.Series, key: bytes) -> pd.Series:
    """Every non-null value replaced by its keyed hash; nulls stay null (not_null still checks)."""
    import pandas as pd

    hashed = [None if pd.isna(v) else keyed_hash(v, key) for v in values.to_numpy()]
    return pd.Series(hashed, index=values.index, dtype="object", name=values.name)


@dataclass(frozen=True)
class Rules:
    """The `pii` section with its key resolved: call it on each frame (or record batch) read."""

    drop: tuple[str, ...] = ()
    hash: tuple[str, ...] = ()
    key: bytes | None = None

    @property
    def active(self) -> bool:
        return bool(self.drop or self.hash)

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.active:
            return frame
        dropped = frame.drop(columns=[c for c in self.drop if c in frame.columns])
        to_hash = [c for c in self.hash if c in dropped.columns]
        if not to_hash or self.key is None:
            return dropped
        return dropped.assign(**{c: hash_column(dropped[c], self.key) for c in to_hash})


def rules_for(pipeline: PipelineConfig, environ: Mapping[str, str] | None = None) -> Rules:
    """The pipeline's rules, the key read once; fails before any data is read without it."""
    config = pipeline.pii
    key = hash_key(config, environ) if config.hash else None
    return Rules(drop=tuple(config.drop), hash=tuple(config.hash), key=key)


def apply(
    frame: pd.DataFrame, pipeline: PipelineConfig, environ: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The fetched frame with `pii.drop` columns removed and `pii.hash` columns hashed.

    Columns the frame does not hold are left alone (a scoring source may lack a column the
    training source has); they are logged by name, so that a misspelt rule shows.
    """
    rules = rules_for(pipeline, environ)
    if rules.active:
        _log_absent(pipeline.pii, list(frame.columns))
    return rules(frame)


def _log_absent(config: PiiConfig, columns: list[str]) -> None:
    for setting, names in (("pii.hash", config.hash), ("pii.drop", config.drop)):
        absent = [c for c in names if c not in columns]
        if absent:
            log.warning(
                "%s: columns %s are not in the data read (columns: %s)", setting, absent, columns
            )
