"""Local stand-ins for the alert services, checking each real API's request shape as documented.

- FakeTelegram: Bot API `POST /bot<token>/sendMessage` (JSON chat_id + text, 1-4096 chars),
  `sendDocument` (multipart chat_id, document, caption <= 1024), `getUpdates` (long polling,
  offset/timeout) for chat control; answers `{"ok": true, "result": ...}`, or `{"ok": false,
  "error_code", "description"}` (401 bad token, 400 chat not found / empty text, 429 with
  `parameters.retry_after`).
- FakeDiscord: webhook `POST /webhooks/<id>/<token>[?wait=true]` (JSON with content <= 2000 chars, or
  multipart payload_json + files[n]); 204 or, with wait=true, 200 and the message; 401 Invalid Webhook
  Token (50027), 400 Invalid Form Body (50035), 429 `{"message", "retry_after", "global"}` + Retry-After.
- FakeSlack: incoming webhook `POST /services/T…/B…/…` (JSON `text`); answers 200 `ok`, 400
  `invalid_payload` / `no_text`, 403 `invalid_token`, 429 `rate_limited` with a Retry-After header.
- FakeWebhook: any JSON POST, recorded.
- SmtpServer: aiosmtpd with STARTTLS required before AUTH (a self-signed certificate made here).

Each server runs on its own loop thread; `limit_per_s` makes it answer 429 beyond that rate and
`down = True` answers 503, so clients' retries and backoff are exercised.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from email import message_from_bytes, policy

import orjson
from aiohttp import web

from tests.integration.conftest import LoopThread

TOKEN = "123456:ABC-test-token"
CHAT_ID = "4242"
DISCORD_HOOK = ("987654321", "discord-webhook-token")
SLACK_PATH = "T0001/B0001/slacksecret"


class _Server(LoopThread):
    retry_after = 1

    def __init__(self, name: str):
        super().__init__(name)
        self.received: list[dict] = []          # accepted requests (what the service would show)
        self.requests = 0
        self.refusals: list[tuple[int, str]] = []
        self.limit_per_s = 0.0                  # 0 = no rate limit
        self.down = False
        self._stamps: list[float] = []
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)

        async def start():
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]

        self.port = self.call(start())
        self.url = f"http://127.0.0.1:{self.port}"

    def routes(self, app):
        raise NotImplementedError

    def close(self) -> None:
        self.call(self._runner.cleanup())
        self.shutdown()

    def limited(self) -> bool:
        """True when this request is over the configured rate (and should be answered 429)."""
        self.requests += 1
        if not self.limit_per_s:
            return False
        now = time.monotonic()
        self._stamps = [t for t in self._stamps if now - t < 1.0]
        if len(self._stamps) >= self.limit_per_s:
            return True
        self._stamps.append(now)
        return False

    def refuse(self, status: int, why: str):
        self.refusals.append((status, why))

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "messages"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self.received):
                return self.received
            time.sleep(0.02)
        raise AssertionError(f"{type(self).__name__}: timed out waiting for {what}; got {self.received!r}"[:2000])


class FakeTelegram(_Server):
    def __init__(self):
        self.updates: list[dict] = []
        self._update_id = 1000
        self._message_id = 0
        self._new_update = None
        super().__init__("fake-telegram")

    def routes(self, app):
        app.router.add_post("/bot{token}/{method}", self.method)
        app.router.add_get("/bot{token}/{method}", self.method)

    @staticmethod
    def fail(status: int, description: str, **extra):
        return web.json_response({"ok": False, "error_code": status, "description": description, **extra},
                                 status=status)

    async def method(self, request: web.Request):
        if request.match_info["token"] != TOKEN:
            self.refuse(401, "token")
            return self.fail(401, "Unauthorized")
        if self.down:
            return self.fail(502, "Bad Gateway")
        method = request.match_info["method"]
        if method == "getUpdates":
            return await self.get_updates(request)
        if self.limited():
            self.refuse(429, "rate")
            return self.fail(429, f"Too Many Requests: retry after {self.retry_after}",
                             parameters={"retry_after": self.retry_after})
        if method == "sendMessage":
            if request.content_type != "application/json":
                self.refuse(400, "content type")
                return self.fail(400, "Bad Request: message text is empty")
            body = await request.json()
            text = body.get("text")
            if str(body.get("chat_id")) != CHAT_ID:
                self.refuse(400, "chat")
                return self.fail(400, "Bad Request: chat not found")
            if not isinstance(text, str) or not text.strip():
                self.refuse(400, "empty")
                return self.fail(400, "Bad Request: message text is empty")
            if len(text) > 4096:
                self.refuse(400, "long")
                return self.fail(400, "Bad Request: message is too long")
            return self.ok({"method": method, "text": text, "chat_id": str(body["chat_id"]), "at": time.time()})
        if method == "sendDocument":
            if request.content_type != "multipart/form-data":
                self.refuse(400, "content type")
                return self.fail(400, "Bad Request: there is no document in the request")
            form = await request.post()
            doc = form.get("document")
            caption = form.get("caption", "")
            if str(form.get("chat_id")) != CHAT_ID:
                return self.fail(400, "Bad Request: chat not found")
            if doc is None or not hasattr(doc, "file"):
                return self.fail(400, "Bad Request: there is no document in the request")
            if len(caption) > 1024:
                return self.fail(400, "Bad Request: message caption is too long")
            return self.ok({"method": method, "text": caption, "chat_id": CHAT_ID, "filename": doc.filename,
                            "content_type": doc.content_type, "data": doc.file.read(), "at": time.time()})
        return self.fail(404, "Not Found")

    def ok(self, record: dict):
        self.received.append(record)
        self._message_id += 1
        return web.json_response({"ok": True, "result": {
            "message_id": self._message_id, "date": int(time.time()),
            "chat": {"id": int(CHAT_ID), "type": "private"}, "text": record["text"]}})

    # ---- chat control: updates ------------------------------------------------------------

    def say(self, chat_id: int | str, text: str, username: str = "owner") -> None:
        """A user writes to the bot: the next getUpdates returns it."""
        def add():
            self._update_id += 1
            self.updates.append({"update_id": self._update_id, "message": {
                "message_id": self._update_id, "date": int(time.time()), "text": text,
                "chat": {"id": int(chat_id), "type": "private"},
                "from": {"id": int(chat_id), "is_bot": False, "first_name": username}}})
            if self._new_update is not None:
                self._new_update.set()
        self.loop.call_soon_threadsafe(add)

    async def get_updates(self, request: web.Request):
        params = dict(request.query)
        if request.can_read_body:
            params.update(await request.json())
        try:
            offset, timeout = int(params.get("offset", 0)), float(params.get("timeout", 0))
        except (TypeError, ValueError):
            return self.fail(400, "Bad Request: wrong parameter")
        self.updates = [u for u in self.updates if u["update_id"] >= offset]     # confirmed ones are gone
        if not self.updates and timeout > 0:
            self._new_update = asyncio.Event()
            try:
                await asyncio.wait_for(self._new_update.wait(), min(timeout, 2.0))
            except asyncio.TimeoutError:
                pass
        return web.json_response({"ok": True, "result": self.updates[:100]})

    def replies_to(self, chat_id) -> list[str]:
        return [r["text"] for r in self.received if r["chat_id"] == str(chat_id)]


class FakeDiscord(_Server):
    def __init__(self):
        super().__init__("fake-discord")

    def routes(self, app):
        app.router.add_post("/webhooks/{id}/{token}", self.execute)

    async def execute(self, request: web.Request):
        if (request.match_info["id"], request.match_info["token"]) != DISCORD_HOOK:
            self.refuse(401, "token")
            return web.json_response({"message": "Invalid Webhook Token", "code": 50027}, status=401)
        if self.down:
            return web.Response(status=503, text="upstream connect error")
        if self.limited():
            self.refuse(429, "rate")
            return web.json_response({"message": "You are being rate limited.", "retry_after": self.retry_after,
                                      "global": False}, status=429,
                                     headers={"Retry-After": str(self.retry_after), "X-RateLimit-Limit": "5",
                                              "X-RateLimit-Remaining": "0"})
        record = {"at": time.time()}
        if request.content_type == "application/json":
            body = await request.json()
        elif request.content_type == "multipart/form-data":
            form = await request.post()
            body = orjson.loads(form.get("payload_json", "{}"))
            f = form.get("files[0]")
            if f is None:
                return web.json_response({"message": "Cannot send an empty message", "code": 50006}, status=400)
            record.update(filename=f.filename, data=f.file.read())
        else:
            return web.json_response({"message": "Invalid Form Body", "code": 50035}, status=400)
        content = body.get("content")
        if not content and "filename" not in record:
            self.refuse(400, "empty")
            return web.json_response({"message": "Cannot send an empty message", "code": 50006}, status=400)
        if content is not None and (not isinstance(content, str) or len(content) > 2000):
            self.refuse(400, "long")
            return web.json_response({"message": "Invalid Form Body", "code": 50035, "errors": {"content": {
                "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}},
                status=400)
        record["text"] = content or ""
        self.received.append(record)
        if request.query.get("wait") == "true":
            return web.json_response({"id": str(len(self.received)), "type": 0, "content": content,
                                      "channel_id": "1", "webhook_id": DISCORD_HOOK[0]})
        return web.Response(status=204)


class FakeSlack(_Server):
    def __init__(self):
        super().__init__("fake-slack")

    def routes(self, app):
        app.router.add_post("/services/{team}/{bot}/{secret}", self.hook)

    async def hook(self, request: web.Request):
        path = "/".join(request.match_info[k] for k in ("team", "bot", "secret"))
        if path != SLACK_PATH:
            self.refuse(403, "token")
            return web.Response(status=403, text="invalid_token")
        if self.down:
            return web.Response(status=500, text="internal_error")
        if self.limited():
            self.refuse(429, "rate")
            return web.Response(status=429, text="rate_limited", headers={"Retry-After": str(self.retry_after)})
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            self.refuse(400, "payload")
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            self.refuse(400, "no_text")
            return web.Response(status=400, text="no_text")
        self.received.append({"text": body["text"], "at": time.time()})
        return web.Response(status=200, text="ok", content_type="text/html")


class FakeWebhook(_Server):
    def __init__(self, token: str = ""):
        self.token = token
        super().__init__("fake-webhook")

    def routes(self, app):
        app.router.add_post("/{tail:.*}", self.hook)

    async def hook(self, request: web.Request):
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            self.refuse(401, "token")
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.down:
            return web.Response(status=503)
        if self.limited():
            self.refuse(429, "rate")
            return web.Response(status=429, headers={"Retry-After": str(self.retry_after)})
        body = await request.json()
        body["at"] = time.time()
        body["path"] = request.path
        self.received.append(body)
        return web.json_response({"ok": True})


# ---- SMTP --------------------------------------------------------------------------------------

SMTP_USER, SMTP_PASSWORD = "alerts@example.test", "smtp-pass-word"


def self_signed(tmp_path) -> tuple[str, str]:
    """A certificate for 127.0.0.1/localhost and its key, as PEM files; the cert doubles as the CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class SmtpServer:
    """aiosmtpd on loopback: STARTTLS required, then AUTH LOGIN/PLAIN with one user; mails recorded."""

    def __init__(self, tmp_path):
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.cert, key = self_signed(tmp_path)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, key)
        self.mails: list = []
        self.auth_failures = 0
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.mails.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                     "tls": session.ssl is not None, "user": session.auth_data,
                                     "message": message_from_bytes(envelope.original_content, policy=policy.default),
                                     "at": time.time()})
                return "250 OK"

        def authenticate(smtp, session, envelope, mechanism, auth_data):
            ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
            if not ok:
                server.auth_failures += 1
            return AuthResult(success=ok, auth_data=auth_data.login if ok else None)

        import socket

        with socket.socket() as probe:              # aiosmtpd's Controller needs a real port to check itself
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, tls_context=ctx,
                                     require_starttls=True, authenticator=authenticate, auth_require_tls=True)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()

    def wait_for(self, n: int, timeout: float = 10.0) -> list:
        end = time.monotonic() + timeout
        while time.monotonic() < end and len(self.mails) < n:
            time.sleep(0.02)
        assert len(self.mails) >= n, f"{len(self.mails)} mails of {n}"
        return self.mails


