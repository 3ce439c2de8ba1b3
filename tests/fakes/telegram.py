"""A fake Telegram Bot API server for tests: aiohttp on a free loopback port.

It speaks the real wire protocol — ``POST /bot<token>/<method>`` with a JSON,
url-encoded or multipart/form-data body, answered ``{"ok": true, "result": …}`` — so
aiogram reaches it through its real HTTP session
(``AiohttpSession(api=TelegramAPIServer.from_base(fake.url))``). Every call is recorded.

On demand it answers the way Telegram refuses: ``rate_limit(method, retry_after)`` makes
the next call(s) of a method 429 with ``parameters.retry_after``; ``block(chat_id)`` makes
every send to that chat 403 "bot was blocked by the user". ``enforce_limits()`` makes it
hold the bot to Telegram's flood limits, as Telegram does: a message to a chat less than a
second after the previous one, or over 30 messages in the last second, is answered 429
(``limit_refusals`` counts them). ``getUpdates`` serves the updates queued with
``queue_update`` (long polling waits for one, briefly). Files put with ``add_file`` are
served by ``getFile`` and ``GET /file/bot<token>/<file_path>``; ``voice`` builds an
update carrying a voice note.

Updates are built with :meth:`FakeTelegram.message` and :meth:`FakeTelegram.button_press`
in the shape Telegram posts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support import free_port

# Fields Telegram takes as JSON-serialised objects inside a form.
JSON_FIELDS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "results",
    "allowed_updates",
    "commands",
    "scope",
    "link_preview_options",
    "reply_parameters",
    "media",
    "button",
}
INTEGER_FIELDS = {"chat_id", "message_id", "user_id", "from_chat_id", "offset", "limit", "timeout", "cache_time"}
# Methods that deliver something to a chat: a blocked chat refuses them.
SENDING = {"sendmessage", "editmessagetext", "sendchataction", "sendphoto", "senddocument", "sendvoice"}
_INTEGER = re.compile(r"^-?[0-9]+$")


def _file(file_id: str) -> dict[str, Any]:
    return {"file_id": file_id, "file_unique_id": file_id, "file_size": 1}


# What a sent file looks like in the Message Telegram returns.
_ATTACHMENTS: dict[str, tuple[str, Any]] = {
    "senddocument": ("document", _file),
    "sendphoto": ("photo", lambda file_id: [{**_file(file_id), "width": 1, "height": 1}]),
    "sendvoice": ("voice", lambda file_id: {**_file(file_id), "duration": 1}),
}


@dataclass(frozen=True)
class Call:
    """One request the bot made: the method as sent, its parameters, and our answer's status."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    content_type: str
    status: int


