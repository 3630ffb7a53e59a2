"""DAG integrity, in the style of the Astro project template, plus the contracts of DESIGN.md.

Fast and offline: no MLflow server, no Airflow metadata database. DAG files are parsed the
way Airflow parses them: each file in a fresh interpreter (for the parse-fast rule), and the
whole folder through Airflow's own `BundleDagBag`, which is what the DAG processor uses.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from continuous_training.config import DEFAULT_PIPELINES_DIR, PipelineConfig, load_pipeline

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"
HEAVY = ("pandas", "numpy", "sklearn", "mlflow", "evidently", "great_expectations")
TAG = "continuous-training"
CHAIN = ["fetch", "validate", "train_candidate", "evaluate_vs_champion", "promote"]
LINKED_TASKS = {"train_candidate", "evaluate_vs_champion"}
KINDS = ("_weekly_retraining", "_drift_retraining", "_batch_inference", "_rollback")
MONITORING = "_performance_monitoring"
PIPELINES = sorted(p.stem for p in DEFAULT_PIPELINES_DIR.glob("*.yaml"))


def _python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _subprocess_env(**extra: str) -> dict[str, str]:
    """The session's isolated Airflow env, with the shipped pipelines unless told otherwise."""
    return {**os.environ, "CT_PIPELINES_DIR": str(DEFAULT_PIPELINES_DIR), **extra}


# --------------------------------------------------------------------------- fresh interpreters

# Run with `python -P` (no script/cwd dir on sys.path); the dags and plugins folders are
# appended to sys.path as Airflow does. A stand-alone file is loaded from its path (DAG files
# under a mangled name, like the DAG processor; plugins under their stem, like the plugin
# manager); a file inside a package is imported by its dotted name, as DAG files import it.
IMPORT_ONE = r"""
import hashlib, importlib, importlib.util, json, sys
dags, plugins, kind, path, dotted, heavy = sys.argv[1:7]
sys.path += [dags, plugins]
if dotted:
    importlib.import_module(dotted)
else:
    stem = path.rsplit("/", 1)[-1][:-3]
    name = stem
    if kind == "dags":
        name = f"unusual_prefix_{hashlib.sha1(path.encode()).hexdigest()}_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in heavy.split(",") if m in sys.modules)))
"""


def _dotted_name(root: Path, path: Path) -> str:
    """`pkg.mod` for a file inside a package directly under `root`; "" for a stand-alone file."""
    rel = path.relative_to(root)
    packages = [root.joinpath(*rel.parts[:i]) for i in range(1, len(rel.parts))]
    if not packages or not all((p / "__init__.py").is_file() for p in packages):
        return ""
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


IMPORTED_FILES = [("dags", p) for p in _python_files(DAGS)] + [
    ("plugins", p) for p in _python_files(PLUGINS)
]


