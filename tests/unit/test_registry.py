"""The registry: decision tags, the compare-and-set promotion, the champion lock, reachability.

The only fake is a tiny in-memory registry client for the error paths of the compare-and-set
promotion (DESIGN.md: mocks for error paths only); reachability runs against real sockets.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
)

from continuous_training import registry
from continuous_training.promotion import RunOptions, decide
from continuous_training.registry import (
    ChampionChangedError,
    Decision,
    RegistryError,
    apply_decision,
    check_reachable,
)
from tests.unit.decisions import evaluated as _evaluated
from tests.unit.decisions import run as _run
from tests.unit.fake_registry import FakeRegistryClient

MODEL = "churn"


DESIGN_TAGS = {
    registry.TAG_DECISION: "ct.decision",
    registry.TAG_REASON: "ct.decision_reason",
    registry.TAG_TRIGGER: "ct.trigger",
    registry.TAG_RUN_ID: "ct.airflow_run_id",
    registry.TAG_REPLACED: "ct.replaced_version",
}


# --------------------------------------------------------------------------- Decision.tags


def test_tag_keys_are_the_design_names() -> None:
    assert set(DESIGN_TAGS) == set(DESIGN_TAGS.values())


def test_promoted_tags_are_exactly_the_design_keys() -> None:
    tags = decide(_evaluated(True), RunOptions(), _run()).tags()
    assert tags == {
        "ct.decision": "promoted",
        "ct.decision_reason": _evaluated(True)["gate_reason"],
        "ct.trigger": "schedule",
        "ct.airflow_run_id": _run().airflow_run_id,
        "ct.replaced_version": "3",
    }


def test_rejected_tags_have_no_replaced_version() -> None:
    tags = decide(_evaluated(False), RunOptions(), _run()).tags()
    assert set(tags) == {"ct.decision", "ct.decision_reason", "ct.trigger", "ct.airflow_run_id"}
    assert tags["ct.decision"] == "rejected"


def test_dry_run_tags() -> None:
    tags = decide(_evaluated(True), RunOptions(dry_run=True), _run()).tags()
    assert set(tags) == {
        "ct.decision",
        "ct.decision_reason",
        "ct.trigger",
        "ct.airflow_run_id",
        "ct.dry_run",
    }


def test_reason_is_capped_below_mlflows_tag_limit() -> None:
    decision = Decision("rejected", "x" * 10_000, "schedule", "run", promote=False)
    assert len(decision.tags()[registry.TAG_REASON]) <= 5000


# --------------------------------------------------------------------------- apply_decision


def _promotion(replaced: str | None = "3") -> Decision:
    return decide(_evaluated(True, champion=replaced), RunOptions(), _run())


def test_promotion_moves_champion_and_writes_tags() -> None:
    client = FakeRegistryClient(champion="3")
    apply_decision(client, MODEL, "4", _promotion(), expected_champion="3")
    assert client.aliases[registry.CHAMPION] == "4"
    assert client.alias_writes == [(MODEL, registry.CHAMPION, "4")]
    written = dict(client.tags["4"])
    decided_at = datetime.fromisoformat(written.pop(registry.TAG_DECIDED_AT))
    assert written == _promotion().tags()
    assert decided_at.tzinfo == UTC and abs(datetime.now(UTC) - decided_at) < timedelta(minutes=1)


def test_a_rejection_and_a_rollback_are_dated_too() -> None:
    client = _served_twice()
    rejection = decide(_evaluated(False), RunOptions(), _run())
    apply_decision(client, MODEL, "3", rejection, expected_champion="2")
    registry.rollback(client, MODEL, None, "v2 misbehaves", "manual__1")
    assert registry.TAG_DECIDED_AT in client.tags["3"]
    restored_at = client.tags["1"][f"{registry.TAG_ROLLBACK}decided_at"]
    assert client.tags["2"][registry.TAG_DEMOTED_AT] == restored_at
    assert datetime.fromisoformat(restored_at).tzinfo == UTC


@pytest.mark.parametrize("error", [RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE])
def test_first_promotion_without_a_champion(error: int) -> None:
    client = FakeRegistryClient(champion=None)
    client.missing_error = error
    apply_decision(client, MODEL, "1", _promotion(replaced=None), expected_champion=None)
    assert client.aliases[registry.CHAMPION] == "1"
    assert client.tags["1"][registry.TAG_REPLACED] == "none"


@pytest.mark.parametrize(("expected", "now"), [("3", "5"), (None, "5"), ("3", None)])
def test_promotion_refused_when_champion_moved(expected: str | None, now: str | None) -> None:
    client = FakeRegistryClient(champion=now)
    with pytest.raises(ChampionChangedError) as info:
        apply_decision(client, MODEL, "4", _promotion(expected), expected_champion=expected)
    message = str(info.value)
    assert f"from version {expected} to {now}" in message and "version 4" in message
    assert client.alias_writes == []
    assert client.tags == {}  # nothing recorded as promoted
    assert client.aliases.get(registry.CHAMPION) == now


def test_retry_after_a_successful_switch_does_not_write_the_alias_again() -> None:
    client = FakeRegistryClient(champion="4")  # the first attempt switched, then crashed
    apply_decision(client, MODEL, "4", _promotion("3"), expected_champion="3")
    assert client.alias_writes == []
    assert client.aliases[registry.CHAMPION] == "4"
    assert client.tags["4"][registry.TAG_DECISION] == "promoted"
    assert client.tags["4"][registry.TAG_REPLACED] == "3"


def _served_twice() -> FakeRegistryClient:
    """v1 champion, then v2 promoted over it (and, as the latest candidate, `challenger`)."""
    client = FakeRegistryClient(champion="2", tags={"1": {}, "2": {}})
    client.tags["1"] = _promotion(replaced=None).tags()
    client.tags["2"] = _promotion(replaced="1").tags()
    client.aliases[registry.CHALLENGER] = "2"
    return client


def test_rollback_takes_challenger_off_the_version_it_rolls_back_from() -> None:
    client = _served_twice()
    registry.rollback(client, MODEL, None, "v2 misbehaves", "manual__1")
    assert client.aliases == {registry.CHAMPION: "1"}
    # a retry after the switch, whose first attempt died before dropping the alias
    client.aliases[registry.CHALLENGER] = "2"
    outcome = registry.rollback(client, MODEL, None, "v2 misbehaves", "manual__1")
    assert outcome["champion"] == "1" and client.aliases == {registry.CHAMPION: "1"}


def test_rollback_keeps_a_challenger_on_another_version() -> None:
    client = _served_twice()
    client.tags["3"] = {registry.TAG_DECISION: registry.REJECTED}
    client.aliases[registry.CHALLENGER] = "3"  # a later candidate, rejected: still the latest
    registry.rollback(client, MODEL, None, "v2 misbehaves", "manual__1")
    assert client.aliases == {registry.CHAMPION: "1", registry.CHALLENGER: "3"}


def test_concurrent_promotion_detected_after_the_switch() -> None:
    client = FakeRegistryClient(champion="3", thief="6")
    with pytest.raises(ChampionChangedError, match="version 6 right after switching to 4"):
        apply_decision(client, MODEL, "4", _promotion(), expected_champion="3")
    assert client.tags["4"][registry.TAG_DECISION] == "rejected"
    assert client.models == {}  # the lock is released on the way out


LOCK = MODEL + registry.LOCK_SUFFIX


def test_promotion_waits_for_the_lock_and_names_its_holder() -> None:
    client = FakeRegistryClient(champion="3")
    client.create_registered_model(
        LOCK, {registry.TAG_LOCK_HOLDER: "other_run", registry.TAG_LOCK_SINCE: "9e12"}, ""
    )
    lock = registry.champion_lock(client, MODEL, holder="our_run", wait=0.6)
    with pytest.raises(registry.RegistryError, match=r"holds it \(run other_run\)"), lock:
        pass
    assert client.models[LOCK][registry.TAG_LOCK_HOLDER] == "other_run"


@pytest.mark.parametrize(
    ("holder", "since"), [("our_run", "9e12"), ("dead_run", "0")], ids=["retry", "stale"]
)
def test_lock_taken_back_by_a_retry_or_from_a_dead_holder(holder: str, since: str) -> None:
    client = FakeRegistryClient(champion="3")
    tags = {registry.TAG_LOCK_HOLDER: holder, registry.TAG_LOCK_SINCE: since}
    client.create_registered_model(LOCK, tags, "")
    with registry.champion_lock(client, MODEL, holder="our_run", wait=5):
        assert client.models[LOCK][registry.TAG_LOCK_HOLDER] == "our_run"
    assert LOCK not in client.models


def test_promotion_holds_the_lock_while_switching() -> None:
    seen: list[dict[str, dict[str, str]]] = []

    class Watching(FakeRegistryClient):
        def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
            seen.append({k: dict(v) for k, v in self.models.items()})
            super().set_registered_model_alias(name, alias, version)

    client = Watching(champion="3")
    apply_decision(client, MODEL, "4", _promotion(), expected_champion="3")
    assert [s[LOCK][registry.TAG_LOCK_HOLDER] for s in seen] == [_run().airflow_run_id]
    assert client.models == {}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: decide(_evaluated(False), RunOptions(), _run()), id="gate-failed"),
        pytest.param(
            lambda: decide(_evaluated(True), RunOptions(dry_run=True), _run()), id="dry-run"
        ),
    ],
)
def test_rejection_never_touches_the_alias(make: Callable[[], Decision]) -> None:
    client = FakeRegistryClient(champion="3")
    # even with a stale expected champion: a rejection needs no compare-and-set
    apply_decision(client, MODEL, "4", make(), expected_champion="2")
    assert client.alias_writes == []
    assert client.aliases == {registry.CHAMPION: "3"}
    assert client.tags["4"][registry.TAG_DECISION] == "rejected"
    assert registry.TAG_REPLACED not in client.tags["4"]


# --------------------------------------------------------------------------- reachability


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_connection_names_the_url() -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(RegistryError, match=f"MLflow tracking server at {uri} is unreachable"):
        check_reachable(uri, timeout=2)


class _Unhealthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_unhealthy_server_names_the_url() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Unhealthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    uri = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(RegistryError, match=uri):
            check_reachable(uri, timeout=2)
    finally:
        server.shutdown()


def test_non_http_tracking_uris_are_not_probed(tmp_path) -> None:
    check_reachable(f"file://{tmp_path}")
    check_reachable(f"sqlite:///{tmp_path}/mlflow.db")
