"""Outgoing mail transport: SMTP (``CRM_SMTP_URL``, aiosmtplib) or a folder of .eml files.

Sending is split in two so a caller can record "sent" in its database between the steps:

    async with transport.session() as session:
        staged = await session.stage(message)   # SMTP: MAIL, RCPT, DATA and the body, not the final "."
        ... commit "sent" in PostgreSQL ...
        await staged.finish()                   # SMTP: the final "." — the server now delivers

``finish()`` is ``release()`` — a plain function that writes the "." and returns, no
waiting — then ``await confirm()`` for the server's answer. A caller releasing many
messages at one moment (mailings) calls ``release()`` on each in one synchronous stretch,
so no other task runs between its database COMMIT and the last ".".

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
import base64
import binascii
import contextlib
import functools
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
    """A message could not be handed over. ``permanent``: the server refused it for good (5xx).
    ``code``: the server's reply code, None when the connection failed. From ``confirm()``,
    ``not_delivered`` says the server certainly does not have the message (it answered the
    "." with a 4xx/5xx, or the "." was never written), so sending it again is no duplicate."""

    def __init__(
        self, message: str, *, permanent: bool = False, code: int | None = None, not_delivered: bool = True
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.not_delivered = not_delivered


@dataclass(frozen=True)
class Sender:
    name: str
    address: str

    def header(self) -> str:
        return formataddr((self.name, self.address))


# Bodies in quoted-printable keep messages 7-bit (no server needs 8BITMIME for Cyrillic);
# headers with non-ASCII text become RFC 2047 encoded words. Both are written here with
# C-speed primitives (binascii, base64): a mailing encodes one letter per recipient, and
# the email package's pure-Python encoders (quoprimime, Header) cost a millisecond a letter.
_WIRE = compat32.clone(linesep="\r\n")
# At most 39 UTF-8 bytes an encoded word: 52 base64 characters, 64 with its markup, so a
# folded line stays within the 76 characters RFC 2047 asks for.
_WORD_BYTES = 39


def encoded_words(value: str) -> str:
    """``value`` as RFC 2047 "B" encoded words in UTF-8, one per folded line (whole
    characters per word); ASCII text stays as it is."""
    if value.isascii():
        return value
    data = value.encode("utf-8", "surrogatepass")
    words = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1  # not inside a character: a continuation byte starts no character
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start = end
    return "\n ".join(words)


def _quoted_printable(text: str) -> str:
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8", "surrogatepass")
    return binascii.b2a_qp(body, istext=True).decode("ascii")


def _text(part: Message, text: str, subtype: str) -> None:
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(_quoted_printable(text))


def _part(text: str, subtype: str) -> Message:
    part = Message()
    _text(part, text, subtype)
    return part


@functools.lru_cache(maxsize=256)
def _from_header(name: str, address: str) -> str:
    # The same for every letter of a mailing: encoded once.
    return formataddr((name, address), charset="utf-8")


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
    message["MIME-Version"] = "1.0"
    if html is None:
        _text(message, text, "plain")
    else:
        message["Content-Type"] = f'multipart/alternative; boundary="=_relay_{uuid.uuid4().hex}"'
        message.attach(_part(text, "plain"))
        message.attach(_part(html, "html"))
    message["From"] = _from_header(sender.name, sender.address)
    message["To"] = to
    message["Subject"] = encoded_words(subject)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = encoded_words(value)
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
    def release(self) -> None:
        """Hand the message over for delivery (SMTP: write the final "."); never waits, never
        raises — a failure shows in :meth:`confirm`."""

    async def confirm(self) -> None:
        """The server's answer to :meth:`release`; raises :class:`MailError`."""

    async def finish(self) -> None:
        """:meth:`release` then :meth:`confirm`."""

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
        self._released: MailError | bool | None = False

    def release(self) -> None:
        # A lone "." on its line ends DATA. Written straight to the transport (one send()),
        # the reply read by confirm(): no await between this and the caller's other writes.
        protocol = self._client.protocol
        try:
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("not connected")
            protocol.write(b".\r\n")
        except (aiosmtplib.SMTPException, OSError):
            # Nothing was written: the server ends the transaction without the message.
            self._released = MailError("the connection was lost before the end of DATA")
            return
        self._released = None

    async def confirm(self) -> None:
        if self._released is False:
            raise RuntimeError("confirm() before release()")
        if isinstance(self._released, MailError):
            self._session.drop()
            raise self._released
        assert self._client.protocol is not None
        try:
            response = await self._client.protocol.read_response(timeout=self._client.timeout)
        except (aiosmtplib.SMTPException, OSError) as error:
            self._session.drop()
            # The "." was written: the server may have the message even though we heard nothing.
            raise MailError(
                f"the connection failed at the end of DATA: {type(error).__name__}", not_delivered=False
            ) from None
        if response.code != 250:
            raise MailError(
                f"the server refused the message: {response.code}", permanent=response.code >= 500, code=response.code
            )

    async def finish(self) -> None:
        self.release()
        await self.confirm()

    async def abort(self) -> None:
        # Closing mid-DATA makes the server discard the message; the next one reconnects.
        self._session.drop()


# An address that goes on the wire as it is, between angle brackets (what aiosmtplib's
# quote_address makes of it too, after running it through the email package's parser).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


async def _envelope_command(client: aiosmtplib.SMTP, verb: bytes, address: str, accepted: tuple[int, ...]) -> None:
    """MAIL FROM / RCPT TO. Plain addresses skip aiosmtplib's parse of each one (a cost per
    letter of a mailing); anything else goes through its ``mail``/``rcpt``."""
    if not _PLAIN_ADDRESS.fullmatch(address):
        if verb.startswith(b"MAIL"):
            await client.mail(address)
        else:
            await client.rcpt(address)
        return
    response = await client.execute_command(verb + b"<" + address.encode("ascii") + b">")
    if response.code not in accepted:
        raise aiosmtplib.SMTPResponseException(response.code, response.message)


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
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
        except (aiosmtplib.SMTPException, OSError) as error:
            # The error text of a failed login may echo the user name, never the password.
            raise MailError(f"cannot connect to {settings.describe()}: {type(error).__name__}") from None
        self._client = client
        return client

    async def stage(self, message: Message) -> StagedMessage:
        sender, recipients = _envelope(message)
        client = await self._connected()
        try:
            await _envelope_command(client, b"MAIL FROM:", sender, (250,))
            for recipient in recipients:
                await _envelope_command(client, b"RCPT TO:", recipient, (250, 251))
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
        self._error: MailError | None = None

    def release(self) -> None:
        # The name comes from the Message-ID: a retry replaces the file, never adds a second.
        try:
            os.replace(self._temporary, self._final)
        except OSError as error:
            self._error = MailError(f"cannot write to the outbox folder: {type(error).__name__}")

    async def confirm(self) -> None:
        if self._error is not None:
            raise self._error

    async def finish(self) -> None:
        self.release()
        await self.confirm()

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