@pytest.fixture(scope="module")
def import_processes() -> Iterator[dict[Path, subprocess.Popen]]:
    """One fresh interpreter per file, all started at once (each costs an `airflow` import)."""
    procs = {}
    for kind, path in IMPORTED_FILES:
        root = DAGS if kind == "dags" else PLUGINS
        argv = [str(DAGS), str(PLUGINS), kind, str(path), _dotted_name(root, path), ",".join(HEAVY)]
        procs[path] = subprocess.Popen(
            [sys.executable, "-P", "-c", IMPORT_ONE, *argv],
            cwd=REPO,
            env=_subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_there_are_dag_files() -> None:
    assert any(p.parent == DAGS for p in _python_files(DAGS))
    assert (PLUGINS / "continuous_training_plugin.py").is_file()


@pytest.mark.parametrize(
    ("kind", "path"), IMPORTED_FILES, ids=[str(p.relative_to(REPO)) for _, p in IMPORTED_FILES]
)
def test_file_imports_fast_in_a_fresh_interpreter(
    import_processes: dict[Path, subprocess.Popen], kind: str, path: Path
) -> None:
    out, err = import_processes[path].communicate(timeout=120)
    rel = path.relative_to(REPO)
    assert import_processes[path].returncode == 0, f"importing {rel} failed:\n{err[-4000:]}"
    heavy = json.loads(out.strip().splitlines()[-1])
    assert heavy == [], (
        f"importing {rel} loads {heavy} at parse time; import them inside execute()/functions "
        "(DESIGN.md: parse fast)"
    )


# --------------------------------------------------------------------------- Airflow's DagBag


@pytest.fixture(scope="module")
def dagbag() -> Any:
    """The dags folder as the DAG processor parses it (examples are never loaded by it).

    Airflow 3.3's DagBag has no `include_examples` argument any more; `BundleDagBag` (what
    the processor and `airflow dags list` use) loads no examples and puts the bundle (the
    dags folder) on sys.path, which DAG files that import packages next to them rely on.
    """
    from airflow.dag_processing.dagbag import BundleDagBag

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CT_PIPELINES_DIR", str(DEFAULT_PIPELINES_DIR))
        return BundleDagBag(dag_folder=DAGS, bundle_path=DAGS, bundle_name="dags-folder")


@pytest.fixture(scope="module")
def dags(dagbag: Any) -> dict[str, Any]:
    assert dagbag.dags, "no DAG found in dags/"
    return dagbag.dags


def test_no_import_errors(dagbag: Any) -> None:
    errors = "\n\n".join(f"{path}:\n{error}" for path, error in dagbag.import_errors.items())
    assert not dagbag.import_errors, f"DAG import errors:\n{errors}"


def test_every_dag_file_defines_a_dag(dags: dict[str, Any]) -> None:
    """A file the safe-mode heuristic skips shows no error: its DAGs just never appear.

    Files matched by dags/.airflowignore (packages of user code) are not DAG files.
    """
    from airflow.dag_processing.importers import get_importer_registry

    files = {Path(p) for p in get_importer_registry().list_dag_files(str(DAGS), safe_mode=False)}
    assert DAGS / "continuous_training_dags.py" in files
    with_dags = {Path(dag.fileloc) for dag in dags.values()}
    assert files <= with_dags, f"DAG files without a DAG: {sorted(map(str, files - with_dags))}"


def _violations(dags: dict[str, Any], check: Any) -> list[str]:
    return [f"{dag_id}: {problem}" for dag_id, dag in dags.items() for problem in check(dag)]


def test_every_dag_is_tagged(dags: dict[str, Any]) -> None:
    bad = _violations(dags, lambda d: [] if TAG in d.tags else [f"tags {sorted(d.tags)}"])
    assert not bad, f"DAGs without the {TAG!r} tag: {bad}"


def test_every_task_retries_at_least_twice(dags: dict[str, Any]) -> None:
    bad = _violations(
        dags, lambda d: [f"{t.task_id} retries={t.retries}" for t in d.tasks if t.retries < 2]
    )
    assert not bad, bad


def test_every_task_has_a_real_owner(dags: dict[str, Any]) -> None:
    bad = _violations(
        dags,
        lambda d: [
            f"{t.task_id} owner={t.owner!r}"
            for t in d.tasks
            if not (t.owner or "").strip() or t.owner.strip().lower() == "airflow"
        ],
    )
    assert not bad, bad


def test_every_dag_runs_one_at_a_time_without_catchup(dags: dict[str, Any]) -> None:
    bad = _violations(
        dags,
        lambda d: [
            *([f"max_active_runs={d.max_active_runs}"] if d.max_active_runs != 1 else []),
            *([f"catchup={d.catchup}"] if d.catchup is not False else []),
        ],
    )
    assert not bad, bad


def test_every_dag_is_documented(dags: dict[str, Any]) -> None:
    bad = _violations(dags, lambda d: [] if (d.doc_md or "").strip() else ["empty doc_md"])
    assert not bad, bad


def test_every_dag_serializes_for_the_scheduler(dags: dict[str, Any]) -> None:
    """What the DAG processor stores and the API server shows; extra links survive it."""
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id, dag in dags.items():
        restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        assert restored.dag_id == dag_id
        assert set(restored.task_dict) == set(dag.task_dict)


# --------------------------------------------------------------------------- DESIGN.md contracts


@pytest.fixture(scope="module", params=PIPELINES)
def pipeline(request: pytest.FixtureRequest) -> PipelineConfig:
    return load_pipeline(DEFAULT_PIPELINES_DIR / f"{request.param}.yaml")


@pytest.fixture(scope="module")
def weekly(dags: dict[str, Any], pipeline: PipelineConfig) -> Any:
    dag_id = f"{pipeline.name}_weekly_retraining"
    assert dag_id in dags, f"{dag_id} missing; DAGs: {sorted(dags)}"
    return dags[dag_id]


def test_churn_is_shipped() -> None:
    assert "churn" in PIPELINES


def test_weekly_retraining_tags(weekly: Any, pipeline: PipelineConfig) -> None:
    assert {TAG, pipeline.name} <= set(weekly.tags)


def test_weekly_retraining_schedule(weekly: Any, pipeline: PipelineConfig) -> None:
    assert weekly.schedule == pipeline.schedule
    assert weekly.timezone.name == "UTC"
    if pipeline.name == "churn":
        assert weekly.schedule == "0 2 * * 0"  # Sunday 02:00 UTC


def test_weekly_retraining_retry_delay(weekly: Any) -> None:
    assert {t.task_id: t.retry_delay for t in weekly.tasks} == {
        task_id: timedelta(minutes=5) for task_id in CHAIN
    }


def test_retries_come_from_the_yaml() -> None:
    from continuous_training.dag_factory import build_dags
    from tests.integration.dag_runs import write_pipeline

    path = write_pipeline("churn_retries", retries={"count": 5, "delay_seconds": 7})
    config = load_pipeline(path)
    for dag in build_dags(config).values():
        assert {(t.retries, t.retry_delay) for t in dag.tasks} == {(5, timedelta(seconds=7))}


def test_a_null_schedule_leaves_retraining_and_inference_to_be_triggered() -> None:
    from airflow.sdk.definitions.timetables.simple import NullTimetable

    from continuous_training.dag_factory import build_dags
    from tests.integration.dag_runs import write_pipeline

    path = write_pipeline("churn_manual", schedule=None, inference={"schedule": None})
    dags = build_dags(load_pipeline(path))
    for kind in ("weekly_retraining", "batch_inference"):
        assert isinstance(dags[f"churn_manual_{kind}"].timetable, NullTimetable), kind
    # the drift retraining keeps its asset schedule
    assert dags["churn_manual_drift_retraining"].timetable.asset_condition is not None


def test_weekly_retraining_owner_is_the_configs(weekly: Any, pipeline: PipelineConfig) -> None:
    assert {t.owner for t in weekly.tasks} == {pipeline.owner}


def test_weekly_retraining_chain(weekly: Any) -> None:
    assert sorted(weekly.task_ids) == sorted(CHAIN)
    for before, task_id, after in zip([None, *CHAIN[:-1]], CHAIN, [*CHAIN[1:], None], strict=True):
        task = weekly.get_task(task_id)
        assert task.upstream_task_ids == ({before} if before else set()), task_id
        assert task.downstream_task_ids == ({after} if after else set()), task_id


@pytest.mark.parametrize(
    ("name", "type_", "default"),
    [
        ("dry_run", "boolean", False),
        ("force_promote", "boolean", False),
        ("reason", ["null", "string"], None),
    ],
)
def test_trigger_form_flags(weekly: Any, name: str, type_: str, default: Any) -> None:
    param = weekly.params.get_param(name)
    assert param.schema["type"] == type_
    assert param.value == default
    assert type(param.value) is type(default)


def test_trigger_form_training_window(weekly: Any, pipeline: PipelineConfig) -> None:
    param = weekly.params.get_param("training_window_days")
    assert param.schema["type"] == "integer"
    assert param.schema["minimum"] >= 1
    assert param.schema["maximum"] >= pipeline.windows.training_days
    assert param.value == pipeline.windows.training_days
    assert param.resolve(14) == 14


@pytest.mark.parametrize("bad", [0, -7, 10**6, "14", 2.5])
def test_trigger_form_rejects_a_bad_training_window(weekly: Any, bad: Any) -> None:
    from airflow.sdk import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        weekly.params.get_param("training_window_days").resolve(bad)
    params: ParamsDict = copy.deepcopy(weekly.params)
    with pytest.raises(ParamValidationError, match="training_window_days"):
        params.update({"training_window_days": bad})
        params.validate()


def test_trigger_form_is_checked_by_the_api_server(weekly: Any) -> None:
    """The API server validates a trigger's conf against the serialized DAG's params."""
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    params = DagSerialization.from_dict(DagSerialization.to_dict(weekly)).params
    assert (
        params.deep_merge({"training_window_days": 14, "dry_run": True}).validate()[
            "training_window_days"
        ]
        == 14
    )
    with pytest.raises(ParamValidationError, match="training_window_days"):
        params.deep_merge({"training_window_days": 0}).validate()


# --------------------------------------------------------------------------- "MLflow run" link


def test_mlflow_run_link_on_train_and_evaluate(weekly: Any) -> None:
    from continuous_training.operators import MLflowRunLink

    for task in weekly.tasks:
        links = [link for link in task.operator_extra_links if isinstance(link, MLflowRunLink)]
        if task.task_id in LINKED_TASKS:
            assert [link.name for link in links] == ["MLflow run"], task.task_id
        else:
            assert links == [], task.task_id


def test_mlflow_run_link_survives_serialization(weekly: Any) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.from_dict(DagSerialization.to_dict(weekly))
    assert {t.task_id: list(t.extra_links) for t in restored.tasks} == {
        task_id: (["MLflow run"] if task_id in LINKED_TASKS else []) for task_id in CHAIN
    }


def test_plugin_registers_the_link() -> None:
    import importlib.util

    from airflow.plugins_manager import AirflowPlugin

    from continuous_training.operators import MLflowRunLink

    path = PLUGINS / "continuous_training_plugin.py"
    spec = importlib.util.spec_from_file_location("continuous_training_plugin_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.ContinuousTrainingPlugin
    assert issubclass(plugin, AirflowPlugin)
    assert plugin.name == "continuous_training"
    assert any(isinstance(link, MLflowRunLink) for link in plugin.operator_extra_links)


def test_airflow_loads_the_plugin() -> None:
    """Airflow's own plugin manager finds it in the plugins folder, without import errors."""
    from airflow import plugins_manager, settings

    from continuous_training.operators import MLflowRunLink

    assert Path(settings.PLUGINS_FOLDER) == PLUGINS
    plugins_manager.ensure_plugins_loaded()
    assert plugins_manager.get_import_errors() == {}
    links = plugins_manager.get_operator_extra_links()
    assert any(isinstance(link, MLflowRunLink) for link in links)


# --------------------------------------------------------------------------- broken pipeline YAML


def _broken_pipelines(tmp_path: Path, text: str) -> Path:
    """A pipelines folder with the good churn.yaml and one broken `bad.yaml`."""
    (tmp_path / "churn.yaml").write_text((DEFAULT_PIPELINES_DIR / "churn.yaml").read_text())
    (tmp_path / "bad.yaml").write_text(text)
    return tmp_path / "bad.yaml"


def _bad_value() -> str:
    data = yaml.safe_load((DEFAULT_PIPELINES_DIR / "churn.yaml").read_text())
    data["name"] = "bad"
    data["windows"]["training_days"] = "x"
    return yaml.safe_dump(data)


def _bad_training_days(days: Any) -> str:
    data = yaml.safe_load((DEFAULT_PIPELINES_DIR / "churn.yaml").read_text())
    data["name"] = "bad"
    data["windows"]["training_days"] = days
    return yaml.safe_dump(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(_bad_training_days("x"), "windows.training_days", id="bad-value"),
        # above the trigger form's maximum: once, every pipeline's DAGs vanished
        pytest.param(_bad_training_days(4000), "windows.training_days", id="above-form-max"),
        pytest.param("name: bad\ntarget: [unclosed\n", "malformed YAML", id="yaml-syntax"),
    ],
)
def test_a_broken_pipeline_yaml_costs_only_its_own_pipeline(
    tmp_path: Path, text: str, expected: str
) -> None:
    """The other pipelines' DAGs are built; the broken one is a DAG that shows its error."""
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.sdk.exceptions import AirflowFailException

    bad = _broken_pipelines(tmp_path, text)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CT_PIPELINES_DIR", str(tmp_path))
        bag = BundleDagBag(dag_folder=DAGS, bundle_path=DAGS, bundle_name="dags-folder")
        assert bag.import_errors == {}
        assert {f"churn{kind}" for kind in KINDS} <= set(bag.dag_ids)
        assert not any(d.startswith("bad_") and d != "bad_invalid_config" for d in bag.dag_ids)
        stand_in = bag.dags["bad_invalid_config"]
        assert stand_in.description.startswith(f"INVALID pipeline config: {bad}")
        assert expected in stand_in.doc_md and str(bad) in stand_in.doc_md
        assert {TAG, "bad", "invalid-config"} <= set(stand_in.tags)
        assert stand_in.schedule is None
        warned = "\n".join(w for ws in bag.captured_warnings.values() for w in ws)
        assert str(bad) in warned and expected in warned
        [task] = stand_in.tasks
        with pytest.raises(AirflowFailException, match=expected):
            task.execute({})


def test_every_config_value_is_checked_when_loaded(tmp_path: Path) -> None:
    """Values no candidate could ever meet are refused with the file and the key."""
    from continuous_training.config import ConfigError

    cases = {
        ("gates", "floor", 1.5): "gates.floor: 1.5 is outside the range of roc_auc",
        ("gates", "min_improvement", 2.0): "gates.min_improvement: 2 is not a possible change",
        ("gates", "min_improvement", -1.0): "gates.min_improvement: -1 is not a possible change",
        ("gates", "floor", -0.1): "gates.floor: -0.1 is outside the range",
        ("schedule", None, "every sunday"): "schedule: 'every sunday' is neither a cron",
        ("inference", "schedule", "61 * * * *"): "inference.schedule: '61 * * * *' is neither",
        ("gates", "min_holdout_per_class", 0): "gates.min_holdout_per_class",
    }
    for (section, key, value), expected in cases.items():
        data = yaml.safe_load((DEFAULT_PIPELINES_DIR / "churn.yaml").read_text())
        if key is None:
            data[section] = value
        else:
            data[section][key] = value
        path = tmp_path / "churn.yaml"
        path.write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError) as refused:
            load_pipeline(path)
        assert str(path) in str(refused.value)
        assert expected in str(refused.value), str(refused.value)
    data = yaml.safe_load((DEFAULT_PIPELINES_DIR / "churn.yaml").read_text())
    data["gates"] |= {"primary_metric": "log_loss", "floor": 0.5, "guardrails": {}}
    path.write_text(yaml.safe_dump(data))
    assert load_pipeline(path).gates.floor == 0.5  # a ceiling for a loss, unbounded above


