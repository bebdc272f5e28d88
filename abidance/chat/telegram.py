"""Chat control over Telegram: long polling of getUpdates, commands answered in allow-listed chats only.

    /status  /balance  /pnl [strategy]  /positions  /kill  /reduce  /resume  /help

Replies come from the node (`view`: trading state, balances, positions) and the store (PnL per
strategy from the fills, read in a worker thread). /kill asks for a confirmation ("/kill confirm"
within chat.confirm_s); /kill, /reduce and /resume act through the operator command path the
dashboard uses: a row in the store's `commands` table that the node's CommandPoller acts on
(abidance/store/commands.py), authored "telegram:<chat id>". A message from any other chat is
logged (chat id and user, never its text) and ignored: no answer at all.

Runs as a task on the node's loop; all its I/O is asynchronous (aiohttp) or in a thread, and
a failing Bot API only delays the next poll (backoff), never the node.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from abidance.alerts.clients import TelegramChannel, clip
from abidance.core.component import Component

log = logging.getLogger("abidance.chat")

HELP = ("Commands: /status, /balance, /pnl [strategy], /positions, /kill (asks to confirm), /reduce, /resume, /help")
ACTIONS = {"kill", "reduce", "resume"}


class ChatControl(Component):
    def __init__(self, bus, clock, settings, channel_cfg, secret, view, commands):
        super().__init__("ChatControl", bus, clock)
        self.settings = settings
        self.channel_cfg = channel_cfg
        self.secret = secret
        self.view = view                # status(), balances(), positions(), pnl(strategy) -> str
        self.commands = commands        # async (command, reason, author) -> str (what was done)
        self.allowed = {str(c) for c in settings.allowed_chat_ids}
        self.offset = 0
        self.answered = 0
        self.ignored = 0
        self.errors = 0
        self._pending_kill: dict[str, float] = {}       # chat id -> monotonic deadline
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self.api: TelegramChannel | None = None

    def on_start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="chat-control")

    def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.poll_timeout_s + 15)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.api = TelegramChannel(self.channel_cfg, self.secret, session)
            self.api.timeout = timeout
            delay = 1.0
            while True:
                try:
                    data = await self.api.call("getUpdates", json={"offset": self.offset,
                                                                  "timeout": self.settings.poll_timeout_s,
                                                                  "allowed_updates": ["message"]})
                    delay = 1.0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the Bot API may be down: back off and poll again
                    self.errors += 1
                    log.warning("chat: getUpdates failed (%s); retrying in %.0fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60.0)
                    continue
                for update in data.get("result", []):
                    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                        continue
                    self.offset = max(self.offset, update["update_id"] + 1)
                    try:
                        await self.handle_update(update)
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # noqa: BLE001 - one bad update must not stop the others
                        self.errors += 1
                        log.exception("chat: handling update %s failed", update.get("update_id"))

    async def handle_update(self, update: dict) -> None:
        msg = update.get("message") or {}
        chat = msg.get("chat") or {}
        chat_id = str(chat.get("id", ""))
        text = msg.get("text")
        if not chat_id or not isinstance(text, str):
            return
        if chat_id not in self.allowed:
            self.ignored += 1
            user = (msg.get("from") or {}).get("username") or (msg.get("from") or {}).get("id", "?")
            log.warning("chat: message from chat %s (user %s) ignored: not in chat.allowed_chat_ids", chat_id, user)
            return
        reply = await self.answer(chat_id, text.strip())
        if reply:
            self.answered += 1
            await self.api.call("sendMessage", json={"chat_id": chat_id, "text": clip(reply, 4096)})

    async def answer(self, chat_id: str, text: str) -> str:
        if not text.startswith("/"):
            return HELP
        parts = text.split()
        command = parts[0][1:].split("@", 1)[0].lower()      # "/status@MyBot" in groups
        args = parts[1:]
        view = self.view
        if command in ("start", "help"):
            return HELP
        if command == "status":
            return view.status()
        if command == "balance":
            return view.balances()
        if command == "positions":
            return view.positions()
        if command == "pnl":
            return await view.pnl(args[0] if args else None)
        if command == "kill":
            if args and args[0].lower() == "confirm":
                deadline = self._pending_kill.pop(chat_id, 0.0)
                if time.monotonic() > deadline:
                    return "No /kill is waiting for confirmation (or it expired): send /kill first."
                return await self.commands("kill", "kill from Telegram", f"telegram:{chat_id}")
            self._pending_kill[chat_id] = time.monotonic() + self.settings.confirm_s
            return (f"Kill switch: this halts trading and cancels every open order. Send /kill confirm within "
                    f"{self.settings.confirm_s:g}s to go ahead.")
        if command in ("reduce", "resume"):
            return await self.commands(command, f"{command} from Telegram", f"telegram:{chat_id}")
        return f"Unknown command /{command}. {HELP}"
