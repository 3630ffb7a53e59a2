"""The one error policy of every task: bad input fails at once, other faults are retried."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from continuous_training import registry
from continuous_training.config import ConfigError
from continuous_training.errors import BadInputError, is_bad_input
from continuous_training.inference import PartitionError
from continuous_training.metrics import EvaluationError
from continuous_training.model_digest import ModelDigestError
from continuous_training.operators import PipelineOperator
from continuous_training.operators.inference import ScorePartition
from continuous_training.pii import PiiError
from continuous_training.sources import EmptyWindowError, SourceError
from continuous_training.storage import StorageError
from continuous_training.training import TrainingError
from continuous_training.validation import DataValidationError, ValidationReport


class Raising(PipelineOperator):
    """A user's own operator: it overrides execute and still gets the policy."""

    def __init__(self, *, error: BaseException, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def execute(self, context: Any) -> Any:
        raise self.error


class RaisingSubclass(Raising):
    """A subclass of a subclass: its execute calls the parent's, policed twice is once."""

    def execute(self, context: Any) -> Any:
        return super().execute(context)


def run(error: BaseException, cls: type[Raising] = Raising) -> None:
    cls(task_id="t", pipeline="churn", error=error).execute({})


BAD = [
    ConfigError("churn.yaml: gates.floor: 1.5"),
    SourceError("source.path '/d/x.parquet': truncated"),
    EmptyWindowError("no rows"),
    StorageError("outside the data root"),
    TrainingError("model.estimator: typo"),
    EvaluationError("holdout labels must be 0/1"),
    PartitionError("too many partitions"),
    PiiError("CT_PII_HASH_KEY is not set"),
    ModelDigestError("model files changed"),
    registry.ChampionChangedError("champion moved"),
    registry.RegistryRefusedError("never was champion"),
    DataValidationError(ValidationReport(False, [], {}, {}), "churn", "/r/validation.json"),
]


@pytest.mark.parametrize("error", BAD, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("cls", [Raising, RaisingSubclass])
def test_bad_input_fails_at_once_with_its_own_message(
    error: BaseException, cls: type[Raising]
) -> None:
    with pytest.raises(AirflowFailException) as failed:
        run(error, cls)
    assert str(failed.value) == str(error)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("MLflow at http://127.0.0.1:5000 is down"),
        TimeoutError("read timed out"),
        registry.RegistryError("MLflow tracking server at http://x is unreachable"),
        OSError("No space left on device"),
        RuntimeError("an unexpected bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_faults_are_left_to_airflows_retries(error: BaseException) -> None:
    with pytest.raises(type(error)) as raised:
        run(error)
    assert raised.value is error


def test_skips_and_explicit_failures_pass_through() -> None:
    with pytest.raises(AirflowSkipException):
        run(AirflowSkipException("nothing to do"))
    with pytest.raises(AirflowFailException, match="as raised"):
        run(AirflowFailException("as raised"))


def test_a_library_error_raised_from_bad_input_counts_as_bad_input() -> None:
    try:
        try:
            raise ValueError("Parquet magic bytes not found in footer")
        except ValueError as exc:
            raise SourceError("scoring input /d/x.parquet is not a parquet file") from exc
    except SourceError as wrapped:
        assert is_bad_input(wrapped)
    assert not is_bad_input(ValueError("a bare library error"))
    assert issubclass(BadInputError, ValueError)


def test_every_shipped_operator_is_under_the_policy() -> None:
    import continuous_training.operators as ops

    for name in ops.__all__:
        obj = getattr(ops, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, PipelineOperator)
            and obj is not PipelineOperator
        ):
            assert getattr(obj.__dict__.get("execute"), "_ct_error_policy", False), name
    assert ScorePartition.execute._ct_error_policy
