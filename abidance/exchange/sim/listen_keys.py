"""User data stream keys: create, keep alive (PUT), close (DELETE), expire after 60 min."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

EXPIRY_MS = 60 * 60_000


@dataclass
class ListenKeys:
    _keys: dict[str, tuple[int, int]] = field(default_factory=dict)   # key -> (account_id, expires_ms)

    def create(self, account_id: int, now_ms: int) -> str:
        # Binance returns the account's existing key while it is valid.
        for key, (acc, expires) in self._keys.items():
            if acc == account_id and expires > now_ms:
                self._keys[key] = (acc, now_ms + EXPIRY_MS)
                return key
        key = secrets.token_hex(32)
        self._keys[key] = (account_id, now_ms + EXPIRY_MS)
        return key

    def keepalive(self, key: str, account_id: int, now_ms: int) -> bool:
        entry = self._keys.get(key)
        if entry is None or entry[0] != account_id or entry[1] <= now_ms:
            return False
        self._keys[key] = (account_id, now_ms + EXPIRY_MS)
        return True

    def close(self, key: str, account_id: int) -> bool:
        entry = self._keys.get(key)
        if entry is None or entry[0] != account_id:
            return False
        del self._keys[key]
        return True

    def account_for(self, key: str, now_ms: int) -> int | None:
        entry = self._keys.get(key)
        if entry is None or entry[1] <= now_ms:
            return None
        return entry[0]

    def expire(self, now_ms: int) -> list[str]:
        """Drop expired keys; returns them so open streams can be told (listenKeyExpired)."""
        gone = [k for k, (_, exp) in self._keys.items() if exp <= now_ms]
        for k in gone:
            del self._keys[k]
        return gone
