#!/usr/bin/env bash
# airflow-init (docker-compose.yaml; tests/stack runs the same file natively): migrate the
# metadata database, then give the simple auth manager the login of .env. Without the file the
# API server would generate a random password and print it in its log instead.
set -euo pipefail
: "${AIRFLOW_ADMIN_USERNAME:?set AIRFLOW_ADMIN_USERNAME}"
: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?set AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"

airflow db migrate

# The password travels through the environment, never through argv (visible in `ps`).
python - <<'PY'
import json
import os
from pathlib import Path

path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
path.parent.mkdir(parents=True, exist_ok=True)
login = {os.environ["AIRFLOW_ADMIN_USERNAME"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}
tmp = path.with_name(path.name + ".tmp")
tmp.write_text(json.dumps(login))
tmp.chmod(0o600)
tmp.replace(path)
print(f"airflow-init: login of {os.environ['AIRFLOW_ADMIN_USERNAME']!r} written to {path}")
PY
