"""Signed-request checks the way Binance does them: API key, signature, timestamp and recvWindow.

Two payloads are signed, one per API:
- REST: the exact query string followed by the exact form body, as sent (percent-encoded,
  in the order sent), with the `signature` parameter itself removed;
- WebSocket API: every request parameter except `signature`, sorted by name and joined as
  `name=value` with `&`, without percent-encoding.

An HMAC key signs with hex HMAC-SHA256 (case-insensitive), an Ed25519 key with base64
(case-sensitive): the account knows which (accounts.Account.verify_signature).

The timestamp is checked against the server's wall clock (plus any injected skew), not the
market clock: a replay may run accelerated or in the past, but signing must keep working
for clients that sync their clock with /api/v3/time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Callable
from urllib.parse import unquote

from abidance.exchange.sim import errors

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
_API_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_RECV_WINDOW_RE = re.compile(r"^[0-9]{1,5}(\.[0-9]{1,3})?$")   # ms, up to 3 decimals (2025-08-28)


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of payload with secret (what a client sends as `signature`)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(query: str, body: str) -> tuple[str, str]:
    """(signed payload, signature) of a REST request: the signature is the last `signature=` parameter.

    Binance signs `query + body` with the signature parameter itself removed; clients
    append it last, so strip it from whichever part carries it.
    """
    def strip(part: str) -> tuple[str, str | None]:
        pieces = part.split("&") if part else []
        kept, sig = [], None
        for piece in pieces:
            if piece.startswith("signature="):
                sig = piece[len("signature="):]
            else:
                kept.append(piece)
        return "&".join(kept), sig

    q, qsig = strip(query)
    b, bsig = strip(body)
    signature = bsig if bsig is not None else qsig
    if signature is None or signature == "":
        raise errors.mandatory_param("signature")
    # A base64 (Ed25519) signature arrives percent-encoded; a hex one is unchanged by this.
    return q + b, unquote(signature)


def ws_payload(params: dict[str, str]) -> str:
    """The WebSocket API's signed payload: every parameter but `signature`, sorted by name."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")


def check_api_key(api_key: str | None, lookup: Callable[[str], object | None]):
    if not api_key:
        raise errors.BinanceError(-2014, "API-key format invalid.", 401)
    if not _API_KEY_RE.match(api_key):
        raise errors.bad_api_key_format()
    account = lookup(api_key)
    if account is None:
        raise errors.rejected_api_key()
    return account


def parse_timestamp(params: dict[str, str]) -> tuple[int, float]:
    """(timestamp ms, recvWindow ms) of a signed request, or the error Binance gives for them."""
    if "timestamp" not in params:
        raise errors.mandatory_param("timestamp")
    try:
        timestamp = int(params["timestamp"])
    except ValueError:
        raise errors.illegal_chars("timestamp") from None
    if timestamp > 10 ** 14:
        timestamp //= 1000          # microseconds are accepted too (2024-12-17)
    recv_window: float = DEFAULT_RECV_WINDOW_MS
    if "recvWindow" in params:
        raw = params["recvWindow"]
        if not _RECV_WINDOW_RE.match(raw):
            raise errors.illegal_chars("recvWindow")
        recv_window = float(raw)    # at most 3 decimals of ms (2025-08-28): exact enough against whole ms
        if recv_window <= 0 or recv_window > MAX_RECV_WINDOW_MS:
            raise errors.BinanceError(-1131, "recvWindow must be less than 60000", 400)
    return timestamp, recv_window


def check_window(timestamp: int, recv_window: float, server_ms: int) -> None:
    if timestamp >= server_ms + 1000:
        raise errors.bad_timestamp("Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - timestamp > recv_window:
        raise errors.bad_timestamp()


def check_signature(account, payload: str, signature: str | None) -> None:
    if not signature:
        raise errors.mandatory_param("signature")
    if not account.verify_signature(payload, signature):
        raise errors.bad_signature()


def check_signed(params: dict[str, str], query: str, body: str, account, server_ms: int) -> None:
    """A signed REST request: the signature over query + body, then the timestamp."""
    payload, signature = split_signature(query, body)
    timestamp, recv_window = parse_timestamp(params)
    check_signature(account, payload, signature)
    check_window(timestamp, recv_window, server_ms)