def channel_tables(telegram=None, discord=None, slack=None, webhook=None, smtp=None, **over) -> str:
    """[[alerts.channels]] tables for the given fake servers (each rate-limit/quiet key from `over`)."""
    extra = "".join(f"{k} = {orjson.dumps(v).decode()}\n" for k, v in over.items())
    out = []
    if telegram is not None:
        out.append(f'[[alerts.channels]]\nname = "tg"\nkind = "telegram"\napi_url = "{telegram.url}"\n'
                   f'chat_id = "{CHAT_ID}"\n{extra}')
    if discord is not None:
        out.append(f'[[alerts.channels]]\nname = "dc"\nkind = "discord"\napi_url = "{discord.url}"\n{extra}')
    if slack is not None:
        out.append(f'[[alerts.channels]]\nname = "sl"\nkind = "slack"\napi_url = "{slack.url}/services"\n{extra}')
    if webhook is not None:
        out.append(f'[[alerts.channels]]\nname = "wh"\nkind = "webhook"\napi_url = "{webhook.url}/alerts"\n{extra}')
    if smtp is not None:
        out.append(f'[[alerts.channels]]\nname = "mail"\nkind = "email"\nsmtp_host = "127.0.0.1"\n'
                   f'smtp_port = {smtp.port}\nsmtp_user = "{SMTP_USER}"\nmail_from = "bot@example.test"\n'
                   f'mail_to = ["owner@example.test"]\nca_file = "{smtp.cert}"\n{extra}')
    return "\n".join(out)


