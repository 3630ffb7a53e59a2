"""PII rules: keyed hashing, dropping, their config checks, and where they are applied."""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from continuous_training import inference, pii, storage
from continuous_training.config import ConfigError, ModelConfig, PipelineConfig, parse_pipeline
from continuous_training.sources import SyntheticSource, Window, fetch_window, make_source
from continuous_training.training import build_model

MakeConfig = Callable[..., PipelineConfig]
PiiConfigMaker = Callable[..., PipelineConfig]
DAY = Window(datetime(2026, 2, 25, tzinfo=UTC), datetime(2026, 2, 26, tzinfo=UTC))
EMAIL = "alice.pii@example.com"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh key per test, in the variable the pipeline names (never a literal in the repo)."""
    value = secrets.token_hex(32)
    monkeypatch.setenv("CT_PII_HASH_KEY", value)
    return value


def reference_hash(value: str, key: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def crm_frame(make_config: MakeConfig) -> pd.DataFrame:
    """One day of the synthetic data as a CRM export: e-mail as the id, and a phone number."""
    frame = SyntheticSource(make_config()).fetch(DAY)
    emails = [f"{cid}.{EMAIL}" for cid in frame["customer_id"]]
    return frame.drop(columns=["customer_id"]).assign(
        email=emails, phone=[f"+1-555-01{i % 100:02d}" for i in range(len(frame))]
    )


@pytest.fixture
def pii_config(churn_config: dict[str, Any]) -> Callable[..., PipelineConfig]:
    """`pii_config(source=None, **pii)`: churn keyed by e-mail, which is hashed; phone dropped."""

    def build(source: dict[str, Any] | None = None, **rules: Any) -> PipelineConfig:
        data = copy.deepcopy(churn_config)
        data["id_columns"] = ["email"]
        columns = data["expectations"]["columns"]
        columns["email"] = columns.pop("customer_id")
        data["pii"] = {"hash": ["email"], "drop": ["phone"], **rules}
        if source:
            data["source"] = {**data["source"], **source}
        return parse_pipeline(data)

    return build


# --------------------------------------------------------------------------- hashing


def test_the_hash_is_keyed_deterministic_and_not_a_bare_sha256() -> None:
    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    digest = pii.keyed_hash(EMAIL, key)
    assert digest == pii.keyed_hash(EMAIL, key)  # joinable across runs
    assert digest == hmac.new(key, EMAIL.encode(), hashlib.sha256).hexdigest()
    assert digest != pii.keyed_hash(EMAIL, other)  # another key, another hash
    assert digest != hashlib.sha256(EMAIL.encode()).hexdigest()  # no dictionary attack
    assert digest != pii.keyed_hash("bob@example.com", key)
    assert len(digest) == 64 and EMAIL not in digest


def test_nulls_stay_null_and_other_values_hash_as_text() -> None:
    key = secrets.token_bytes(32)
    hashed = pii.hash_column(pd.Series([EMAIL, None, 7], name="email"), key)
    assert hashed.iloc[0] == pii.keyed_hash(EMAIL, key)
    assert hashed.iloc[1] is None
    assert hashed.iloc[2] == pii.keyed_hash("7", key)


def test_apply_hashes_and_drops_and_leaves_the_rest(
    pii_config: PiiConfigMaker, crm_frame: pd.DataFrame, key: str
) -> None:
    config, frame = pii_config(), crm_frame
    protected = pii.apply(frame, config)
    assert "phone" not in protected.columns
    assert protected["email"].tolist() == [reference_hash(e, key) for e in frame["email"]]
    rest = [c for c in frame.columns if c not in ("email", "phone")]
    pd.testing.assert_frame_equal(protected[rest], frame[rest])


def test_without_rules_the_frame_is_returned_as_it_is(make_config: MakeConfig) -> None:
    frame = pd.DataFrame({"a": [1]})
    assert pii.apply(frame, make_config()) is frame


def test_a_missing_key_names_the_variable(
    pii_config: PiiConfigMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CT_PII_HASH_KEY", raising=False)
    config = pii_config()
    with pytest.raises(pii.PiiError, match=r"pii.hash lists \['email'\].*CT_PII_HASH_KEY"):
        pii.apply(pd.DataFrame({"email": [EMAIL]}), config)


def test_a_short_key_is_refused_without_echoing_it(
    pii_config: PiiConfigMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "short-key-123")
    config = pii_config(key_env="MY_KEY")
    with pytest.raises(pii.PiiError, match=r"MY_KEY.*13 characters.*at least 32") as error:
        pii.rules_for(config)
    assert "short-key-123" not in str(error.value)


def test_drop_only_needs_no_key(make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CT_PII_HASH_KEY", raising=False)
    config = make_config(pii={"drop": ["phone"]})
    assert list(pii.apply(pd.DataFrame({"phone": ["x"], "a": [1]}), config).columns) == ["a"]


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pii": {"hash": ["email"], "drop": ["email"]}}, "in both pii.hash and pii.drop"),
        ({"pii": {"drop": ["phone", "phone"]}}, r"pii.drop: columns listed twice: \['phone'\]"),
        ({"pii": {"drop": ["plan"]}}, r"pii.drop: \['plan'\] also in features.categorical"),
        ({"pii": {"drop": ["customer_id"]}}, r"pii.drop: \['customer_id'\] also in id_columns"),
        ({"pii": {"hash": ["churned"]}}, r"pii.hash: \['churned'\] also in target"),
        ({"pii": {"hash": ["event_time"]}}, r"pii.hash: \['event_time'\] also in time_column"),
        ({"pii": {"hash": ["usage_gb"]}}, r"pii.hash: \['usage_gb'\] also in features.numeric"),
        ({"pii": {"hash": ["plan"]}}, r"expectations.columns.plan: allowed/min/max"),
        ({"pii": {"key_env": "not a name"}}, "pii.key_env"),
        ({"pii": {"hsah": ["email"]}}, "pii.hsah"),
    ],
)
def test_bad_pii_config_names_the_key(
    make_config: MakeConfig, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(**overrides)


def test_hashed_ids_and_categorical_features_are_allowed(make_config: MakeConfig) -> None:
    columns = {"plan": {"not_null": True, "allowed": None}}
    config = make_config(
        expectations={"columns": columns}, pii={"hash": ["customer_id", "plan"], "drop": ["phone"]}
    )
    assert config.pii.hash == ["customer_id", "plan"]


# --------------------------------------------------------------------------- where applied


@pytest.fixture
def crm_file(crm_frame: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "crm.parquet"
    crm_frame.to_parquet(path, index=False)
    return path


def test_fetch_window_protects_before_returning(
    pii_config: PiiConfigMaker, crm_file: Path, key: str
) -> None:
    path = crm_file
    config = pii_config(source={"kind": "file", "path": str(path)})
    fetched = fetch_window(make_source(config), config, DAY)
    raw = pd.read_parquet(path)
    assert "phone" not in fetched.columns
    assert set(fetched["email"]) == {reference_hash(e, key) for e in raw["email"]}
    assert not fetched["email"].str.contains("@").any()


@pytest.fixture
def scoring(
    pii_config: PiiConfigMaker,
    make_config: MakeConfig,
    crm_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
) -> tuple[PipelineConfig, Any, Path]:
    monkeypatch.setenv("CT_DATA_ROOT", str(tmp_path / "root"))
    config = pii_config()
    week = Window(DAY.start - timedelta(days=7), DAY.start)
    train = SyntheticSource(make_config()).fetch(week)
    fast = ModelConfig(estimator="sklearn.linear_model.LogisticRegression", params={})
    model = build_model(config.model_copy(update={"model": fast}))
    model.fit(train[config.features.all], train[config.target])
    return config, model, crm_file


def scoring_job(config: PipelineConfig, input_uri: str, raw: bool) -> inference.ScoringJob:
    return inference.ScoringJob(
        pipeline=config,
        input_uri=input_uri,
        output_uri=inference.prediction_uri(config.name, DAY, "p0"),
        sample_uri=inference.sample_uri(config.name, DAY, "p0"),
        window=DAY,
        model_version="1",
        airflow_run_id="manual__pii",
        sample_seed=1,
        raw_input=raw,
    )


def test_scoring_a_raw_file_hashes_the_ids_of_each_batch(
    scoring: tuple[PipelineConfig, Any, Path], key: str
) -> None:
    config, model, path = scoring
    result = inference.score_partition(scoring_job(config, str(path), raw=True), model)
    scored = storage.read_parquet(result["uri"])
    raw = pd.read_parquet(path)
    assert sorted(scored["email"]) == sorted(reference_hash(e, key) for e in raw["email"])
    assert "phone" not in scored.columns


def test_a_fetched_scoring_input_is_not_hashed_twice(
    scoring: tuple[PipelineConfig, Any, Path], key: str
) -> None:
    config, model, path = scoring
    protected = pii.apply(pd.read_parquet(path), config)
    snapshot = storage.write_parquet_atomic(protected, str(path.with_name("fetched.parquet")))
    result = inference.score_partition(scoring_job(config, snapshot["uri"], raw=False), model)
    assert set(storage.read_parquet(result["uri"])["email"]) == set(protected["email"])


def test_scoring_without_the_key_writes_nothing(
    scoring: tuple[PipelineConfig, Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, model, path = scoring
    monkeypatch.delenv("CT_PII_HASH_KEY")
    job = scoring_job(config, str(path), raw=True)
    with pytest.raises(pii.PiiError, match="CT_PII_HASH_KEY"):
        inference.score_partition(job, model)
    assert not storage.exists(job.output_uri) and not storage.exists(job.sample_uri)