def test_trigger_form_defaults_are_valid_as_the_ui_submits_them(weekly: Any) -> None:
    """The UI's form refuses a required field left empty: every default must resolve as is."""
    params = copy.deepcopy(weekly.params)
    resolved = params.validate()
    assert resolved["reason"] is None
    for name in params:
        schema = params.get_param(name).schema
        assert not (schema.get("type") == "string" and params[name] == ""), name


# --------------------------------------------------------------------------- the other DAG kinds


@pytest.fixture(scope="module")
def pipeline_dags(dags: dict[str, Any], pipeline: PipelineConfig) -> dict[str, Any]:
    kinds = [k.removeprefix("_") for k in KINDS]
    if pipeline.labels is not None:
        kinds.append(MONITORING.removeprefix("_"))
    missing = [f"{pipeline.name}_{k}" for k in kinds if f"{pipeline.name}_{k}" not in dags]
    assert not missing, f"missing DAGs {missing}; found {sorted(dags)}"
    return {kind: dags[f"{pipeline.name}_{kind}"] for kind in kinds}


def test_every_kind_is_tagged_with_its_pipeline(
    pipeline_dags: dict[str, Any], pipeline: PipelineConfig
) -> None:
    for kind, dag in pipeline_dags.items():
        assert {TAG, pipeline.name} <= set(dag.tags), kind


