"""A real SMTP server for tests (aiosmtpd on a free loopback port) that records what it gets.

The server runs in its own thread and event loop (aiosmtpd's ``Controller``), so the code
under test talks to it over TCP exactly as it would to a relay. Recipients listed in
``refuse`` are answered ``550`` at RCPT, the way a server reports an unknown mailbox.
``defer`` (address → n) answers the first n RCPTs of an address ``451`` (greylisting, a
full mailbox); ``defer_data`` (address → n) answers the end of its first n DATAs ``451``
and keeps nothing of them — both the way a server says "not now, try later".

``stall_rcpt`` / ``stall_data`` (addresses) hold the client at one exact point, once per
address: the answer to its RCPT is never sent, or its letter is kept and the answer to its
final "." is never sent. ``stalls`` counts the holds so far: a test kills the client while
held, at a moment it chose rather than one that timing chose.
"""

from __future__ import annotations

import asyncio
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
    defer: Counter[str] = field(default_factory=Counter)
    defer_data: Counter[str] = field(default_factory=Counter)
    received: list[Received] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)  # (stage, address) of each 451
    stall_rcpt: set[str] = field(default_factory=set)
    stall_data: set[str] = field(default_factory=set)
    stalls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def _stall(self, waiting: set[str], address: str) -> None:
        with self.lock:
            if address not in waiting:
                return
            waiting.discard(address)
            self.stalls += 1
        # No answer until the client goes away (aiosmtpd then cancels this handler).
        await asyncio.Event().wait()

    def _deferred(self, left: Counter[str], address: str, stage: str) -> bool:
        with self.lock:
            if left[address] <= 0:
                return False
            left[address] -= 1
            self.deferred.append((stage, address))
            return True

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox"
        if self._deferred(self.defer, address.lower(), "rcpt"):
            return "451 4.7.1 greylisted, try again later"
        await self._stall(self.stall_rcpt, address.lower())
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if any(self._deferred(self.defer_data, address.lower(), "data") for address in envelope.rcpt_tos):
            return "451 4.3.0 temporary failure, try again later"
        content = envelope.original_content or b""
        item = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(content))
        with self.lock:
            self.received.append(item)
        for address in item.recipients:
            await self._stall(self.stall_data, address.lower())
        return "250 Message accepted for delivery"


class FakeSmtp:
    """``with FakeSmtp() as smtp: … smtp.url …``; ``smtp.received`` lists the messages."""

    def __init__(
        self,
        *,
        refuse: set[str] | None = None,
        defer: dict[str, int] | None = None,
        defer_data: dict[str, int] | None = None,
        stall_rcpt: set[str] | None = None,
        stall_data: set[str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self._recorder = _Recorder(
            refuse={address.lower() for address in refuse or ()},
            defer=Counter({address.lower(): count for address, count in (defer or {}).items()}),
            defer_data=Counter({address.lower(): count for address, count in (defer_data or {}).items()}),
            stall_rcpt={address.lower() for address in stall_rcpt or ()},
            stall_data={address.lower() for address in stall_data or ()},
        )
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

    @property
    def stalls(self) -> int:
        """How many clients are held (or were) at a ``stall_rcpt`` / ``stall_data`` point."""
        with self._recorder.lock:
            return self._recorder.stalls

    @property
    def deferred(self) -> list[tuple[str, str]]:
        """(``rcpt`` or ``data``, address) of every ``451`` answered, in order."""
        with self._recorder.lock:
            return list(self._recorder.deferred)

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
