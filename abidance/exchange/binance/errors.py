"""What can go wrong talking to Binance's REST API, as a few exception types.

Messages name the code, Binance's text and the endpoint (method and path) only: never
the query string, the signature or the API key, so an exception can be logged as is.
`status_unknown` marks answers after which a request may or may not have executed
(HTTP 5xx, -1007, a timeout or a dropped connection): for orders, query before retrying.
"""

from __future__ import annotations

from abidance.core.errors import OrderOutcomeUnknown, VenueError, VenueRateLimited, VenueTransportError


class BinanceApiError(VenueError):
    """An error answer (or no answer) from Binance for one request."""

    def __init__(self, code: int, msg: str, http_status: int, *, method: str = "", path: str = ""):
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.method = method
        self.path = path
        where = f" on {method} {path}".rstrip() if (method or path) else ""
        status = f"HTTP {http_status}" if http_status else "no HTTP answer"
        super().__init__(f"Binance error {code}{where} ({status}): {msg}")

    @property
    def status_unknown(self) -> bool:
        """True when the request may have executed even though it failed."""
        return self.http_status >= 500 or self.code == -1007

    @property
    def order_not_found(self) -> bool:
        return self.code == -2013          # "Order does not exist."


class RateLimited(BinanceApiError, VenueRateLimited):
    """HTTP 429 (or a local budget that cannot be met): back off for retry_after_s."""

    def __init__(self, code: int, msg: str, http_status: int = 429, *, retry_after_s: float = 0.0, **where):
        super().__init__(code, msg, http_status, **where)
        self.retry_after_s = retry_after_s


class OrderBudgetSpent(RateLimited):
    """The day's order budget is spent locally (binance.daily_order_budget = "halt"): not sent."""


class IpBanned(BinanceApiError):
    """HTTP 418: the IP is banned until until_ms (wall ms); nothing may be sent before."""

    def __init__(self, code: int, msg: str, http_status: int = 418, *, until_ms: int = 0, **where):
        super().__init__(code, msg, http_status, **where)
        self.until_ms = until_ms


class TimestampOutsideRecvWindow(BinanceApiError):
    """-1021: our timestamp and the server's clock disagree by more than recvWindow."""


class TransportError(BinanceApiError, VenueTransportError):
    """No usable answer: the connection dropped (the request may have executed)."""

    def __init__(self, msg: str, *, sent: bool = True, **where):
        super().__init__(0, msg, 0, **where)
        self.sent = sent    # False when the connection could not even be opened

    @property
    def status_unknown(self) -> bool:
        return self.sent


class RequestTimeout(TransportError):
    """No answer within request_timeout_s (the request may have executed)."""


class OrderStatusUnknown(BinanceApiError, OrderOutcomeUnknown):
    """An order request whose outcome could not be established; query it by client_order_id."""

    def __init__(self, code: int, msg: str, http_status: int = 0, *, client_order_id: str = "", **where):
        super().__init__(code, msg, http_status, **where)
        self.client_order_id = client_order_id

    @property
    def status_unknown(self) -> bool:
        return True
