"""Train a candidate: time-based split, an sklearn Pipeline built from the config, MLflow logging.

The preprocessing lives inside the Pipeline so that the registered model takes raw
feature columns, exactly as batch inference will hand them over.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training import model_digest, registry, storage
from continuous_training.config import PipelineConfig
from continuous_training.errors import BadInputError
from continuous_training.imports import is_callable, resolve

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

DEFAULT_SEED = 0

PACKAGES_LOGGED = (
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "pyarrow",
    "mlflow",
    "great-expectations",
    "evidently",
    "apache-airflow",
)


class TrainingError(BadInputError):
    """The data or the model config cannot produce a candidate; the message says which."""


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_start: datetime


def time_split(df: pd.DataFrame, pipeline: PipelineConfig, window_end: datetime) -> Split:
    """The most recent `holdout_days` before `window_end` are the holdout; nothing is shuffled.

    A random split would leak the future into training and flatter every candidate.
    Raises TrainingError with every `split_problems` found.
    """
    split = split_frame(df, pipeline, window_end)
    problems = split_problems(split, pipeline, window_end)
    if problems:
        details = "; ".join(problem.detail for problem in problems)
        raise TrainingError(f"pipeline {pipeline.name!r}: {details}")
    return split


def split_frame(df: pd.DataFrame, pipeline: PipelineConfig, window_end: datetime) -> Split:
    """The time-based split of `time_split`, unchecked."""
    holdout_start = window_end - timedelta(days=pipeline.windows.holdout_days)
    times = df[pipeline.time_column]
    train = df[times < holdout_start].reset_index(drop=True)
    holdout = df[times >= holdout_start].reset_index(drop=True)
    return Split(train=train, holdout=holdout, holdout_start=holdout_start)


@dataclass(frozen=True)
class SplitProblem:
    """Why a split cannot train or judge a candidate; `column` is None for an empty part."""

    column: str | None
    detail: str


def split_problems(
    split: Split, pipeline: PipelineConfig, window_end: datetime
) -> list[SplitProblem]:
    """Empty parts, and for classification a part whose target holds a single class.

    Checked before anything is fitted (and by the validation step, before training starts):
    a classifier cannot learn from one class, and ROC AUC on a one-class holdout is undefined.
    """
    start, end = f"{split.holdout_start:%Y-%m-%d}", f"{window_end:%Y-%m-%d}"
    parts = {
        "training": (split.train, f"(before {start})"),
        "holdout": (
            split.holdout,
            f"({start} to {end}, windows.holdout_days={pipeline.windows.holdout_days})",
        ),
    }
    problems = []
    for name, (part, span) in parts.items():
        if part.empty:
            problems.append(
                SplitProblem(None, f"the {name} part {span} of the window ending {end} is empty")
            )
        elif pipeline.task == "classification":
            classes = part[pipeline.target].dropna().unique()
            if len(classes) < 2:
                problems.append(
                    SplitProblem(
                        pipeline.target,
                        f"the {name} part {span} has a single class in target "
                        f"{pipeline.target!r}: {_class_list(classes)}; a classifier needs two",
                    )
                )
    return problems


def _class_list(classes: Any) -> str:
    # No class at all means the target is null throughout.
    return ", ".join(repr(c.item() if hasattr(c, "item") else c) for c in classes) or "only nulls"


def estimator_class(path: str) -> Any:
    """The class `model.estimator` names; TrainingError if it cannot be imported."""
    return resolve(path, key="model.estimator", error=TrainingError, checks=(is_callable,))


def import_estimator(path: str, params: dict[str, Any], task: str | None = None) -> Any:
    """The estimator `path(**params)`, checked as far as it can be without data.

    With `task`, it must also be able to serve that task: a classifier is scored with
    `predict_proba`, so one without it (e.g. a regressor) is refused here, not after fitting.
    """
    cls = estimator_class(path)
    params = _seeded(cls, params)
    try:
        estimator = cls(**params)
        # sklearn checks values only in fit(); check them now, before any data is read.
        if hasattr(estimator, "_validate_params"):
            estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"model.params: {path} rejected the params {params}: {exc}") from None
    needed = ["fit", "predict_proba" if task == "classification" else "predict"]
    missing = [name for name in needed if not callable(getattr(estimator, name, None))]
    if missing:
        methods = " or ".join(f"{name}()" for name in missing)
        raise TrainingError(
            f"model.estimator: {path!r} has no {methods}: it cannot be a {task or 'model'} "
            "estimator"
        )
    return estimator


def check_model(pipeline: PipelineConfig) -> None:
    """Import and construct the configured estimator; TrainingError names the file and key.

    Run by the first task of a retrain, so a typo in `model.estimator` or `model.params`
    fails in seconds instead of after fetching and validating the data.
    """
    try:
        import_estimator(pipeline.model.estimator, pipeline.model.params, pipeline.task)
        if pipeline.model.search is not None:
            from continuous_training import search

            search.check_search(pipeline)
    except TrainingError as exc:
        where = f"{pipeline.source_file}: " if pipeline.source_file else ""
        raise TrainingError(f"{where}{exc}") from None


def _seeded(cls: Any, params: dict[str, Any]) -> dict[str, Any]:
    """A fixed `random_state` unless the config sets one: the same data gives the same model."""
    import inspect

    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return params
    if "random_state" in accepted and "random_state" not in params:
        return {**params, "random_state": DEFAULT_SEED}
    return params


def build_model(pipeline: PipelineConfig, params: dict[str, Any] | None = None) -> Pipeline:
    """Preprocessing derived from the feature types, then the configured estimator.

    `params` replaces `model.params` (a search's trial, or its best parameters).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers = []
    if pipeline.features.numeric:
        numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        transformers.append(("numeric", numeric, pipeline.features.numeric))
    if pipeline.features.categorical:
        # Dense output (HistGradientBoosting and others take no sparse input), so its width
        # is bounded instead: at most `max_categories` columns per feature, the rare values
        # (and values first seen when scoring) sharing one "infrequent" column. A feature of
        # 50,000 values on 100k rows would otherwise ask for 37 GiB.
        prep = pipeline.preprocessing
        categorical = make_pipeline(
            SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                sparse_output=False,
                max_categories=prep.max_categories,
                min_frequency=prep.min_frequency,
            ),
        )
        transformers.append(("categorical", categorical, pipeline.features.categorical))
    preprocess = ColumnTransformer(transformers, remainder="drop")
    if params is None:
        params = pipeline.model.params
    estimator = import_estimator(pipeline.model.estimator, params, pipeline.task)
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])


