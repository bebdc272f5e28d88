"""Accounts: API credentials, balances (free/locked, Decimal), fee rates, order and trade history.

Money rules (Binance's defaults):
  * Placing an order locks what it may spend: a BUY limit locks price * quantity of the quote
    asset, a SELL locks the quantity of the base asset, a MARKET BUY by quoteOrderQty locks that
    quote amount and a MARKET BUY by quantity the exact cost of its planned fill. Nothing extra is
    locked for fees: the fee is taken from the asset received.
  * Each fill spends from the order's lock. A BUY limit that fills below its limit price releases
    the difference at once (the lock for that quantity was taken at the limit price).
  * Closing an order (filled, cancelled, expired) returns what is left of its lock to free.
  * The two legs of an OCO share one lock (only one of them can execute): `share` points both
    orders at it, fills of either spend from it, and it is released when the last leg closes.
  * Reducing an order (amend, self-trade decrement) returns the part of its lock it no longer
    needs (`release_part`); a triggered BUY market stop tops its lock up to the cost of its fill
    (`top_up`) when the price moved since the lock was taken.
  * Commission = received amount * rate, rounded half-up to 8 decimals (the asset precision);
    the buyer pays it in the base asset, the seller in the quote asset. Binance does not document
    its rounding; half-up matches every sample we have. The caller collects the commission.

The market-maker account (`unlimited=True`) skips every balance check and lock: its balances are
a running ledger that may go negative, so that the sum over all accounts and collected fees of
every asset stays constant (the conservation property the tests check).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from abidance.exchange.sim import errors

ZERO = Decimal(0)
_FEE_QUANTUM = Decimal("0.00000001")


def commission(amount: Decimal, rate: Decimal) -> Decimal:
    """The fee on a received amount: amount * rate, half-up at 8 decimals."""
    if not rate:
        return ZERO
    return (amount * rate).quantize(_FEE_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class AccountTrade:
    """One of the account's fills (a row of GET /api/v3/myTrades)."""

    symbol: str
    id: int
    order_id: int
    price_ticks: int
    qty_steps: int
    quote_units: int
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


