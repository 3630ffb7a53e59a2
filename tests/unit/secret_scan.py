"""A scanner for keys and passwords in the files of the repository (tests/unit/test_no_secrets.py).

Three kinds of finding:

- a file that should never be committed, by its name (`.env`, `*.pem`, `id_rsa`, ...);
- a token with a shape of its own: a private key block, AWS, GitHub, Slack and Google keys, a
  JWT, a Fernet key, a password inside a URL;
- an assignment whose name says secret (`password=`, `secret:`, `token =`, `fernet_key`, ...)
  to a literal value, or whose value looks random (high entropy) whatever its name.

What is not a literal is never a finding: `${VAR:?...}` and `$VAR` references (compose, shell),
`<placeholder>`, `%(name)s`/`{name}` templates and, in Python, any expression
(`secrets.token_hex(32)`, `os.environ[...]`): `REFERENCE_VALUES` lists these shapes with why.
The few literal lines that are known not to be secrets are listed in `ALLOWED` with why; a
listed line that no longer exists fails the test, so the list cannot go stale.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import math
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# File names that hold credentials by nature; `.env.example` is the committed template.
FORBIDDEN_FILES = {
    ".env": "compose's secrets file (cp .env.example .env); .gitignore has it",
    ".env.*": "an environment file with values",
    "*.pem": "a certificate or private key",
    "*.key": "a private key",
    "*.p12": "a key store",
    "*.pfx": "a key store",
    "*.jks": "a Java key store",
    "*.kdbx": "a password database",
    "id_rsa*": "an SSH key",
    "id_ed25519*": "an SSH key",
    "id_ecdsa*": "an SSH key",
    ".netrc": "login credentials",
    ".pgpass": "PostgreSQL passwords",
    "credentials": "AWS or MLflow credentials (~/.aws/credentials, ~/.mlflow/credentials)",
    "passwords.json": "the simple auth manager's passwords file",
}
TEMPLATES = {".env.example"}

# Tokens recognisable by their shape alone, wherever they appear.
TOKENS = {
    "private-key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----"),
    "aws-access-key-id": re.compile(
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Z0-9])"
    ),
    "github-token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    "slack-token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "google-api-key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "fernet-key": re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9_=-])"),
    "url-password": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:(?P<value>[^\s/@'\"]+)@"),
}

SECRET_NAME = (
    r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|private[_-]?key|fernet[_-]?key|signing[_-]?key|hash[_-]?key|credentials?"
)
# NAME = value, NAME: value, "NAME": value, NAME := value; the value quoted or bare.
ASSIGNMENT = re.compile(
    r"(?P<key>[A-Za-z_][\w.-]*)[\"']?\s*(?::=|=>|=|:)\s*"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;#)}\]]+)"
)
# ("NAME", "value"): setenv, environ.setdefault, tuples of settings.
PAIR = re.compile(r"[\"'](?P<key>[A-Za-z_][\w.-]*)[\"']\s*,\s*(?P<value>\"[^\"\n]*\"|'[^'\n]*')")
SECRET_KEY_NAME = re.compile(rf"(?i)({SECRET_NAME})")
MIN_SECRET_CHARS = 6  # "x", "p" in tests are not passwords; six characters could be
MIN_RANDOM_CHARS = 20
RANDOM_CHARSET = re.compile(r"^[A-Za-z0-9+/=_-]+$")

# Value shapes that refer to a secret instead of holding it (never findings), and why.
REFERENCE_VALUES = {
    r"^\$\{[A-Za-z_]\w*(?::?[-?][^}]*)?\}": "compose/shell reference, e.g. ${VAR:?set VAR in .env}",
    r"^\\?\$\(?[A-Za-z_({/]": "shell variable or command substitution: made at run time",
    r"^<[^>]*>$": "a placeholder in documentation, e.g. <AIRFLOW_ADMIN_PASSWORD>",
    r"^%\(\w+\)s$|^\{[^{}]*\}$|^\{\{.*\}\}$": "a template or f-string field, filled at run time",
    r"^(?i:none|null|true|false|\*+|\.\.\.|x+)$": "not a value",
    r"^(?:/|\./|~/)[\w./-]+$": "a file path: where a secret is kept, not the secret",
    r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$": "an environment variable's name, e.g. POSTGRES_PASSWORD",
    r"^.*\s": "prose: keys and generated passwords are one word",
}
# Files whose bare (unquoted) values are literals; elsewhere (Python) a bare value is code.
LITERAL_SUFFIXES = {".yaml", ".yml", ".ini", ".cfg", ".toml", ".env", ".sh", ".md", ".txt", ".conf"}
LITERAL_NAMES = {"Dockerfile", "Makefile", ".env.example"}


@dataclass(frozen=True)
class Allowed:
    """A literal that a rule flags but that is known not to be a secret."""

    path: str  # glob of the file
    rule: str
    text: str  # a piece of the flagged line
    reason: str


ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "tests/stack/test_stack_auth.py",
        "generic-assignment",
        '"not-the-password"',
        "a deliberately wrong password, sent to check that MLflow refuses it",
    ),
)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.text.strip()[:120]}"


def tracked_files(root: Path) -> list[str]:
    """Every file git tracks in `root`, as paths relative to it."""
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, timeout=60
    )
    return [name for name in out.stdout.decode().split("\0") if name]


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_random(value: str) -> bool:
    """Long, one token, and as random as a generated key.

    Hex (digests, `token_hex`) needs 32 characters; other tokens (base64, `token_urlsafe`) need
    upper, lower and digits with close to the entropy random characters of that length have,
    or, with two of those classes only, a lot of it (so `HistGradientBoostingClassifier` passes).
    """
    if len(value) < MIN_RANDOM_CHARS or not RANDOM_CHARSET.match(value):
        return False
    if re.fullmatch(r"[0-9a-f]+|[0-9A-F]+", value):
        return len(value) >= 32 and entropy(value) >= 2.8
    classes = sum(bool(re.search(p, value)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    if classes == 3:
        return entropy(value) >= min(4.0, 0.8 * math.log2(len(value)))
    return classes == 2 and entropy(value) >= 4.5


def is_reference(value: str) -> bool:
    return any(re.match(p, value) for p in REFERENCE_VALUES)


def literal(raw: str, literal_bare: bool) -> str | None:
    """The literal text of an assigned value, or None when it is code or a reference."""
    quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'"
    if not quoted and not literal_bare:
        return None
    value = raw[1:-1] if quoted else raw
    return None if not value or is_reference(value) else value


def _is_fernet_key(token: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(token)) == 32 and looks_random(token)
    except (binascii.Error, ValueError):
        return False


def _token_findings(path: str, number: int, line: str) -> Iterator[Finding]:
    for rule, pattern in TOKENS.items():
        for match in pattern.finditer(line):
            if rule == "fernet-key" and not _is_fernet_key(match.group(0)):
                continue
            if rule == "url-password":
                value = match.group("value")
                if len(value) < 4 or is_reference(value):
                    continue
            yield Finding(path, number, rule, line)


def _assignment_findings(
    path: str, number: int, line: str, literal_bare: bool
) -> Iterator[Finding]:
    matches = [*ASSIGNMENT.finditer(line), *PAIR.finditer(line)]
    for match in matches:
        if line[: match.start()].endswith(("${", "$", "{{")):
            continue  # ${NAME:?...}: the name of a variable being read, not assigned
        value = literal(match.group("value"), literal_bare)
        if value is None:
            continue
        if SECRET_KEY_NAME.search(match.group("key")) and len(value) >= MIN_SECRET_CHARS:
            yield Finding(path, number, "generic-assignment", line)
        elif looks_random(value):
            yield Finding(path, number, "high-entropy-assignment", line)


def scan_text(path: str, text: str) -> Iterator[Finding]:
    name = Path(path).name
    literal_bare = Path(path).suffix in LITERAL_SUFFIXES or name in LITERAL_NAMES
    for number, line in enumerate(text.splitlines(), start=1):
        yield from _token_findings(path, number, line)
        yield from _assignment_findings(path, number, line, literal_bare)


def forbidden_name(path: str) -> str | None:
    name = Path(path).name
    if name in TEMPLATES:
        return None
    for pattern, why in FORBIDDEN_FILES.items():
        if fnmatch.fnmatch(name, pattern):
            return why
    return None


def scan_file(root: Path, path: str) -> list[Finding]:
    findings = []
    why = forbidden_name(path)
    if why:
        findings.append(Finding(path, 0, "forbidden-file", why))
    data = (root / path).read_bytes()
    if b"\0" in data[:8192]:
        return findings  # binary: only its name is judged
    return findings + list(scan_text(path, data.decode("utf-8", errors="replace")))


def allowed_by(finding: Finding) -> Allowed | None:
    for entry in ALLOWED:
        if (
            fnmatch.fnmatch(finding.path, entry.path)
            and entry.rule == finding.rule
            and entry.text in finding.text
        ):
            return entry
    return None


def scan(root: Path, paths: Iterable[str]) -> tuple[list[Finding], set[Allowed]]:
    """Findings not on the allow-list, and the allow-list entries that were used."""
    findings, used = [], set()
    for path in paths:
        if not (root / path).is_file():
            continue  # deleted in the work tree, not yet in the index
        for finding in scan_file(root, path):
            entry = allowed_by(finding)
            if entry is None:
                findings.append(finding)
            else:
                used.add(entry)
    return findings, used
