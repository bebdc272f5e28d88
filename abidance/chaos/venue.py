"""The venue's own record, read over its signed REST API (the account the node trades on)."""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import orjson

PAGE = 1000


class VenueReader:
    def __init__(self, rest_url: str, api_key: str, secret: str):
        self.rest_url = rest_url.rstrip("/")
        self._key = api_key
        self._secret = secret.encode()

    def _get(self, path: str, params: dict, signed: bool = True):
        if signed:
            params = {**params, "timestamp": int(time.time() * 1000), "recvWindow": 60_000}
        query = urllib.parse.urlencode(params)
        if signed:
            query += "&signature=" + hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"{self.rest_url}{path}?{query}", headers={"X-MBX-APIKEY": self._key})
        for attempt in range(20):            # the campaign's own faults answer 5xx/429 too: ask again
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return orjson.loads(resp.read())
            except urllib.error.HTTPError as exc:
                if exc.code < 429 or attempt == 19:
                    raise
            except OSError:
                if attempt == 19:
                    raise
            time.sleep(min(5.0, 0.2 * 2 ** attempt))

    def balances(self) -> dict[str, Decimal]:
        data = self._get("/api/v3/account", {})
        out = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in data["balances"]}
        return {a: v for a, v in out.items() if v}

    def open_orders(self, symbol: str) -> list[dict]:
        return self._get("/api/v3/openOrders", {"symbol": symbol})

    def all_orders(self, symbol: str) -> list[dict]:
        return self._paged("/api/v3/allOrders", symbol, "orderId", "orderId")

    def trades(self, symbol: str) -> list[dict]:
        return self._paged("/api/v3/myTrades", symbol, "fromId", "id")

    def _paged(self, path: str, symbol: str, from_param: str, id_key: str) -> list[dict]:
        """Every row of an id-paged endpoint, PAGE at a time from id 0."""
        out, from_id = [], 0
        while True:
            page = self._get(path, {"symbol": symbol, from_param: from_id, "limit": PAGE})
            out += page
            if len(page) < PAGE:
                return out
            from_id = page[-1][id_key] + 1