def test_batch_inference_maps_over_partitions_with_a_bound(
    pipeline_dags: dict[str, Any], pipeline: PipelineConfig
) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    dag = pipeline_dags["batch_inference"]
    assert dag.schedule == pipeline.inference.schedule
    score = dag.get_task("score_partition")
    assert isinstance(score, MappedOperator)
    assert score.max_active_tis_per_dag == pipeline.inference.max_active_partitions
    assert dag.get_task("list_partitions").downstream_task_ids == {"score_partition"}
    assert dag.get_task("pin_champion").downstream_task_ids >= {"list_partitions"}


def test_drift_loop_is_wired_through_one_asset(
    pipeline_dags: dict[str, Any], pipeline: PipelineConfig
) -> None:
    inference, drift = pipeline_dags["batch_inference"], pipeline_dags["drift_retraining"]
    [emitted] = inference.get_task("emit_drift_event").outlets
    [published] = inference.get_task("publish_predictions").outlets
    assert emitted.name == f"ct.{pipeline.name}.drift"
    assert published.name == f"ct.{pipeline.name}.predictions"
    expected = [emitted.name]
    if pipeline.labels is not None:
        [decayed] = (
            pipeline_dags["performance_monitoring"].get_task("emit_performance_event").outlets
        )
        expected.append(decayed.name)
    assert [a.name for a in drift.timetable.asset_condition.objects] == expected
    assert [a.name for a in drift.get_task("debounce_drift").inlets] == expected
    assert drift.get_task("debounce_drift").downstream_task_ids == {"fetch"}
    # the event's asset names the trigger: drift or performance
    for task_id in ("train_candidate", "promote"):
        assert "debounce_drift" in drift.get_task(task_id).trigger, task_id
        assert "trigger" in drift.get_task(task_id).template_fields, task_id
    assert sorted(drift.task_ids) == sorted(["debounce_drift", *CHAIN])


