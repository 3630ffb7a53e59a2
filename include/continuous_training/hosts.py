"""The host name Airflow records for its components and task instances.

Configured as `[core] hostname_callable` (docker-compose.yaml). In a container `HOSTNAME` is
the container's own name, the same as Airflow's default; where several workers share one
machine (the native stack test), each gets its own `HOSTNAME`, so every task instance still
names the worker that ran it.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """`$HOSTNAME` when set, else the fully qualified domain name (Airflow's default)."""
    return os.environ.get("HOSTNAME") or socket.getfqdn()
