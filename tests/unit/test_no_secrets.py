"""No key or password in any file git tracks, and a scanner that would find one if there were.

The planted secrets below are made at run time (`secrets`, `Fernet.generate_key()`) and written
to a throw-away git repository under tmp_path: this file itself holds none, and the secret-ish
names are split (`PASSWORD = "pass" + "word"`) so that the scan of the repository does not
flag the test's own source.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import subprocess
from pathlib import Path

import pytest

from tests.environment import ROOT
from tests.unit import secret_scan
from tests.unit.secret_scan import ALLOWED, scan, tracked_files

PASSWORD = "pass" + "word"
SECRET = "sec" + "ret"
TOKEN = "tok" + "en"


def test_no_tracked_file_holds_a_secret() -> None:
    findings, _ = scan(ROOT, tracked_files(ROOT))
    assert findings == [], (
        "secrets in tracked files (move them to .env, or see secret_scan.py):\n"
        + "\n".join(map(str, findings))
    )


def test_every_allow_list_entry_is_still_needed() -> None:
    _, used = scan(ROOT, tracked_files(ROOT))
    assert set(ALLOWED) == used, f"stale allow-list entries: {set(ALLOWED) - used}"
    assert all(entry.reason for entry in ALLOWED)


def test_git_tracks_the_template_but_not_the_env_file() -> None:
    tracked = set(tracked_files(ROOT))
    assert ".env.example" in tracked and "README.md" in tracked
    assert ".env" not in tracked


# --------------------------------------------------------------------------- planted secrets


def random_word(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def fake_jwt() -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return (
        f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': random_word(12)})}.{random_word(43)}"
    )


def planted() -> list[tuple[str, str, str]]:
    """(file, content, the rule that must flag it), each made fresh."""
    from cryptography.fernet import Fernet

    key_block = "-----BEGIN " + "OPENSSH PRIVATE KEY-----"
    upper = string.ascii_uppercase + string.digits
    return [
        ("deploy/key.txt", f"{key_block}\n{random_word(64)}\n", "private-key"),
        ("settings.py", f'region = "eu"  # AKIA{random_word(16, upper)}', "aws-access-key-id"),
        ("aws.ini", f"aws_{SECRET}_access_key = {random_word(40)}", "generic-assignment"),
        ("app/db.py", f'db_{PASSWORD} = "{random_word(12)}"', "generic-assignment"),
        ("conf.yaml", f"mlflow:\n  {PASSWORD}: {random_word(10)}\n", "generic-assignment"),
        (
            "prod.env.sh",
            f"export API_{TOKEN.upper()}={secrets.token_hex(16)}",
            "generic-assignment",
        ),
        ("crypto.py", f"cfg = {{'fernet': '{Fernet.generate_key().decode()}'}}", "fernet-key"),
        ("auth.yml", f"jwt_{SECRET}: {secrets.token_hex(32)}", "generic-assignment"),
        ("client.md", f"curl -H 'Authorization: Bearer {fake_jwt()}'", "jwt"),
        ("salt.py", f'SALT = "{secrets.token_urlsafe(32)}"', "high-entropy-assignment"),
        ("db.cfg", f"url = postgresql://airflow:{random_word(12)}@db:5432/x", "url-password"),
        (
            "setup_env.py",
            f'os.environ.setdefault("MLFLOW_TRACKING_{PASSWORD.upper()}", "{random_word(10)}")',
            "generic-assignment",
        ),
        ("ci.yaml", f"github: ghp_{random_word(36)}", "github-token"),
        (".env", f"POSTGRES_{PASSWORD.upper()}=", "forbidden-file"),
        ("home/.ssh/id_rsa", "not even a key", "forbidden-file"),
    ]


def git_repo(root: Path, files: dict[str, str]) -> list[str]:
    """A throw-away repository with `files` added (tracked, not committed), as the scan sees it."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    subprocess.run(["git", "add", "-f", "."], cwd=root, check=True)
    return tracked_files(root)


@pytest.mark.parametrize("index", range(len(planted())))
def test_the_scanner_flags_a_planted_secret(tmp_path: Path, index: int) -> None:
    name, content, rule = planted()[index]
    findings, _ = scan(tmp_path, git_repo(tmp_path, {name: content}))
    assert rule in {f.rule for f in findings}, (name, content, findings)


NOT_SECRETS = {
    "docker-compose.yaml": (
        f"POSTGRES_{PASSWORD.upper()}: ${{POSTGRES_{PASSWORD.upper()}:?set it in .env}}\n"
        f"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_{PASSWORD.upper()}S_FILE: /opt/airflow/auth/x.json\n"
        f"url: postgresql+psycopg2://${{USER}}:${{POSTGRES_{PASSWORD.upper()}:?set}}@postgres:5432/db\n"
    ),
    "docker/init.sh": f': "${{ADMIN_{PASSWORD.upper()}:?set ADMIN_{PASSWORD.upper()}}}"\n',
    "native.py": (
        f'variables = {{"ADMIN_{PASSWORD.upper()}": secrets.token_hex(12)}}\n'
        f'{PASSWORD} = os.environ["DB_{PASSWORD.upper()}"]\n'
        f'json = {{"username": user, "{PASSWORD}": "x"}}\n'
    ),
    "docs/operations/deploy.md": (
        f"""-d '{{"username": "admin", "{PASSWORD}": "<ADMIN_{PASSWORD.upper()}>"}}'\n"""
    ),
    ".env.example": f"POSTGRES_{PASSWORD.upper()}=\nAIRFLOW_ADMIN_USERNAME=admin\n",
    "test_shas.py": f'"{SECRET}_{TOKEN}": "the {TOKEN} of the run, made at run time"\n',
}


def test_references_code_and_templates_are_not_findings(tmp_path: Path) -> None:
    findings, _ = scan(tmp_path, git_repo(tmp_path, NOT_SECRETS))
    assert findings == []


def test_an_allowed_literal_is_allowed_only_where_listed(tmp_path: Path) -> None:
    [entry] = [e for e in ALLOWED if e.path.endswith("test_stack_auth.py")]
    line = f'monkeypatch.setenv("MLFLOW_TRACKING_{PASSWORD.upper()}", {entry.text})\n'
    elsewhere = "tests/stack/other.py"
    paths = git_repo(tmp_path, {entry.path: line, elsewhere: line})
    findings, used = scan(tmp_path, paths)
    assert [f.path for f in findings] == [elsewhere] and used == {entry}


def test_high_entropy_needs_length_and_randomness() -> None:
    assert secret_scan.looks_random(secrets.token_urlsafe(32))
    assert secret_scan.looks_random(secrets.token_hex(32))
    assert not secret_scan.looks_random("churn_weekly_retraining")
    assert not secret_scan.looks_random("HistGradientBoostingClassifier")
    assert not secret_scan.looks_random("a" * 40)
