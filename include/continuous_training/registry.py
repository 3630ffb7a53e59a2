"""The MLflow Model Registry as the ledger of every decision.

Aliases say what is served (`champion`) and what was last trained (`challenger`);
tags on each model version say why (`ct.*`, see DESIGN.md). MLflow's alias switch is
last-writer-wins, so promotion is a compare-and-set built here around it.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from continuous_training.errors import BadInputError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"

TAG_DECISION = "ct.decision"
TAG_REASON = "ct.decision_reason"
TAG_TRIGGER = "ct.trigger"
TAG_RUN_ID = "ct.airflow_run_id"
TAG_TRAIN_SHA = "ct.train_data_sha256"
TAG_HOLDOUT_SHA = "ct.holdout_sha256"
TAG_GIT_SHA = "ct.git_sha"
TAG_REPLACED = "ct.replaced_version"
TAG_DRY_RUN = "ct.dry_run"
TAG_WINDOW_END = "ct.window_end"
TAG_DRIFT_EPISODE = "ct.drift_episode"
TAG_KIND = "ct.kind"
# When a decision was applied, ISO 8601 UTC; a retry that applies it again stamps its own time.
TAG_DECIDED_AT = "ct.decided_at"

TAG_ROLLBACK = "ct.rollback."  # prefix of the rollback record on the restored version
TAG_DEMOTED_BY = "ct.rollback.demoted_by_run"
TAG_DEMOTED_REASON = "ct.rollback.demoted_reason"
TAG_DEMOTED_AT = "ct.rollback.demoted_at"

LOCK_SUFFIX = ".champion-lock"
TAG_LOCK_HOLDER = "ct.lock.holder"
TAG_LOCK_SINCE = "ct.lock.since"
LOCK_STALE_SECONDS = 600.0  # a holder that died mid-switch frees the lock after this long
LOCK_WAIT_SECONDS = 120.0

PROMOTED = "promoted"
REJECTED = "rejected"


class RegistryError(RuntimeError):
    """The registry is unreachable or in a state that forbids the requested change."""


class RegistryRefusedError(RegistryError, BadInputError):
    """The registry's state forbids the change asked for; no retry changes that."""


class ChampionChangedError(RegistryRefusedError):
    """The champion moved between evaluation and promotion; nothing was promoted."""

    def __init__(self, message: str, now_champion: str | None = None):
        super().__init__(message)
        self.now_champion = now_champion


@dataclass(frozen=True)
class Decision:
    """What the promote step writes: the tags of DESIGN.md plus the alias move."""

    decision: str
    reason: str
    trigger: str
    airflow_run_id: str
    promote: bool
    replaced_version: str | None = None
    dry_run: bool = False
    # more of the record, e.g. a person's approval (`ct.approved_by`)
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        tags = {
            **self.extra_tags,
            TAG_DECISION: self.decision,
            TAG_REASON: self.reason[:4900],  # MLflow caps tag values at 5000 chars
            TAG_TRIGGER: self.trigger,
            TAG_RUN_ID: self.airflow_run_id,
        }
        if self.dry_run:
            tags[TAG_DRY_RUN] = "true"
        if self.promote:
            tags[TAG_REPLACED] = self.replaced_version or "none"
        return tags


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail fast with the URL named, instead of MLflow's minutes of silent retries."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                raise RegistryError(f"MLflow server at {tracking_uri} answered {response.status}")
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(
            f"MLflow tracking server at {tracking_uri} is unreachable: {exc}"
        ) from None


def check_login(client: MlflowClient, tracking_uri: str) -> None:
    """A server with a login (MLflow's basic-auth app) accepts ours, or the error says whose.

    `/health` needs no login, so `check_reachable` passes on a server that will refuse every
    other call; this asks for one experiment, which any logged-in user may list.
    """
    from mlflow.exceptions import MlflowException

    if not tracking_uri.startswith(("http://", "https://")):
        return
    try:
        client.search_experiments(max_results=1)
    except MlflowException as exc:
        if exc.error_code != "UNAUTHENTICATED":
            raise
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        refused = f"the password of user {user!r}" if user else "a request without a login"
        raise RegistryRefusedError(
            f"MLflow tracking server at {tracking_uri} refused {refused} (401): set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or the login and password "
            "of the Airflow connection mlflow_default"
        ) from None


