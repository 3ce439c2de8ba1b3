"""Outgoing mail transport: SMTP (``CRM_SMTP_URL``, aiosmtplib) or a folder of .eml files.

Sending is split in two so a caller can record "sent" in its database between the steps:

    async with transport.session() as session:
        staged = await session.stage(message)   # SMTP: MAIL, RCPT, DATA and the body, not the final "."
        ... commit "sent" in PostgreSQL ...
        await staged.finish()                   # SMTP: the final "." — the server now delivers

An SMTP server delivers nothing until it reads the "." that ends DATA; a connection that
drops before it (our process killed) aborts the transaction on the server (RFC 5321 §4.1.1.4).
So a message whose "sent" mark never committed was never delivered, and may be sent again;
the only moment where a crash leaves the two disagreeing is the few microseconds between
the commit returning and the "." being written (then the mark says sent and nothing went).
The folder transport does the same with a temporary file renamed into place.

The transport of a process is chosen once from its settings (:func:`install_mail`); the
web app and the workers call it at start-up, anything else falls back to the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Protocol, cast

import aiosmtplib

from crm.settings import Settings, SmtpSettings, load_settings

log = logging.getLogger(__name__)

# Dot-stuffing and line endings exactly as aiosmtplib does them for DATA.
_LEADING_DOT = re.compile(rb"(?m)^\.")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class MailError(Exception):
    """A message could not be handed over. ``permanent``: the server refused it for good (5xx)."""

    def __init__(self, message: str, *, permanent: bool = False, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


@dataclass(frozen=True)
class Sender:
    name: str
    address: str

    def header(self) -> str:
        return formataddr((self.name, self.address))


# Bodies in quoted-printable keep messages 7-bit (no server needs 8BITMIME for Cyrillic);
# headers with non-ASCII text become RFC 2047 encoded words.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP
_WIRE = compat32.clone(linesep="\r\n")


def _header(value: str, name: str) -> str:
    # A Header object is folded with the header's name in mind; compat32 messages take one
    # where the type hints say str.
    return value if value.isascii() else cast(str, Header(value, "utf-8", header_name=name))


def _part(text: str, subtype: str) -> Message:
    part = Message()
    part.set_type(f"text/{subtype}")
    part.set_payload(text, _UTF8)  # stored quoted-printable encoded
    return part


class OutgoingMessage(Message):
    """A message that knows its envelope (no parsing of its own headers to send it)."""

    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()


def build_message(
    *,
    sender: Sender,
    to: str,
    subject: str,
    text: str,
    message_id: str,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> Message:
    """A MIME message; ``message_id`` is stable for one logical message (retries reuse it).

    Built with the ``compat32`` classes and flattened by :func:`message_bytes`: a mailing
    builds one per recipient, and ``EmailMessage`` with the email package's generator costs
    several times more (its header objects parse and refold every value)."""
    message = OutgoingMessage()
    message.envelope_from, message.envelope_to = sender.address, (to,)
    if html is None:
        message.set_type("text/plain")
        message.set_payload(text, _UTF8)
    else:
        message.set_type("multipart/alternative")
        message.set_param("boundary", f"=_relay_{uuid.uuid4().hex}")
        message.attach(_part(text, "plain"))
        message.attach(_part(html, "html"))
    message["From"] = formataddr((sender.name, sender.address), charset="utf-8")
    message["To"] = to
    message["Subject"] = _header(subject, "Subject")
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    for name, value in (headers or {}).items():
        message[name] = _header(value, name)
    return message


def _flatten(part: Message, out: list[str]) -> None:
    for name, value in part.items():
        text = value.encode() if isinstance(value, Header) else str(value)
        out.append(f"{name}: {text}\n")
    out.append("\n")
    if part.is_multipart():
        boundary = part.get_boundary()
        for sub in cast(list[Message], part.get_payload()):
            out.append(f"--{boundary}\n")
            _flatten(sub, out)
        out.append(f"--{boundary}--\n")
        return
    payload = str(part.get_payload())
    out.append(payload if payload.endswith("\n") else payload + "\n")


def message_bytes(message: Message) -> bytes:
    """The message as it goes on the wire (CRLF line ends). Messages of
    :func:`build_message` are 7-bit with short header lines; others go through the
    email package's generator."""
    if not isinstance(message, OutgoingMessage):
        return message.as_bytes(policy=_WIRE)
    out: list[str] = []
    _flatten(message, out)
    return "".join(out).replace("\r\n", "\n").replace("\n", "\r\n").encode("ascii")


