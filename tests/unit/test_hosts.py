"""The hostname callable of docker-compose.yaml: the container's name, else Airflow's default."""

from __future__ import annotations

import socket

import pytest

from continuous_training.hosts import hostname


def test_hostname_is_the_containers_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTNAME", "airflow-worker-2")
    assert hostname() == "airflow-worker-2"


@pytest.mark.parametrize("value", [None, ""])
def test_without_a_name_it_is_the_fqdn(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("HOSTNAME", raising=False)
    else:
        monkeypatch.setenv("HOSTNAME", value)
    assert hostname() == socket.getfqdn()


def test_airflow_resolves_the_configured_callable(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.configuration import conf

    monkeypatch.setenv("AIRFLOW__CORE__HOSTNAME_CALLABLE", "continuous_training.hosts.hostname")
    monkeypatch.setenv("HOSTNAME", "airflow-scheduler")
    assert conf.getimport("core", "hostname_callable")() == "airflow-scheduler"