def test_performance_monitoring_closes_the_loop(
    pipeline_dags: dict[str, Any], pipeline: PipelineConfig
) -> None:
    if pipeline.labels is None:
        pytest.skip(f"pipeline {pipeline.name} has no labels section")
    dag = pipeline_dags["performance_monitoring"]
    assert dag.schedule == pipeline.monitoring.schedule
    assert {TAG, pipeline.name, "monitoring"} <= set(dag.tags)
    assert dag.get_task("measure_performance").downstream_task_ids == {
        "check_decay",
        "judge_live_evidence",
    }
    assert dag.get_task("check_decay").downstream_task_ids == {"emit_performance_event"}
    [event] = dag.get_task("emit_performance_event").outlets
    assert event.name == f"ct.{pipeline.name}.performance"
    assert all(t.retries >= 2 for t in dag.tasks)
    links = {t.task_id for t in dag.tasks if t.operator_extra_links}
    assert links == {"measure_performance", "check_decay", "judge_live_evidence"}


def test_monitoring_without_a_schedule_runs_on_the_labels_asset() -> None:
    from continuous_training.dag_factory import build_dags
    from tests.integration.dag_runs import write_pipeline

    path = write_pipeline("churn_labels", labels={"delay_days": 3}, monitoring={"schedule": None})
    dags = build_dags(load_pipeline(path))
    monitoring = dags["churn_labels_performance_monitoring"]
    assert [a.name for a in monitoring.timetable.asset_condition.objects] == [
        "ct.churn_labels.labels"
    ]
    unlabelled = build_dags(
        load_pipeline(write_pipeline("churn_blind", labels=None, gates={"live_evidence": False}))
    )
    assert "churn_blind_performance_monitoring" not in unlabelled
    drift = unlabelled["churn_blind_drift_retraining"]
    assert [a.name for a in drift.timetable.asset_condition.objects] == ["ct.churn_blind.drift"]


