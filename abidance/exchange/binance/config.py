"""Connector settings and the named venues (sim, testnet, mainnet).

Pointing the bot at another venue is a config change: `venue = "testnet"` or explicit
URLs. Secrets are never here: see credentials.py.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

VENUES = {
    "sim": ("http://127.0.0.1:8700", "ws://127.0.0.1:8701"),
    "testnet": ("https://testnet.binance.vision", "wss://stream.testnet.binance.vision"),
    "mainnet": ("https://api.binance.com", "wss://stream.binance.com:9443"),
}
# The WebSocket API (user data since the listenKey flow was retired on 2026-02-20, and orders).
# On Binance it is its own host; the simulator serves it on its stream port.
WS_API_URLS = {
    "testnet": "wss://ws-api.testnet.binance.vision/ws-api/v3",
    "mainnet": "wss://ws-api.binance.com:443/ws-api/v3",
}
WS_API_PATH = "/ws-api/v3"
USER_DATA_AUTH = ("signature", "logon")
DAILY_ORDER_BUDGET = ("halt", "wait")
ORDER_TRANSPORTS = ("ws_api", "rest")


@dataclass(frozen=True)
class BinanceConfig:
    venue: str = "sim"
    rest_url: str = ""                      # default: the venue's
    ws_url: str = ""                        # default: the venue's
    ws_api_url: str = ""                    # default: the venue's (the simulator: ws_url + /ws-api/v3)
    # REST
    recv_window_ms: int = 5000              # Binance's default; max 60000
    request_timeout_s: float = 10.0
    time_sync_interval_s: float = 300.0     # re-measure the server clock offset this often
    order_retry_attempts: int = 3           # resubmits after a status-unknown answer, each after a query
    weight_limit_per_minute: int = 6000     # replaced by exchangeInfo's REQUEST_WEIGHT limit
    weight_safety_margin: float = 0.9       # keep this share of the budget for ourselves
    daily_order_budget: str = "halt"        # the day's orders spent: "halt" trading, or "wait" for the next day
    client_order_prefix: str = "abd"
    # Streams
    max_streams_per_connection: int = 1024  # Binance's limit
    max_messages_per_second: float = 4.0    # subscribe requests; Binance disconnects above 5
    subscribe_batch: int = 200              # streams per SUBSCRIBE request
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    reconnect_jitter: float = 0.25          # +- share of the delay
    stale_after_s: float = 30.0             # no message for this long -> reconnect
    max_connection_age_s: float = 23.5 * 3600   # reconnect before Binance's 24 h cut
    depth_snapshot_limit: int = 1000
    depth_stream_speed: str = "100ms"       # "100ms" or "1000ms"
    health_interval_s: float = 5.0
    # User data and orders over the WebSocket API
    user_data_auth: str = "signature"       # userDataStream.subscribe.signature, or session.logon (Ed25519)
    order_transport: str = "ws_api"         # "ws_api" or "rest": where orders, cancels and queries go

    def __post_init__(self) -> None:
        if self.venue not in VENUES and not (self.rest_url and self.ws_url):
            raise ValueError(
                f"binance.venue {self.venue!r} is unknown (known: {', '.join(VENUES)}); "
                "or set binance.rest_url and binance.ws_url"
            )
        rest, ws = VENUES.get(self.venue, ("", ""))
        object.__setattr__(self, "rest_url", (self.rest_url or rest).rstrip("/"))
        object.__setattr__(self, "ws_url", (self.ws_url or ws).rstrip("/"))
        ws_api = self.ws_api_url or WS_API_URLS.get(self.venue) or self.ws_url + WS_API_PATH
        object.__setattr__(self, "ws_api_url", ws_api.rstrip("/"))
        self._validate()

    def _validate(self) -> None:
        positive = [f.name for f in fields(self) if f.type in ("int", "float") and f.name != "reconnect_jitter"]
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"binance.{name} must be a positive number, got {value!r}")
        if not 0 <= self.reconnect_jitter < 1:
            raise ValueError(f"binance.reconnect_jitter must be within [0, 1), got {self.reconnect_jitter!r}")
        if not 0 < self.weight_safety_margin <= 1:
            raise ValueError(f"binance.weight_safety_margin must be within (0, 1], got {self.weight_safety_margin!r}")
        if self.recv_window_ms > 60000:
            raise ValueError(f"binance.recv_window_ms must be at most 60000 (Binance's maximum), got {self.recv_window_ms}")
        if self.max_streams_per_connection > 1024:
            raise ValueError("binance.max_streams_per_connection must be at most 1024 (Binance's limit)")
        if self.depth_stream_speed not in ("100ms", "1000ms"):
            raise ValueError(f"binance.depth_stream_speed must be '100ms' or '1000ms', got {self.depth_stream_speed!r}")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("binance.reconnect_initial_s must not exceed binance.reconnect_max_s")
        if self.user_data_auth not in USER_DATA_AUTH:
            raise ValueError(f"binance.user_data_auth must be one of {', '.join(map(repr, USER_DATA_AUTH))}, "
                             f"got {self.user_data_auth!r}")
        if self.daily_order_budget not in DAILY_ORDER_BUDGET:
            raise ValueError(f"binance.daily_order_budget must be one of {', '.join(map(repr, DAILY_ORDER_BUDGET))}, "
                             f"got {self.daily_order_budget!r}")
        if self.order_transport not in ORDER_TRANSPORTS:
            raise ValueError(f"binance.order_transport must be one of {', '.join(map(repr, ORDER_TRANSPORTS))}, "
                             f"got {self.order_transport!r}")
        for name in ("rest_url", "ws_url", "ws_api_url"):
            url = getattr(self, name)
            schemes = ("http://", "https://") if name == "rest_url" else ("ws://", "wss://")
            if not url.startswith(schemes):
                raise ValueError(f"binance.{name} must start with {' or '.join(schemes)}, got {url!r}")
        if not self.client_order_prefix.replace("-", "").replace("_", "").isalnum() or len(self.client_order_prefix) > 8:
            raise ValueError("binance.client_order_prefix must be 1-8 letters, digits, '-' or '_'")

    def with_urls(self, rest_url: str, ws_url: str, ws_api_url: str = "") -> "BinanceConfig":
        """Pointed at other servers (the simulator's ports); the WebSocket API follows ws_url unless given."""
        return replace(self, rest_url=rest_url, ws_url=ws_url, ws_api_url=ws_api_url or ws_url + WS_API_PATH)