def channel_env(webhook_token: str = "") -> dict[str, str]:
    """The channels' secrets as the environment gives them."""
    env = {"ABIDANCE_ALERTS_TG_SECRET": TOKEN, "ABIDANCE_ALERTS_DC_SECRET": "/".join(DISCORD_HOOK),
           "ABIDANCE_ALERTS_SL_SECRET": SLACK_PATH, "ABIDANCE_ALERTS_MAIL_SECRET": SMTP_PASSWORD}
    if webhook_token:
        env["ABIDANCE_ALERTS_WH_SECRET"] = webhook_token
    return env




def alert_settings(body: str, env: dict | None = None):
    """The [alerts] section of a config holding `body` (the [alerts] keys and [[alerts.channels]] tables)."""
    from abidance.config import parse_config

    return parse_config(f"config_version = 1\n{body}\n", ".", env=env or {}).alerts


class RunningAlerts(LoopThread):
    """An AlertService on its own node loop with a bus; every alert on the bus is recorded."""

    def __init__(self, settings, env: dict | None = None, node: str = "test-node"):
        super().__init__("alerts-node")
        from abidance.alerts.service import AlertService
        from abidance.core import topics
        from abidance.core.bus import MessageBus
        from abidance.core.clock import LiveClock

        self.topics = topics
        self.bus = MessageBus()
        self.seen: list = []
        self.bus.subscribe(topics.ALERTS, self.seen.append)
        self.service = AlertService(self.bus, LiveClock(), settings, node, env=env or channel_env())
        self.run(self.service.start)

    def publish(self, *alerts) -> None:
        def go():
            for a in alerts:
                self.bus.publish(self.topics.ALERTS, a)
        self.run(go)

    def channel_stats(self, channel: str, settled, timeout: float = 10.0) -> dict:
        """The channel's stats once `settled(stats)` holds: a fake server records a message before the
        service has read its response and counted it."""
        end = time.monotonic() + timeout
        while True:
            stats = self.service.stats()["channels"][channel]
            if settled(stats) or time.monotonic() > end:
                return stats
            time.sleep(0.02)

    def stop(self) -> None:
        try:
            self.run(self.service.stop, 30)
        finally:
            self.shutdown()
