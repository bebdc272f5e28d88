"""Client order ids: unique per order, across restarts, in Binance's format.

An id is `<prefix>-<session>-<counter>`: the session tag is four base36 digits of the start
time (seconds, wrapping after ~19 days) plus four random ones, so two restarts would have
to fall in the same second and draw the same 1-in-1.7M digits to share a tag; the counter
is base36 and grows within the process. An id is reused only when resubmitting the same
order after a status-unknown answer, which is what makes a retry safe. Given a seed
(tests, backtests) the tag is eight seeded digits and the ids are fully deterministic.
"""

from __future__ import annotations

import random
import re
import secrets

from abidance.core.clock import LiveClock

CLIENT_ORDER_ID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")    # Binance's rule
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_PREFIX_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,8}$")


def base36(n: int) -> str:
    if n < 0:
        raise ValueError("base36 of a negative number")
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


class ClientOrderIds:
    def __init__(self, prefix: str = "abd", clock=None, seed: int | None = None):
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"client order id prefix {prefix!r} must be 1-8 letters, digits, '-' or '_'")
        if seed is not None:    # tests and backtests: the whole tag from the seed
            rng = random.Random(seed)
            self.session = "".join(rng.choice(_DIGITS) for _ in range(8))
        else:
            clock = clock or LiveClock()
            time_part = base36(clock.time_ns() // 1_000_000_000 % 36**4).rjust(4, "0")
            self.session = time_part + "".join(secrets.choice(_DIGITS) for _ in range(4))
        self.prefix = prefix
        self._head = f"{prefix}-{self.session}-"
        # An exit list's legs carry a suffix (_a, _b: order_lists.py) outside the counter's digits.
        self._ours = re.compile(rf"^{re.escape(prefix)}-[0-9a-z]{{8}}-[0-9a-z]+(?:_[ab])?$")
        self._counter = 0

    def next(self) -> str:
        self._counter += 1
        cid = self._head + base36(self._counter)
        if len(cid) > 36:       # 8 + 1 + 8 + 1 leaves 18 base36 digits: never in practice
            raise OverflowError("client order id counter exhausted; restart the session")
        return cid

    __call__ = next

    def is_ours(self, client_order_id: str) -> bool:
        """Placed by this node, in this or an earlier session (same prefix, our format).

        Give every node on one account its own prefix (binance.client_order_prefix)."""
        return self._ours.match(client_order_id) is not None

    def is_this_session(self, client_order_id: str) -> bool:
        return client_order_id.startswith(self._head)

    def __repr__(self) -> str:
        return f"ClientOrderIds(prefix={self.prefix!r}, session={self.session!r}, issued={self._counter})"