def make_client(tracking_uri: str) -> MlflowClient:
    import mlflow

    check_reachable(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    check_login(client, tracking_uri)
    return client


def alias_version(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the alias or the model does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def versions_for_run(
    client: MlflowClient, model_name: str, airflow_run_id: str
) -> list[ModelVersion]:
    """Versions registered by one Airflow run, oldest first (a retry must reuse them)."""
    escaped = airflow_run_id.replace("'", "\\'")
    found = client.search_model_versions(
        f"name = '{model_name}' and tags.`{TAG_RUN_ID}` = '{escaped}'"
    )
    return sorted(found, key=lambda v: int(v.version))


def wait_until_ready(
    client: MlflowClient, model_name: str, version: str, timeout: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_model_version(model_name, version).status
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise RegistryError(f"model {model_name} version {version} is {status}, not READY")
        time.sleep(0.5)


def set_version_tags(
    client: MlflowClient, model_name: str, version: str, tags: dict[str, Any]
) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, str(value))


def version_tags(client: MlflowClient, model_name: str, version: str) -> dict[str, str]:
    return dict(client.get_model_version(model_name, version).tags)


def apply_decision(
    client: MlflowClient,
    model_name: str,
    version: str,
    decision: Decision,
    expected_champion: str | None,
) -> None:
    """Write the decision tags and, for a promotion, switch `champion` as the last step.

    The champion seen at evaluation time must still be the champion now; if another run
    moved it, promoting would skip the comparison that justified it, so we refuse.
    A retry after a successful switch finds the alias already on `version` and succeeds.
    """
    if not decision.promote:
        set_version_tags(client, model_name, version, _stamped(decision.tags()))
        return
    with champion_lock(client, model_name, decision.airflow_run_id):
        current = alias_version(client, model_name, CHAMPION)
        if current != version:
            _refuse_if_moved(model_name, version, expected_champion, current, "promoted")
        set_version_tags(client, model_name, version, _stamped(decision.tags()))
        if current == version:
            return
        try:
            _switch_and_verify(client, model_name, version)
        except ChampionChangedError as lost:
            # The record must not claim a promotion that did not stick.
            set_version_tags(
                client, model_name, version, {TAG_DECISION: REJECTED, TAG_REASON: str(lost)}
            )
            raise


def decided_now() -> str:
    """The time of a decision being applied, as `ct.decided_at` holds it.

    Wall-clock time is right here: it dates the record, it chooses no data.
    """
    return datetime.now(UTC).isoformat(timespec="seconds")


def _stamped(tags: dict[str, str]) -> dict[str, str]:
    return {**tags, TAG_DECIDED_AT: decided_now()}


def _refuse_if_moved(
    model_name: str, version: str, expected: str | None, current: str | None, what: str
) -> None:
    if current != expected:
        raise ChampionChangedError(
            f"champion of {model_name} moved from version {expected} to {current} since "
            f"the decision was taken; version {version} was not {what}",
            now_champion=current,
        )


def _switch_and_verify(client: MlflowClient, model_name: str, version: str) -> None:
    client.set_registered_model_alias(model_name, CHAMPION, version)
    after = alias_version(client, model_name, CHAMPION)
    if after != version:
        raise ChampionChangedError(
            f"champion of {model_name} is version {after} right after switching to {version}: "
            f"something that does not take {model_name}{LOCK_SUFFIX} moved it",
            now_champion=after,
        )


@contextlib.contextmanager
def champion_lock(
    client: MlflowClient, model_name: str, holder: str, wait: float = LOCK_WAIT_SECONDS
) -> Iterator[None]:
    """Serialise every move of `champion` of one model, across processes and hosts.

    MLflow's alias switch has no compare-and-set, but creating a registered model is
    atomic (names are unique in its database): the lock is the registered model
    `<name>.champion-lock`, held by whoever created it. The same holder (a retried task)
    takes it back at once; a holder that died is overridden after LOCK_STALE_SECONDS.
    """
    name = model_name + LOCK_SUFFIX
    deadline = time.monotonic() + wait
    while not _try_lock(client, name, holder):
        if time.monotonic() > deadline:
            raise RegistryError(
                f"could not take {name} within {wait:.0f}s: another promotion or rollback of "
                f"{model_name} holds it ({_lock_holder(client, name)}); if that run is dead, "
                f"delete the registered model {name}"
            )
        time.sleep(0.5)
    try:
        yield
    finally:
        _delete_model(client, name)


def _try_lock(client: MlflowClient, name: str, holder: str) -> bool:
    from mlflow.exceptions import MlflowException

    # Wall-clock time is right here: it dates a lease, not a data window.
    tags = {TAG_LOCK_HOLDER: holder, TAG_LOCK_SINCE: f"{time.time():.3f}"}
    try:
        client.create_registered_model(name, tags=tags, description=LOCK_DESCRIPTION)
        return True
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    held = _lock_tags(client, name)
    if held is not None and _lock_is_ours_or_stale(held, holder):
        _delete_model(client, name)
    return False


LOCK_DESCRIPTION = (
    "Held while the toolkit moves the champion alias of the model named before "
    "'.champion-lock'; deleted right after. Not a model."
)


def _lock_is_ours_or_stale(tags: dict[str, str], holder: str) -> bool:
    since = float(tags.get(TAG_LOCK_SINCE, "0") or 0)
    return tags.get(TAG_LOCK_HOLDER) == holder or time.time() - since > LOCK_STALE_SECONDS


def _lock_tags(client: MlflowClient, name: str) -> dict[str, str] | None:
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_registered_model(name).tags)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _lock_holder(client: MlflowClient, name: str) -> str:
    tags = _lock_tags(client, name) or {}
    return f"run {tags.get(TAG_LOCK_HOLDER, '?')}"


def _delete_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.delete_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def model_uri(model_name: str, version: str) -> str:
    return f"models:/{model_name}/{version}"


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def find_or_create_run(
    client: MlflowClient, experiment_name: str, run_name: str, tags: dict[str, str]
) -> str:
    """The run tagged with `tags` in the experiment, created once; a task retry reuses it."""
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    )
    query = " and ".join(
        f"tags.`{key}` = '{value.replace(chr(39), chr(92) + chr(39))}'"
        for key, value in tags.items()
    )
    found = client.search_runs([experiment_id], filter_string=query, max_results=1)
    if found:
        return found[0].info.run_id
    return client.create_run(experiment_id, tags=tags, run_name=run_name).info.run_id