def message_id_for(key: str, sender: Sender) -> str:
    """``<key@domain-of-sender>``: the same key gives the same Message-ID on every retry."""
    domain = sender.address.rpartition("@")[2] or "localhost"
    return f"<{key}@{domain}>"


class StagedMessage(Protocol):
    async def finish(self) -> None:
        """Hand the message over for delivery (SMTP: the final "."); raises :class:`MailError`."""

    async def abort(self) -> None:
        """Drop the staged message: nothing is delivered."""


class MailSession(Protocol):
    async def stage(self, message: Message) -> StagedMessage:
        """Everything but the final step; raises :class:`MailError`."""


class MailTransport(Protocol):
    def session(self) -> contextlib.AbstractAsyncContextManager[MailSession]:
        """One connection (SMTP) reused for the messages sent through it."""

    def describe(self) -> str: ...


async def send_message(transport: MailTransport, message: Message) -> None:
    """Stage and finish one message (for callers with nothing to record in between)."""
    async with transport.session() as session:
        staged = await session.stage(message)
        await staged.finish()


# --- SMTP --------------------------------------------------------------------------------


def _envelope(message: Message) -> tuple[str, list[str]]:
    if isinstance(message, OutgoingMessage):
        return message.envelope_from, list(message.envelope_to)
    sender = parseaddr(str(message["From"]))[1]
    recipients = [parseaddr(str(value))[1] for value in message.get_all("To", [])]
    return sender, recipients


def _data_bytes(message: Message) -> bytes:
    """The DATA body as aiosmtplib would send it, without the terminating "."."""
    raw = message_bytes(message)
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return _LEADING_DOT.sub(b"..", raw)


class _SmtpStaged:
    def __init__(self, session: _SmtpSession, client: aiosmtplib.SMTP) -> None:
        self._session = session
        self._client = client

    async def finish(self) -> None:
        try:
            # A lone "." on its line ends DATA; execute_command writes it and reads the reply.
            response = await self._client.execute_command(b".")
        except (aiosmtplib.SMTPException, OSError) as error:
            self._session.drop()
            raise MailError(f"the connection failed at the end of DATA: {type(error).__name__}") from None
        if response.code != 250:
            raise MailError(
                f"the server refused the message: {response.code}", permanent=response.code >= 500, code=response.code
            )

    async def abort(self) -> None:
        # Closing mid-DATA makes the server discard the message; the next one reconnects.
        self._session.drop()


class _SmtpSession:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None

    def drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            use_tls=settings.tls == "implicit",
            start_tls={"auto": None, "starttls": True, "none": False, "implicit": False}[settings.tls],
            username=settings.username,
            password=settings.password.reveal() if settings.password else None,
            timeout=settings.timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            # The error text of a failed login may echo the user name, never the password.
            raise MailError(f"cannot connect to {settings.describe()}: {type(error).__name__}") from None
        self._client = client
        return client

    async def stage(self, message: Message) -> StagedMessage:
        sender, recipients = _envelope(message)
        client = await self._connected()
        try:
            await client.mail(sender)
            for recipient in recipients:
                await client.rcpt(recipient)
            response = await client.execute_command(b"DATA")
            if response.code != 354:
                raise aiosmtplib.SMTPDataError(response.code, response.message)
            assert client.protocol is not None
            client.protocol.write(_data_bytes(message))
        except aiosmtplib.SMTPResponseException as error:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.rset()
            raise MailError(
                f"the server refused the message: {error.code}", permanent=error.code >= 500, code=error.code
            ) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            self.drop()
            raise MailError(f"the SMTP connection failed: {type(error).__name__}") from None
        return _SmtpStaged(self, client)

    async def quit(self) -> None:
        if self._client is not None and self._client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._client.quit()
        self.drop()


