"""A voice note (or audio file) sent as a call's comment: what the conversation keeps of it,
and fetching its bytes from Telegram when the call is saved.

The conversation's data lives in the FSM storage (Redis or PostgreSQL) and must stay small,
so it keeps only Telegram's ``file_id`` and a few numbers; the bytes are downloaded when
the user presses the last button, right before the activity and its attachment are written
in one transaction. Nothing is stored for a conversation that is cancelled or abandoned.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import AiogramError
from aiogram.types import File, Message

from crm.tenants.activities.attachments import clean_mime_type

log = logging.getLogger("crm.bot")

# Telegram's Bot API lets bots download files of up to 20 MB.
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT_SECONDS = 60
# What Telegram records voice notes as; an audio file without a type is kept as bytes.
VOICE_MIME_TYPE = "audio/ogg"


class RecordingTooLarge(Exception):
    """Over Telegram's download limit: the bot cannot fetch it."""


class RecordingUnavailable(Exception):
    """Telegram did not hand the file over (gone, refused, or the network failed)."""


def recording_of(message: Message) -> dict[str, Any] | None:
    """What the conversation keeps of the message's voice note or audio file (JSON-safe,
    a few dozen bytes), or None when it carries neither."""
    if message.voice is not None:
        media: Any = message.voice
        kind, mime_type = "voice", clean_mime_type(message.voice.mime_type, VOICE_MIME_TYPE)
    elif message.audio is not None:
        media = message.audio
        kind, mime_type = "audio", clean_mime_type(message.audio.mime_type)
    else:
        return None
    return {
        "file_id": media.file_id,
        "kind": kind,
        "mime_type": mime_type,
        "duration": int(media.duration or 0),
        "size": int(media.file_size or 0),
    }


def too_large(recording: dict[str, Any]) -> bool:
    """Whether Telegram's own size for the file already rules out downloading it."""
    return int(recording.get("size") or 0) > TELEGRAM_DOWNLOAD_LIMIT


def spoken_length(seconds: int) -> str:
    """``0:12``, ``12:05``, ``1:02:03``."""
    minutes, rest = divmod(max(seconds, 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


class _CappedBuffer(io.BytesIO):
    """Refuses to grow past ``limit``: a file larger than Telegram said stops the download
    instead of filling memory."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, chunk: Any) -> int:
        if self.tell() + len(chunk) > self.limit:
            raise RecordingTooLarge
        return super().write(chunk)


async def fetch_recording(bot: Bot, file_id: str) -> bytes:
    """The file's bytes through ``getFile`` and the Bot API's file URL (aiogram's session)."""
    file: File | None
    try:
        file = await bot.get_file(file_id)
    except AiogramError as error:
        # Telegram answers getFile of a file over the limit with "file is too big".
        if "too big" in str(error).lower():
            raise RecordingTooLarge from error
        log.warning("getFile failed: %s", type(error).__name__)
        raise RecordingUnavailable from error
    if file is None or not file.file_path:  # Telegram has no such file for this bot
        raise RecordingUnavailable
    if file.file_size is not None and file.file_size > TELEGRAM_DOWNLOAD_LIMIT:
        raise RecordingTooLarge
    buffer = _CappedBuffer(TELEGRAM_DOWNLOAD_LIMIT)
    try:
        await bot.download_file(file.file_path, destination=buffer, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    except (AiogramError, aiohttp.ClientError, TimeoutError, OSError) as error:
        # Only the type: the file URL in the error's text carries the bot's token.
        log.warning("downloading a recording failed: %s", type(error).__name__)
        raise RecordingUnavailable from error
    content = buffer.getvalue()
    if not content:
        raise RecordingUnavailable
    return content