def all_version_tags(client: MlflowClient, model_name: str) -> list[tuple[str, dict[str, str]]]:
    """(version, tags) of every version of the model, newest first."""
    found = client.search_model_versions(f"name = '{model_name}'")
    ordered = sorted(found, key=lambda v: int(v.version), reverse=True)
    return [(str(v.version), dict(v.tags)) for v in ordered]


def was_champion(tags: dict[str, str]) -> bool:
    """A version served once: promoted by a retrain (not a dry run) or restored by a rollback."""
    promoted = tags.get(TAG_DECISION) == PROMOTED and tags.get(TAG_DRY_RUN) != "true"
    return promoted or f"{TAG_ROLLBACK}airflow_run_id" in tags


def replaced_by(tags: dict[str, str]) -> str | None:
    """The version this one replaced when it last became champion, if any."""
    value = tags.get(f"{TAG_ROLLBACK}replaced_version") or tags.get(TAG_REPLACED)
    return None if value in (None, "none") else value


def rollback(
    client: MlflowClient,
    model_name: str,
    to_version: str | None,
    reason: str,
    airflow_run_id: str,
) -> dict[str, str]:
    """Move `champion` back to a version that served before, and record why on both versions.

    `to_version` defaults to the version the current champion replaced. The record is
    written first and the alias moved last, with the same compare-and-set as a promotion.
    """
    if not reason.strip():
        raise RegistryRefusedError("a rollback needs a reason (params.reason)")
    current = alias_version(client, model_name, CHAMPION)
    if current is None:
        raise RegistryRefusedError(
            f"model {model_name} has no champion: there is nothing to roll back"
        )
    current_tags = version_tags(client, model_name, current)
    if current_tags.get(f"{TAG_ROLLBACK}airflow_run_id") == airflow_run_id:
        # A retry of a rollback that already switched: done, do not roll forward again.
        replaced = current_tags[f"{TAG_ROLLBACK}replaced_version"]
        drop_challenger_alias(client, model_name, replaced)  # the first try may have died first
        return {"model_name": model_name, "champion": current, "replaced_version": replaced}
    target = to_version or replaced_by(current_tags)
    if target is None:
        raise RegistryRefusedError(
            f"champion version {current} of {model_name} replaced no earlier version: "
            "give params.to_version"
        )
    _check_rollback_target(client, model_name, str(target), current)
    record = {
        f"{TAG_ROLLBACK}decision": PROMOTED,
        f"{TAG_ROLLBACK}decision_reason": reason[:4900],
        f"{TAG_ROLLBACK}trigger": "manual",
        f"{TAG_ROLLBACK}airflow_run_id": airflow_run_id,
        f"{TAG_ROLLBACK}replaced_version": current,
        f"{TAG_ROLLBACK}decided_at": decided_now(),
    }
    set_version_tags(client, model_name, str(target), record)
    apply_switch(client, model_name, str(target), current, holder=airflow_run_id)
    set_version_tags(
        client,
        model_name,
        current,
        {
            TAG_DEMOTED_BY: airflow_run_id,
            TAG_DEMOTED_REASON: reason[:4900],
            TAG_DEMOTED_AT: record[f"{TAG_ROLLBACK}decided_at"],
        },
    )
    drop_challenger_alias(client, model_name, current)
    return {"model_name": model_name, "champion": str(target), "replaced_version": current}