def fit(
    model: Pipeline,
    pipeline: PipelineConfig,
    train: pd.DataFrame,
    source: str,
    params: dict[str, Any] | None = None,
) -> None:
    """Fit on the training part; what the estimator refuses is bad input, named as such.

    The data passed validation, so a ValueError or TypeError here is a param that does not
    fit these data or a value the estimator cannot take: retrying cannot help.
    """
    try:
        model.fit(train[pipeline.features.all], train[pipeline.target])
    except (ValueError, TypeError) as exc:
        used = "model.params" if params is None else "the search's best params"
        raise TrainingError(
            f"model.estimator {pipeline.model.estimator} with {used} "
            f"{pipeline.model.params if params is None else params} "
            f"could not be fitted on {source}: {exc}"
        ) from exc


def predict_scores(model: Any, X: pd.DataFrame, task: str) -> Any:
    """Positive-class probability for classifiers, the prediction for regressors."""
    if task == "classification":
        return model.predict_proba(X)[:, 1]
    return model.predict(X)


def git_sha() -> str:
    if os.environ.get("CT_GIT_SHA"):
        return os.environ["CT_GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PACKAGES_LOGGED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def pip_requirements() -> list[str]:
    """Explicit, pinned serving requirements: what the model needs, not the whole worker."""
    from importlib.metadata import version

    return [
        f"{name}=={version(name)}"
        for name in ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops")
    ]


@dataclass(frozen=True)
class RunInfo:
    """Who asked for this candidate: the Airflow run, its trigger and its window end."""

    airflow_run_id: str
    trigger: str
    window_end: datetime
    drift_episode: str | None = None

    def registration_tags(self) -> dict[str, str]:
        """What a version records about the run that made it, from the first moment."""
        tags = {
            registry.TAG_RUN_ID: self.airflow_run_id,
            registry.TAG_TRIGGER: self.trigger,
            registry.TAG_WINDOW_END: self.window_end.isoformat(),
        }
        if self.drift_episode:
            tags[registry.TAG_DRIFT_EPISODE] = self.drift_episode
        return tags


def _write_splits(
    pipeline: PipelineConfig, split: Split, run: RunInfo, snapshot: dict[str, Any]
) -> dict[str, dict]:
    """Both parts as parquet files with their sha256, rows and time window."""
    windows = {
        "train": (snapshot.get("window_start"), split.holdout_start.isoformat()),
        "holdout": (split.holdout_start.isoformat(), run.window_end.isoformat()),
    }
    return {
        name: {
            **storage.write_parquet_atomic(
                frame, storage.snapshot_uri(pipeline.name, run.airflow_run_id, f"{name}.parquet")
            ),
            "window": list(windows[name]),
        }
        for name, frame in (("train", split.train), ("holdout", split.holdout))
    }


def _registered_by_run(client: Any, pipeline: PipelineConfig, run: RunInfo) -> Any | None:
    """The version an earlier attempt of this run registered: a retry must reuse it."""
    existing = registry.versions_for_run(client, pipeline.model_name, run.airflow_run_id)
    if not existing:
        return None
    registry.wait_until_ready(client, pipeline.model_name, existing[0].version)
    return existing[0]


def _candidate_payload(
    pipeline: PipelineConfig,
    version: str,
    run_info: Any,
    tracking_uri: str,
    splits: dict[str, dict],
) -> dict[str, Any]:
    return {
        "model_name": pipeline.model_name,
        "model_version": version,
        "mlflow_run_id": run_info.run_id,
        "experiment_id": run_info.experiment_id,
        "mlflow_run_url": registry.run_url(tracking_uri, run_info.experiment_id, run_info.run_id),
        "tracking_uri": tracking_uri,
        "train": splits["train"],
        "holdout": splits["holdout"],
    }


def train_candidate(
    pipeline: PipelineConfig,
    snapshot: dict[str, Any],
    run: RunInfo,
    tracking_uri: str,
) -> dict[str, Any]:
    """Split, fit, log and register one candidate; returns small JSON for the next task.

    The split is rewritten on every attempt (same snapshot, same bytes, same hashes), so a
    retry after a crash anywhere below finds everything the next step needs.
    """
    import mlflow

    client = registry.make_client(tracking_uri)
    frame = storage.read_parquet(storage.require_in_data_root(snapshot["uri"], "snapshot"))
    split = time_split(frame, pipeline, run.window_end)
    splits = _write_splits(pipeline, split, run, snapshot)
    earlier = _registered_by_run(client, pipeline, run)
    if earlier is not None:
        log.info("reusing version %s registered by this run", earlier.version)
        run_info = client.get_run(earlier.run_id).info
        searched = None
        if pipeline.model.search is not None:
            from continuous_training import search

            searched = search.load_summary(earlier.run_id)
        return _finish(
            client, pipeline, str(earlier.version), run_info, tracking_uri, splits, run, searched
        )

    started = time.perf_counter()
    model = None
    if pipeline.model.search is None:
        model = build_model(pipeline)
        fit(model, pipeline, split.train, snapshot["uri"])
    mlflow.set_experiment(pipeline.experiment_name)
    run_tags = {
        registry.TAG_RUN_ID: run.airflow_run_id,
        registry.TAG_TRIGGER: run.trigger,
        "ct.pipeline": pipeline.name,
    }
    run_name = f"{pipeline.name}:{run.airflow_run_id}"
    searched = None
    with mlflow.start_run(run_name=run_name, tags=run_tags) as active:
        if model is None:
            # trials are nested runs of this one; the best params are refitted on all of train
            from continuous_training import search

            result = search.run_search(pipeline, split.train, split.holdout_start)
            model = search.refit(pipeline, result, split.train, snapshot["uri"])
            search.log_search(result)
            searched = result.summary()
        log.info(
            "fitted %s on %d rows in %.1fs; holdout %d rows from %s",
            pipeline.model.estimator,
            len(split.train),
            time.perf_counter() - started,
            len(split.holdout),
            split.holdout_start.date(),
        )
        _log_training(pipeline, model, split, splits, snapshot, run)
        version = _register(pipeline, model, split, run, splits)
    return _finish(client, pipeline, version, active.info, tracking_uri, splits, run, searched)


def _finish(
    client: Any,
    pipeline: PipelineConfig,
    version: str,
    run_info: Any,
    tracking_uri: str,
    splits: dict[str, dict],
    run: RunInfo,
    searched: dict[str, Any] | None = None,
) -> dict[str, Any]:
    client.set_registered_model_alias(pipeline.model_name, registry.CHALLENGER, version)
    payload = _candidate_payload(pipeline, version, run_info, tracking_uri, splits)
    if searched is not None:
        payload["search"] = searched  # the model card's Search section
    storage.write_json_atomic(
        payload, storage.snapshot_uri(pipeline.name, run.airflow_run_id, "candidate.json")
    )
    return payload


def _log_training(
    pipeline: PipelineConfig,
    model: Pipeline,
    split: Split,
    splits: dict[str, dict],
    snapshot: dict[str, Any],
    run: RunInfo,
) -> None:
    import mlflow

    from continuous_training.metrics import compute_metrics

    mlflow.log_params(
        {
            "estimator": pipeline.model.estimator,
            **{f"model.{k}": v for k, v in pipeline.model.params.items()},
            "training_days": pipeline.windows.training_days,
            "holdout_days": pipeline.windows.holdout_days,
            "window_end": run.window_end.isoformat(),
            "holdout_start": split.holdout_start.isoformat(),
            "train_rows": len(split.train),
            "holdout_rows": len(split.holdout),
            "numeric_features": ",".join(pipeline.features.numeric),
            "categorical_features": ",".join(pipeline.features.categorical),
        }
    )
    mlflow.set_tags(
        {
            registry.TAG_TRAIN_SHA: splits["train"]["sha256"],
            registry.TAG_HOLDOUT_SHA: splits["holdout"]["sha256"],
            "ct.snapshot_sha256": snapshot["sha256"],
            registry.TAG_GIT_SHA: git_sha(),
        }
    )
    scores = predict_scores(model, split.holdout[pipeline.features.all], pipeline.task)
    metrics = compute_metrics(pipeline.task, split.holdout[pipeline.target].to_numpy(), scores)
    mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
    mlflow.log_dict(package_versions(), "environment/package_versions.json")
    mlflow.log_input(
        mlflow.data.from_pandas(
            split.train, source=splits["train"]["uri"], targets=pipeline.target, name="train"
        ),
        context="training",
    )
    mlflow.log_input(
        mlflow.data.from_pandas(
            split.holdout, source=splits["holdout"]["uri"], targets=pipeline.target, name="holdout"
        ),
        context="holdout",
    )


def _register(
    pipeline: PipelineConfig,
    model: Pipeline,
    split: Split,
    run: RunInfo,
    splits: dict[str, dict],
) -> str:
    import mlflow
    from mlflow.models import infer_signature

    # Numeric features as float64: the Pipeline imputes missing values, and an integer
    # column in the signature would make MLflow reject them at scoring time.
    example = (
        split.train[pipeline.features.all]
        .head(5)
        .astype({column: "float64" for column in pipeline.features.numeric})
    )
    signature = infer_signature(example, predict_scores(model, example, pipeline.task))
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
        skops_trusted_types=skops_trusted_types(model),
    )
    # Tags go in with the registration itself, so a retry can always find this version
    # by its Airflow run id: a crash can never leave an untagged orphan version. The digest
    # is of the files as the server holds them, what every later load is checked against.
    registered = mlflow.register_model(
        info.model_uri,
        pipeline.model_name,
        tags={
            **run.registration_tags(),
            registry.TAG_TRAIN_SHA: splits["train"]["sha256"],
            registry.TAG_GIT_SHA: git_sha(),
            model_digest.TAG_MODEL_SHA: model_digest.digest_of(info.model_uri),
        },
    )
    version = str(registered.version)
    registry.wait_until_ready(mlflow.MlflowClient(), pipeline.model_name, version)
    _log_reference_sample(pipeline, split.train)
    return version


def skops_trusted_types(model: Any) -> list[str] | None:
    """Types skops must accept to load the model back; computed, not hand-listed."""
    try:
        sio = model_digest.import_skops()
    except ImportError:
        return None
    return sio.get_untrusted_types(data=sio.dumps(model))


def _log_reference_sample(pipeline: PipelineConfig, train: pd.DataFrame) -> None:
    """A bounded sample of the training data, kept with the model as the drift reference."""
    import tempfile

    import mlflow

    n = min(len(train), pipeline.drift.sample_size)
    sample = train.sample(n=n, random_state=0) if n < len(train) else train
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference.parquet"
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path="reference")
