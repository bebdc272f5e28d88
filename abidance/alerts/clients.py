"""Thin clients for each channel kind: one `send(message, text)` each, run on the delivery thread's loop.

Each speaks the service's documented API with a configurable base URL (a local test server
stands in for the real one):
- telegram: Bot API `POST {api}/bot<token>/sendMessage` (JSON `chat_id`, `text`), and
  `sendDocument` (multipart: `chat_id`, `caption`, `document`) for a report's attachment;
- discord: webhook `POST {api}/webhooks/<id>/<token>?wait=true` (JSON `content`; multipart
  `payload_json` + `files[0]` with an attachment);
- slack (and Slack-compatible webhooks): `POST {api}/<T…/B…/…>` with JSON `text`; answered `ok`;
- webhook: `POST {api_url}` with the alert as JSON (bearer token optional);
- email: SMTP with STARTTLS (refused without it), login, one mail (attachment as a part);
- apprise: any service apprise knows, from its URL (the `ops` extra).

Errors: `RetryLater(retry_after)` for a 429 (the service's `retry_after`), `ChannelDown` for a
failure that may pass (connection, timeout, 5xx, a refused token), `Refused` for a message the
service will never take (400). No error text ever holds the secret (it is scrubbed).
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
from email.message import EmailMessage

import aiohttp
import orjson

from abidance.alerts.outbox import Message
from abidance.alerts.secrets import Secret
from abidance.extras import require

DEFAULT_API = {"telegram": "https://api.telegram.org", "discord": "https://discord.com/api",
               "slack": "https://hooks.slack.com/services"}
LIMITS = {"telegram": 4096, "discord": 2000, "slack": 40000, "webhook": 100000, "email": 1000000,
          "apprise": 4000}
CAPTION = 1024              # Telegram's caption limit


class SendError(Exception):
    pass


class RetryLater(SendError):
    def __init__(self, retry_after: float, msg: str):
        super().__init__(msg)
        self.retry_after = retry_after


class ChannelDown(SendError):
    pass


class Refused(SendError):
    pass


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(headers, body: dict | None) -> float:
    for source in ((body or {}).get("parameters", {}), body or {}):
        value = source.get("retry_after") if isinstance(source, dict) else None
        if isinstance(value, (int, float)) and value >= 0:
            return float(value)
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


class HttpChannel:
    kind = ""

    def __init__(self, cfg, secret: Secret, session: aiohttp.ClientSession, node: str = ""):
        self.cfg = cfg
        self.secret = secret
        self.session = session
        self.node = node
        self.api = (cfg.api_url or DEFAULT_API.get(cfg.kind, "")).rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=cfg.timeout_s)

    def where(self) -> str:
        """The target without its secret, for logs and alerts."""
        return self.secret.scrub(self.api)

    async def _post(self, url: str, **kw) -> tuple[int, bytes, dict]:
        try:
            async with self.session.post(url, timeout=self.timeout, **kw) as resp:
                return resp.status, await resp.read(), dict(resp.headers)
        except asyncio.TimeoutError:
            raise ChannelDown(f"{self.kind} {self.where()}: no answer within {self.cfg.timeout_s:g}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise ChannelDown(self.secret.scrub(f"{self.kind} {self.where()}: {type(exc).__name__}: {exc}")) \
                from None

    def _judge(self, status: int, body: bytes, headers: dict) -> dict | None:
        """Raise the right SendError for a failed answer; the parsed JSON body otherwise."""
        try:
            data = orjson.loads(body) if body[:1] in (b"{", b"[") else None
        except orjson.JSONDecodeError:
            data = None
        detail = self.secret.scrub(body[:200].decode("utf-8", "replace"))
        if status == 429:
            raise RetryLater(_retry_after(headers, data if isinstance(data, dict) else None),
                             f"{self.kind}: 429 rate limited: {detail}")
        if status >= 500 or status in (401, 403, 404, 408, 410):
            raise ChannelDown(f"{self.kind} {self.where()}: HTTP {status}: {detail}")
        if status >= 400:
            raise Refused(f"{self.kind} {self.where()}: HTTP {status}: {detail}")
        return data if isinstance(data, dict) else None

    async def send(self, msg: Message, text: str) -> None:
        raise NotImplementedError


class TelegramChannel(HttpChannel):
    kind = "telegram"

    def method_url(self, method: str) -> str:
        return f"{self.api}/bot{self.secret.reveal()}/{method}"

    async def call(self, method: str, **kw) -> dict:
        status, body, headers = await self._post(self.method_url(method), **kw)
        data = self._judge(status, body, headers)
        if not data or data.get("ok") is not True:
            detail = self.secret.scrub(body[:200].decode("utf-8", "replace"))
            raise ChannelDown(f"telegram {method}: unexpected answer {detail}")
        return data

    async def send(self, msg: Message, text: str) -> None:
        if msg.attachment is None:
            await self.call("sendMessage", json={"chat_id": self.cfg.chat_id, "text": clip(text, LIMITS["telegram"]),
                                                 "disable_web_page_preview": True})
            return
        filename, content_type, data = msg.attachment
        form = aiohttp.FormData()
        form.add_field("chat_id", self.cfg.chat_id)
        form.add_field("caption", clip(text, CAPTION))
        form.add_field("document", data, filename=filename, content_type=content_type)
        await self.call("sendDocument", data=form)


class DiscordChannel(HttpChannel):
    kind = "discord"

    def url(self) -> str:
        path = self.secret.reveal()
        if "/webhooks/" in path:                 # a whole webhook URL: keep <id>/<token>
            path = path.split("/webhooks/", 1)[1]
        return f"{self.api}/webhooks/{path.strip('/')}?wait=true"

    async def send(self, msg: Message, text: str) -> None:
        payload = {"content": clip(text, LIMITS["discord"]), "allowed_mentions": {"parse": []}}
        if msg.attachment is None:
            status, body, headers = await self._post(self.url(), json=payload)
        else:
            filename, content_type, data = msg.attachment
            form = aiohttp.FormData()
            form.add_field("payload_json", orjson.dumps(payload).decode(), content_type="application/json")
            form.add_field("files[0]", data, filename=filename, content_type=content_type)
            status, body, headers = await self._post(self.url(), data=form)
        self._judge(status, body, headers)


class SlackChannel(HttpChannel):
    kind = "slack"

    def url(self) -> str:
        path = self.secret.reveal()
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.api}/{path.strip('/')}"

    def where(self) -> str:
        return self.secret.scrub(self.url())

    async def send(self, msg: Message, text: str) -> None:
        if msg.attachment is not None:
            text += f"\n({msg.attachment[0]} is attached on the channels that take files)"
        status, body, headers = await self._post(self.url(), json={"text": clip(text, LIMITS["slack"])})
        self._judge(status, body, headers)


class WebhookChannel(HttpChannel):
    kind = "webhook"

    async def send(self, msg: Message, text: str) -> None:
        payload = {"id": msg.id, "node": self.node, "channel": msg.channel, "kind": msg.kind, "level": msg.level,
                   "count": msg.count, "first_ts": msg.first_ts, "last_ts": msg.last_ts, "message": msg.message,
                   "others": dict(msg.others), "text": text, "attachment": None}
        if msg.attachment is not None:
            filename, content_type, data = msg.attachment
            payload["attachment"] = {"filename": filename, "content_type": content_type,
                                     "base64": base64.b64encode(data).decode("ascii")}
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers["Authorization"] = f"Bearer {self.secret.reveal()}"
        status, body, rh = await self._post(self.api, data=orjson.dumps(payload), headers=headers)
        self._judge(status, body, rh)


class EmailChannel:
    """SMTP with STARTTLS, in a worker thread (smtplib blocks)."""

    kind = "email"

    def __init__(self, cfg, secret: Secret, session=None, node: str = ""):
        self.cfg = cfg
        self.secret = secret
        self.node = node

    def where(self) -> str:
        return f"{self.cfg.smtp_host}:{self.cfg.smtp_port}"

    def tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.cfg.ca_file:
            ctx.load_verify_locations(self.cfg.ca_file)
        return ctx

    async def send(self, msg: Message, text: str) -> None:
        await asyncio.to_thread(self._send, msg, text)

    def build(self, msg: Message, text: str) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = f"{self.node + ': ' if self.node else ''}{msg.title}"
        mail["From"] = self.cfg.mail_from
        mail["To"] = ", ".join(self.cfg.mail_to)
        mail["Message-ID"] = f"<{msg.id}.{msg.last_ts}@abidance>"
        mail.set_content(text)
        if msg.attachment is not None:
            filename, content_type, data = msg.attachment
            main, _, sub = content_type.partition("/")
            mail.add_attachment(data, maintype=main, subtype=sub or "octet-stream", filename=filename)
        return mail

    def _send(self, msg: Message, text: str) -> None:
        cfg = self.cfg
        try:
            with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_s) as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise ChannelDown(f"email {self.where()}: the server offers no STARTTLS; refusing to send "
                                      "the login and the alert in clear text")
                smtp.starttls(context=self.tls_context())
                smtp.ehlo()
                if cfg.smtp_user:
                    smtp.login(cfg.smtp_user, self.secret.reveal())
                smtp.send_message(self.build(msg, text))
        except smtplib.SMTPResponseException as exc:
            detail = f"email {self.where()}: SMTP {exc.smtp_code}"
            if exc.smtp_code >= 500 and exc.smtp_code not in (530, 535, 554):
                raise Refused(detail) from None
            raise ChannelDown(detail) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise ChannelDown(self.secret.scrub(f"email {self.where()}: {type(exc).__name__}: {exc}")) from None


class AppriseChannel:
    """Any service apprise supports (`pip install 'abidance[ops]'`); the apprise URL is the secret."""

    kind = "apprise"

    def __init__(self, cfg, secret: Secret, session=None, node: str = ""):
        require(f"alerts channel {cfg.name!r} (apprise)", "ops")
        # Lazy: apprise comes with the ops extra (checked just above); only this channel kind uses it.
        import apprise

        self.cfg = cfg
        self.secret = secret
        self.apprise = apprise.Apprise()
        if not self.apprise.add(secret.reveal()):
            raise ValueError(f"alert channel {cfg.name!r}: apprise does not understand its URL")

    def where(self) -> str:
        return "apprise"

    async def send(self, msg: Message, text: str) -> None:
        ok = await asyncio.to_thread(self.apprise.notify, body=clip(text, LIMITS["apprise"]), title=msg.title)
        if not ok:
            raise ChannelDown("apprise: the service did not take the notification")


CLIENTS = {"telegram": TelegramChannel, "discord": DiscordChannel, "slack": SlackChannel, "webhook": WebhookChannel,
           "email": EmailChannel, "apprise": AppriseChannel}
NEEDS_SECRET = {"telegram": True, "discord": True, "slack": True, "webhook": False, "email": False, "apprise": True}
