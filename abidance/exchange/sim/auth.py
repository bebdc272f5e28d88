"""Signed-request checks the way Binance does them: API key, HMAC-SHA256, recvWindow.

The signature covers the exact query string followed by the exact form body. The
timestamp is checked against the server's wall clock (plus any injected skew), not the
market clock: a replay may run accelerated or in the past, but signing must keep working
for clients that sync their clock with /api/v3/time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Callable

from abidance.exchange.sim import errors

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
_API_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of payload with secret (what a client sends as `signature`)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(query: str, body: str) -> tuple[str, str]:
    """(signed payload, signature): the signature is the last `signature=` parameter.

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
    return q + b, signature


def check_api_key(api_key: str | None, lookup: Callable[[str], object | None]):
    if not api_key:
        raise errors.BinanceError(-2014, "API-key format invalid.", 401)
    if not _API_KEY_RE.match(api_key):
        raise errors.bad_api_key_format()
    account = lookup(api_key)
    if account is None:
        raise errors.rejected_api_key()
    return account


def check_signed(params: dict[str, str], query: str, body: str, secret: str, server_ms: int) -> None:
    """Raise the BinanceError Binance would for a bad signature, timestamp or recvWindow."""
    payload, signature = split_signature(query, body)
    if "timestamp" not in params:
        raise errors.mandatory_param("timestamp")
    try:
        timestamp = int(params["timestamp"])
    except ValueError:
        raise errors.illegal_chars("timestamp") from None
    recv_window = DEFAULT_RECV_WINDOW_MS
    if "recvWindow" in params:
        try:
            recv_window = int(params["recvWindow"])
        except ValueError:
            raise errors.illegal_chars("recvWindow") from None
        if recv_window <= 0 or recv_window > MAX_RECV_WINDOW_MS:
            raise errors.BinanceError(-1131, "recvWindow must be less than 60000", 400)
    if not hmac.compare_digest(sign(secret, payload), signature.lower()):
        raise errors.bad_signature()
    if timestamp >= server_ms + 1000 or server_ms - timestamp > recv_window:
        raise errors.bad_timestamp()
