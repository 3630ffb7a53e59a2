"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every mail it receives, for tests."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.servers import free_port


@dataclass
class Inbox:
    """aiosmtpd's handler: every message as the server received it."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def save(self, folder: Path) -> None:
        """Each message as an .eml file, as received: for a person to open after the tests."""
        folder.mkdir(parents=True, exist_ok=True)
        for n, message in enumerate(self.messages, start=1):
            (folder / f"mail-{n}.eml").write_bytes(message.as_bytes())

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def one(self, subject_start: str) -> EmailMessage:
        found = [m for m in self.messages if str(m["Subject"]).startswith(subject_start)]
        assert len(found) == 1, (subject_start, self.subjects())
        return found[0]

    def body(self, subject_start: str) -> str:
        return self.one(subject_start).get_body(("html",)).get_content()  # type: ignore[union-attr]


def smtp_connection(port: int) -> str:
    """The smtp provider's connection: no TLS, no SSL, no login; a sender and a short wait."""
    extra = {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@example.com"}
    extra |= {"timeout": 5}
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra})


@contextlib.contextmanager
def smtp_server() -> Iterator[Inbox]:
    """Listening on a free port of 127.0.0.1 until the block ends."""
    from aiosmtpd.controller import Controller

    handler = Inbox(port=free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()