class SmtpTransport:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def describe(self) -> str:
        return self.settings.describe()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        session = _SmtpSession(self.settings)
        try:
            yield session
        finally:
            await session.quit()


# --- folder ------------------------------------------------------------------------------


class _FolderStaged:
    def __init__(self, temporary: Path, final: Path) -> None:
        self._temporary = temporary
        self._final = final

    async def finish(self) -> None:
        # The name comes from the Message-ID: a retry replaces the file, never adds a second.
        os.replace(self._temporary, self._final)

    async def abort(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._temporary.unlink()


class _FolderSession:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def stage(self, message: Message) -> StagedMessage:
        self._folder.mkdir(parents=True, exist_ok=True)
        name = _SAFE_NAME.sub("_", str(message["Message-ID"]).strip("<>")) or "message"
        fd, temporary = tempfile.mkstemp(dir=self._folder, prefix=".staged-", suffix=".eml")
        with os.fdopen(fd, "wb") as handle:
            handle.write(message_bytes(message))
        return _FolderStaged(Path(temporary), self._folder / f"{name}.eml")


class FolderTransport:
    """No SMTP server configured (a trial, a laptop): messages become files to read."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return f"folder {self.folder}"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        yield _FolderSession(self.folder)


@dataclass(frozen=True)
class OutboxFile:
    path: Path
    written_at: datetime
    sender: str
    to: str
    subject: str


def list_outbox(folder: Path) -> list[OutboxFile]:
    """The messages the folder transport wrote, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    parser = BytesHeaderParser(policy=policy.default)
    for path in folder.glob("*.eml"):
        if path.name.startswith("."):
            continue
        with path.open("rb") as handle:
            headers = parser.parse(handle)
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        found.append(
            OutboxFile(
                path, written, str(headers["From"] or ""), str(headers["To"] or ""), str(headers["Subject"] or "")
            )
        )
    return sorted(found, key=lambda item: (item.written_at, item.path.name))


# --- the process's mail --------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    """The process's transport and the settings mail needs (sender, links back to the app)."""

    transport: MailTransport
    settings: Settings

    @property
    def default_sender(self) -> Sender:
        return Sender(self.settings.mail.from_name, self.settings.mail.from_address)


def mail_from_settings(settings: Settings) -> Mail:
    smtp = settings.mail.smtp
    transport: MailTransport = SmtpTransport(smtp) if smtp is not None else FolderTransport(settings.mail.outbox_dir)
    return Mail(transport, settings)


_installed: Mail | None = None


def install_mail(settings: Settings) -> Mail:
    """Choose this process's transport (web app and worker start-up); tests point it at their
    SMTP fake the same way."""
    global _installed
    _installed = mail_from_settings(settings)
    log.info("outgoing mail goes to %s", _installed.transport.describe())
    return _installed


def current_mail() -> Mail:
    """The installed transport, or the one ``CRM_*`` variables describe."""
    global _installed
    if _installed is None:
        _installed = mail_from_settings(load_settings())
    return _installed


def command_mail_outbox(args: argparse.Namespace) -> int:
    """``crm mail outbox``: list (or ``--show N``) the messages in the outbox folder."""
    from crm.cli import print_json

    settings = load_settings().mail
    files = list_outbox(settings.outbox_dir)
    if args.show is not None:
        if not 1 <= args.show <= len(files):
            print(f"crm: there is no message {args.show}; the outbox holds {len(files)}", file=sys.stderr)
            return 1
        sys.stdout.write(files[args.show - 1].path.read_bytes().decode("utf-8", "replace"))
        return 0
    if args.json:
        print_json(
            [
                {
                    "file": str(item.path),
                    "written_at": item.written_at.isoformat(),
                    "from": item.sender,
                    "to": item.to,
                    "subject": item.subject,
                }
                for item in files
            ]
        )
        return 0
    if settings.smtp is not None:
        print(f"note: CRM_SMTP_URL is set; new mail goes to {settings.smtp.describe()}", file=sys.stderr)
    print(f"{len(files)} message(s) in {settings.outbox_dir}", file=sys.stderr)
    for number, item in enumerate(files, 1):
        print(f"{number}\t{item.written_at:%Y-%m-%d %H:%M:%S}\t{item.to}\t{item.subject}")
    return 0