@dataclass
class FakeTelegram:
    token: str
    username: str = "relay_test_bot"
    calls: list[Call] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    _limits: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    _closing: bool = False
    _files: dict[str, bytes] = field(default_factory=dict)
    _flood: FloodLimits | None = None
    url: str = ""

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":")[0])

    @property
    def me(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Relay CRM",
            "username": self.username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }

    # --- running -------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._closing = True
        async with self._arrived:
            self._arrived.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what the test arranges ----------------------------------------------------------

    def rate_limit(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` are answered 429 with ``retry_after``."""
        self._limits[method.lower()].extend([retry_after] * times)

    def enforce_limits(self, *, per_second: int = 30, per_chat_seconds: float = 1.0) -> None:
        """From now on, refuse (429) what Telegram's flood control would refuse."""
        self._flood = FloodLimits(per_second, per_chat_seconds)

    @property
    def limit_refusals(self) -> int:
        return self._flood.refusals if self._flood is not None else 0

    def add_file(self, file_id: str, content: bytes) -> None:
        """A file users sent: ``getFile`` knows it and its content can be downloaded."""
        self._files[file_id] = content

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends to ``chat_id`` are answered 403."""
        self.blocked.add(chat_id)

    async def queue_update(self, update: dict[str, Any]) -> None:
        """Hand ``update`` to the bot's next getUpdates."""
        self._updates.append(update)
        async with self._arrived:
            self._arrived.notify_all()

    def next_update_id(self) -> int:
        return next(self._update_ids)

    # --- what the test reads -------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def texts_to(self, chat_id: int) -> list[str]:
        """The texts sent (or edited in) to ``chat_id``, in order."""
        return [
            str(call.params.get("text"))
            for call in self.calls
            if call.method.lower() in ("sendmessage", "editmessagetext") and call.params.get("chat_id") == chat_id
        ]

    def forget_calls(self) -> None:
        self.calls.clear()

    # --- updates in Telegram's shape -----------------------------------------------------

    def user(self, user_id: int, *, first_name: str = "Ivan", language_code: str = "ru") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}

    def message(
        self, user_id: int, text: str, *, language_code: str = "ru", chat_type: str = "private"
    ) -> dict[str, Any]:
        """An update with a text message from ``user_id`` in their private chat with the bot."""
        sender = self.user(user_id, language_code=language_code)
        chat_id = user_id if chat_type == "private" else -user_id
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type, "first_name": sender["first_name"]},
            "from": sender,
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return {"update_id": self.next_update_id(), "message": message}

    def voice(self, user_id: int, file_id: str, *, duration: int = 3, language_code: str = "ru") -> dict[str, Any]:
        """An update with a voice note (its file put with :meth:`add_file`)."""
        update = self.message(user_id, "", language_code=language_code)
        message = update["message"]
        del message["text"]
        size = len(self._files.get(file_id, b""))
        message["voice"] = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": size,
        }
        return update

    def membership(self, user_id: int, status: str) -> dict[str, Any]:
        """The user stopped (``kicked``) or restarted (``member``) the bot in their chat."""
        sender = self.user(user_id)
        old = "member" if status == "kicked" else "kicked"

        def member(state: str) -> dict[str, Any]:
            return {"status": state, "user": self.me, **({"until_date": 0} if state == "kicked" else {})}

        return {
            "update_id": self.next_update_id(),
            "my_chat_member": {
                "chat": {"id": user_id, "type": "private", "first_name": sender["first_name"]},
                "from": sender,
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(status),
            },
        }

    def button_press(
        self, user_id: int, data: str, *, message_id: int = 1, language_code: str = "ru"
    ) -> dict[str, Any]:
        """An update for a press of an inline button carrying ``data`` under a bot's message."""
        return {
            "update_id": self.next_update_id(),
            "callback_query": {
                "id": str(next(self._message_ids)),
                "from": self.user(user_id, language_code=language_code),
                "chat_instance": f"ci{user_id}",
                "data": data,
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": user_id, "type": "private", "first_name": "Ivan"},
                    "from": self.me,
                    "text": "…",
                },
            },
        }

    # --- the server ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, files = await self._params(request)
        status, body = await self._answer(request.match_info["token"], method.lower(), params)
        self.calls.append(Call(method, params, files, request.content_type, status))
        return web.json_response(body, status=status)

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        if request.content_type == "application/json":
            return dict(await request.json()), {}
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.can_read_body:
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[name] = value.file.read()
                    continue
                value = value if isinstance(value, str) else bytes(value).decode()
                if name in JSON_FIELDS:
                    params[name] = json.loads(value)
                elif name in INTEGER_FIELDS and _INTEGER.fullmatch(value):
                    params[name] = int(value)
                else:
                    params[name] = value
        return params, files

    async def _answer(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if self._limits[method]:
            retry_after = self._limits[method].popleft()
            return 429, {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            }
        if self._flood is not None and method in SENDING:
            retry_after = self._flood.refuse(params.get("chat_id"))
            if retry_after:
                return 429, {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                }
        if method in SENDING and params.get("chat_id") in self.blocked:
            return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        return 200, {"ok": True, "result": await self._result(method, params)}

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getme":
            return self.me
        if method == "getupdates":
            return await self._get_updates(params)
        if method.startswith("send") and method != "sendchataction":
            message = self._message_from_bot(params, next(self._message_ids))
            attachment = _ATTACHMENTS.get(method)
            if attachment is not None:
                key, shape = attachment
                message[key] = shape(f"file-{message['message_id']}")
            return message
        if method == "editmessagetext":
            if "inline_message_id" in params:
                return True
            return self._message_from_bot(params, int(params.get("message_id", 0)))
        if method == "getfile":
            file_id = str(params.get("file_id"))
            if file_id not in self._files:
                return None
            content = self._files[file_id]
            return {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_size": len(content),
                "file_path": f"voice/{file_id}.oga",
            }
        if method == "getwebhookinfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        # setWebhook, deleteWebhook, answerCallbackQuery, answerInlineQuery, sendChatAction,
        # setMyCommands, …: Telegram answers true.
        return True

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1].removesuffix(".oga")
        if file_id not in self._files:
            return web.Response(status=404)
        return web.Response(body=self._files[file_id], content_type="audio/ogg")

    def _message_from_bot(self, params: dict[str, Any], message_id: int) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if isinstance(chat_id, int) and chat_id > 0 else "group"},
            "from": self.me,
            "text": params.get("text", ""),
        }
        if isinstance(params.get("reply_markup"), dict) and "inline_keyboard" in params["reply_markup"]:
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0))
        # An offset confirms every update below it: Telegram forgets them.
        self._updates = [update for update in self._updates if update["update_id"] >= offset]
        wait = min(float(params.get("timeout", 0)), 1.0)
        if not self._updates and not self._closing and wait > 0:
            async with self._arrived:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), timeout=wait)
        limit = int(params.get("limit", 100))
        return self._updates[:limit]


@dataclass
class FloodLimits:
    """Telegram's flood control for one bot: ``per_second`` messages over all chats in any
    second, one message per ``per_chat_seconds`` to a chat."""

    per_second: int
    per_chat_seconds: float
    refusals: int = 0
    _recent: deque[float] = field(default_factory=deque)
    _last_to_chat: dict[Any, float] = field(default_factory=dict)

    def refuse(self, chat_id: Any) -> int:
        """0 to let the message through (and count it), else the seconds to wait."""
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        last = self._last_to_chat.get(chat_id)
        if len(self._recent) >= self.per_second or (last is not None and now - last < self.per_chat_seconds):
            self.refusals += 1
            return 1
        self._recent.append(now)
        self._last_to_chat[chat_id] = now
        return 0