class Account:
    """One trading account. The secret never appears in repr/str."""

    __slots__ = ("account_id", "api_key", "_secret", "_ed25519", "balances", "maker_rate", "taker_rate",
                 "can_trade", "can_withdraw", "can_deposit", "unlimited", "update_time", "orders", "open_orders",
                 "open_client_ids", "client_ids", "trades", "_locks", "_shared")

    def __init__(self, account_id: int, api_key: str | None, secret: str | None,
                 balances: dict | None = None, *, maker_rate: Decimal | None = None,
                 taker_rate: Decimal | None = None, can_trade: bool = True, can_withdraw: bool = True,
                 can_deposit: bool = True, unlimited: bool = False, ed25519_public_key=None):
        self.account_id = account_id
        self.api_key = api_key
        self._secret = secret
        # An Ed25519 API key (cryptography's Ed25519PublicKey): signatures are base64, HMAC is refused.
        self._ed25519 = ed25519_public_key
        # asset -> [free, locked]
        self.balances: dict[str, list[Decimal]] = {}
        for asset, amount in (balances or {}).items():
            amount = Decimal(str(amount))
            if amount < 0:
                raise ValueError(f"negative starting balance for {asset}")
            self.balances[asset] = [amount, ZERO]
        # None: use the symbol's fee rate.
        self.maker_rate = None if maker_rate is None else Decimal(str(maker_rate))
        self.taker_rate = None if taker_rate is None else Decimal(str(taker_rate))
        self.can_trade = can_trade
        self.can_withdraw = can_withdraw
        self.can_deposit = can_deposit
        self.unlimited = unlimited
        self.update_time = 0
        self.orders: dict[str, dict[int, object]] = {}        # symbol -> order id -> Order (all, in id order)
        self.open_orders: dict[str, dict[int, object]] = {}   # symbol -> order id -> open Order
        self.open_client_ids: dict[tuple[str, str], object] = {}  # (symbol, clientOrderId) of open orders
        self.client_ids: dict[tuple[str, str], object] = {}   # (symbol, clientOrderId) -> latest Order
        self.trades: dict[str, list[AccountTrade]] = {}       # symbol -> fills, oldest first
        self._locks: dict[tuple, list] = {}                   # (symbol, order id) -> [asset, remaining, users]
        self._shared: dict[tuple[str, int], tuple] = {}       # (symbol, order id) -> key of a shared lock

    def __repr__(self) -> str:
        return f"Account(id={self.account_id}, api_key={self.api_key!r})"

    __str__ = __repr__

    @property
    def secret(self) -> str | None:
        """The HMAC secret (None for an Ed25519 key); prefer `verify_signature`."""
        return self._secret

    @property
    def key_type(self) -> str:
        return "ED25519" if self._ed25519 is not None else "HMAC_SHA256"

    def verify_signature(self, payload: str | bytes, signature: str) -> bool:
        """The signature over the exact payload: HMAC-SHA256 hex (case-insensitive, compared in
        constant time) for an HMAC key, base64 (case-sensitive) for an Ed25519 key."""
        if isinstance(payload, str):
            payload = payload.encode()
        if self._ed25519 is not None:
            try:
                self._ed25519.verify(base64.b64decode(signature, validate=True), payload)
            except Exception:  # noqa: BLE001 - bad base64 or a wrong signature: both are simply invalid
                return False
            return True
        if self._secret is None:
            return False
        expected = hmac.new(self._secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8", "replace"))

    # ---- balances -----------------------------------------------------------------------------

    def free(self, asset: str) -> Decimal:
        bal = self.balances.get(asset)
        return bal[0] if bal else ZERO

    def locked(self, asset: str) -> Decimal:
        bal = self.balances.get(asset)
        return bal[1] if bal else ZERO

    def _bal(self, asset: str) -> list[Decimal]:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = [ZERO, ZERO]
        return bal

    def rate(self, default_maker: Decimal, default_taker: Decimal, is_maker: bool) -> Decimal:
        if is_maker:
            return default_maker if self.maker_rate is None else self.maker_rate
        return default_taker if self.taker_rate is None else self.taker_rate

    def can_afford(self, asset: str, amount: Decimal) -> bool:
        return self.unlimited or self.free(asset) >= amount

    def deposit(self, asset: str, amount: Decimal) -> None:
        """Admin credit (negative: withdrawal, limited to the free balance)."""
        bal = self._bal(asset)
        if bal[0] + amount < 0 and not self.unlimited:
            raise ValueError(f"withdrawal of {-amount} {asset} exceeds the free balance {bal[0]}")
        bal[0] += amount

    # ---- order funds --------------------------------------------------------------------------

    def reserve(self, key: tuple, asset: str, amount: Decimal) -> None:
        """Lock `amount` of `asset` for an order; -2010 insufficient balance when free is short."""
        if self.unlimited:
            return
        bal = self._bal(asset)
        if bal[0] < amount:
            raise errors.insufficient_balance()
        bal[0] -= amount
        bal[1] += amount
        self._locks[key] = [asset, amount, 1]

    def share(self, key: tuple, order_keys: list[tuple[str, int]]) -> None:
        """The orders of `order_keys` all draw on the lock reserved under `key`."""
        lock = self._locks.get(key)
        if lock is None:
            return
        lock[2] = len(order_keys)
        for order_key in order_keys:
            self._shared[order_key] = key

    def release(self, key: tuple[str, int]) -> None:
        """Return what is left of an order's lock to free (the order closed). A shared lock
        goes back when the last order using it closes."""
        shared = self._shared.pop(key, None)
        if shared is not None:
            lock = self._locks.get(shared)
            if lock is None:
                return
            lock[2] -= 1
            if lock[2] > 0:
                return
            key = shared
        lock = self._locks.pop(key, None)
        if lock and lock[1]:
            bal = self.balances[lock[0]]
            bal[0] += lock[1]
            bal[1] -= lock[1]

    def release_part(self, key: tuple[str, int], amount: Decimal) -> None:
        """Return `amount` of an open order's lock to free (the order needs less now)."""
        lock = self._locks.get(self._shared.get(key, key))
        if lock is None or amount <= 0:
            return
        amount = min(amount, lock[1])
        lock[1] -= amount
        bal = self.balances[lock[0]]
        bal[0] += amount
        bal[1] -= amount

    def top_up(self, key: tuple[str, int], amount: Decimal) -> bool:
        """Lock `amount` more for an order from free; False (nothing moves) when free is short."""
        if self.unlimited or amount <= 0:
            return True
        lock = self._locks.get(self._shared.get(key, key))
        if lock is None:
            return False
        bal = self.balances[lock[0]]
        if bal[0] < amount:
            return False
        bal[0] -= amount
        bal[1] += amount
        lock[1] += amount
        return True

    def lock_of(self, key: tuple[str, int]) -> Decimal:
        lock = self._locks.get(self._shared.get(key, key))
        return lock[1] if lock else ZERO

    def lock_key(self, key: tuple[str, int]) -> tuple:
        """The key of the lock an order draws on (its own, or its OCO pair's)."""
        return self._shared.get(key, key)

    def apply_fill(self, key: tuple[str, int], *, is_buy: bool, base: str, quote: str, qty: Decimal,
                   quote_amt: Decimal, lock_used: Decimal, rate: Decimal) -> Decimal:
        """Settle one fill of this account's order; returns the commission charged.

        BUY: pays quote_amt out of the lock; `lock_used` (limit price * qty for limit orders, the
        spend itself for MARKET) leaves the lock and the difference goes back to free; receives
        qty minus commission in base. SELL: `lock_used` (= qty) of base leaves the lock; receives
        quote_amt minus commission in quote.
        """
        if is_buy:
            fee = commission(qty, rate)
            if self.unlimited:
                self._bal(quote)[0] -= quote_amt
            else:
                self._spend_lock(key, quote, lock_used, quote_amt)
            self._bal(base)[0] += qty - fee
        else:
            fee = commission(quote_amt, rate)
            if self.unlimited:
                self._bal(base)[0] -= qty
            else:
                self._spend_lock(key, base, lock_used, lock_used)
            self._bal(quote)[0] += quote_amt - fee
        return fee

    def _spend_lock(self, key, asset: str, used: Decimal, spent: Decimal) -> None:
        lock = self._locks[self._shared.get(key, key)]
        bal = self.balances[asset]
        lock[1] -= used
        bal[1] -= used
        bal[0] += used - spent

    # ---- order and trade history --------------------------------------------------------------

    def add_order(self, order) -> None:
        symbol = order.symbol
        self.orders.setdefault(symbol, {})[order.order_id] = order
        self.open_orders.setdefault(symbol, {})[order.order_id] = order
        self.open_client_ids[(symbol, order.client_order_id)] = order
        self.client_ids[(symbol, order.client_order_id)] = order

    def close_order(self, order) -> None:
        """The order is no longer open: forget it as open and release its remaining lock."""
        key = (order.symbol, order.order_id)
        self.open_orders.get(order.symbol, {}).pop(order.order_id, None)
        cid = (order.symbol, order.client_order_id)
        if self.open_client_ids.get(cid) is order:
            del self.open_client_ids[cid]
        self.release(key)

    def open_orders_of(self, symbol: str) -> list:
        """The open orders on one symbol, in placement order."""
        return list(self.open_orders.get(symbol, {}).values())

    def find_order(self, symbol: str, order_id: int | None = None, client_order_id: str | None = None):
        """By id, else by clientOrderId (the latest order that used it); None when unknown.
        With both, Binance looks up by orderId and requires the clientOrderId to match."""
        if order_id is not None:
            order = self.orders.get(symbol, {}).get(order_id)
            if order is not None and client_order_id is not None and order.client_order_id != client_order_id:
                return None
            return order
        if client_order_id is not None:
            return self.client_ids.get((symbol, client_order_id))
        return None

    def add_trade(self, trade: AccountTrade) -> None:
        self.trades.setdefault(trade.symbol, []).append(trade)