def drop_challenger_alias(client: MlflowClient, model_name: str, version: str) -> None:
    """Remove `challenger` from a version rolled back from, if it is there.

    A promoted candidate keeps `challenger` (it was the latest candidate). Left on a version
    a person just took out of service, it would be scored in shadow and could be promoted
    again on live evidence; the next retrain sets `challenger` anew.
    """
    if alias_version(client, model_name, CHALLENGER) == version:
        client.delete_registered_model_alias(model_name, CHALLENGER)


def _check_rollback_target(
    client: MlflowClient, model_name: str, target: str, current: str
) -> None:
    from mlflow.exceptions import MlflowException

    if target == current:
        raise RegistryRefusedError(f"version {target} of {model_name} is already the champion")
    try:
        tags = version_tags(client, model_name, target)
    except MlflowException:
        raise RegistryRefusedError(f"model {model_name} has no version {target}") from None
    if not was_champion(tags):
        decision = tags.get(TAG_DECISION, "no decision")
        raise RegistryRefusedError(
            f"version {target} of {model_name} never was champion ({TAG_DECISION}={decision}): "
            "a rollback may only restore a version that served before"
        )


def apply_switch(
    client: MlflowClient, model_name: str, version: str, expected_champion: str, holder: str
) -> None:
    """Point `champion` at `version` if it still points at `expected_champion`."""
    with champion_lock(client, model_name, holder):
        current = alias_version(client, model_name, CHAMPION)
        _refuse_if_moved(model_name, version, expected_champion, current, "made champion")
        _switch_and_verify(client, model_name, version)
