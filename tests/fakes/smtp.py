"""A real SMTP server for tests (aiosmtpd on a free loopback port) that records what it gets.

The server runs in its own thread and event loop (aiosmtpd's ``Controller``), so the code
under test talks to it over TCP exactly as it would to a relay. Recipients listed in
``refuse`` are answered ``550`` at RCPT, the way a server reports an unknown mailbox.
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Recorder:
    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        item = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(content))
        with self.lock:
            self.received.append(item)
        return "250 Message accepted for delivery"


class FakeSmtp:
    """``with FakeSmtp() as smtp: … smtp.url …``; ``smtp.received`` lists the messages."""

    def __init__(self, *, refuse: set[str] | None = None, auth: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self._recorder = _Recorder(refuse={address.lower() for address in refuse or ()})
        kwargs: dict[str, Any] = {}
        self._auth = auth
        if auth is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False, auth_required=True)
        if auth is not None:
            # Login over plain TCP is what a loopback test server does; aiosmtpd warns per connection.
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning)
        self._controller = Controller(self._recorder, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(data, LoginPassword) and self._auth == (data.login.decode(), data.password.decode())
        return AuthResult(success=ok)

    @property
    def url(self) -> str:
        if self._auth is not None:
            return f"smtp://{self._auth[0]}:{self._auth[1]}@127.0.0.1:{self.port}?starttls=none"
        return f"smtp://127.0.0.1:{self.port}?starttls=none"

    @property
    def received(self) -> list[Received]:
        with self._recorder.lock:
            return list(self._recorder.received)

    def count_by_recipient(self) -> Counter[str]:
        return Counter(recipient for item in self.received for recipient in item.recipients)

    def clear(self) -> None:
        with self._recorder.lock:
            self._recorder.received.clear()

    def __enter__(self) -> FakeSmtp:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