def test_rollback_form_requires_a_reason(pipeline_dags: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = pipeline_dags["rollback"]
    assert dag.schedule is None
    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError, match="reason"):
        params.validate()
    params = copy.deepcopy(dag.params)
    params.update({"reason": "bad release"})
    assert params.validate() == {"to_version": None, "reason": "bad release"}
    with pytest.raises(ParamValidationError, match="to_version"):
        params.update({"to_version": 0})
        params.validate()


def test_dags_start_at_the_epoch_so_any_history_runs(dags: dict[str, Any]) -> None:
    """A run before the start date would create no task and "succeed": nothing real precedes."""
    from datetime import UTC, datetime

    for dag_id, dag in dags.items():
        if dag_id.startswith("example_"):
            continue
        assert dag.start_date == datetime(1970, 1, 1, tzinfo=UTC), dag_id
        assert dag.catchup is False, dag_id


def test_a_search_bounds_the_training_task_by_its_budget() -> None:
    from continuous_training.dag_factory import build_dags
    from tests.integration.dag_runs import write_pipeline

    search = {
        "space": {"learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True}},
        "n_trials": 10,
        "timeout_minutes": 20,
        "margin_minutes": 15,
    }
    path = write_pipeline("churn_search_budget", model={"search": search})
    dags = build_dags(load_pipeline(path))
    for kind in ("weekly_retraining", "drift_retraining"):
        dag = dags[f"churn_search_budget_{kind}"]
        assert dag.get_task("train_candidate").execution_timeout == timedelta(minutes=35)
        assert "execution timeout of" in dag.doc_md
        others = {t.execution_timeout for t in dag.tasks if t.task_id != "train_candidate"}
        assert others == {None}
    # without a search, no timeout of the project's own
    shipped = build_dags(load_pipeline(DEFAULT_PIPELINES_DIR / "churn.yaml"))
    assert shipped["churn_weekly_retraining"].get_task("train_candidate").execution_timeout is None
