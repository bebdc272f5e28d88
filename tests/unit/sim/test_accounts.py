"""Account: locks, fills, fees (exact Decimals), release, credentials hygiene."""

from decimal import Decimal as D

import pytest

from abidance.exchange.sim.accounts import Account, commission
from abidance.exchange.sim.errors import BinanceError

KEY = ("BTCUSDT", 1)


def account(**balances) -> Account:
    return Account(1, "key-1", "s3cret-value", {k: D(v) for k, v in balances.items()})


def test_reserve_when_free_covers_then_moves_free_to_locked():
    a = account(USDT="100")
    a.reserve(KEY, "USDT", D("60.5"))
    assert (a.free("USDT"), a.locked("USDT")) == (D("39.5"), D("60.5"))
    assert a.lock_of(KEY) == D("60.5")


def test_reserve_when_free_short_then_2010_insufficient_balance_and_nothing_moves():
    a = account(USDT="10")
    with pytest.raises(BinanceError) as info:
        a.reserve(KEY, "USDT", D("10.00000001"))
    assert (info.value.code, info.value.msg) == (-2010, "Account has insufficient balance for requested action.")
    assert (a.free("USDT"), a.locked("USDT")) == (D("10"), D("0"))


def test_buy_fill_when_below_limit_price_then_difference_released_and_fee_in_base():
    a = account(USDT="1000")
    a.reserve(KEY, "USDT", D("500"))                         # 5 @ 100 limit
    fee = a.apply_fill(KEY, is_buy=True, base="BTC", quote="USDT", qty=D("2"), quote_amt=D("190"),
                       lock_used=D("200"), rate=D("0.001"))  # 2 filled @ 95
    assert fee == D("0.002")
    assert a.free("BTC") == D("1.998")
    assert a.locked("USDT") == D("300")                      # the 3 still open stay locked at 100
    assert a.free("USDT") == D("510")                         # 500 free + 10 price improvement
    a.release(KEY)
    assert (a.free("USDT"), a.locked("USDT")) == (D("810"), D("0"))


def test_sell_fill_when_settled_then_base_leaves_lock_and_quote_minus_fee_arrives():
    a = account(BTC="1")
    a.reserve(KEY, "BTC", D("0.5"))
    fee = a.apply_fill(KEY, is_buy=False, base="BTC", quote="USDT", qty=D("0.5"),
                       quote_amt=D("15000.005"), lock_used=D("0.5"), rate=D("0.001"))
    # 15000.005 * 0.001 = 15.000005 exactly
    assert fee == D("15.000005")
    assert a.free("USDT") == D("14985.004995")
    assert (a.free("BTC"), a.locked("BTC")) == (D("0.5"), D("0"))


def test_commission_when_beyond_8_decimals_then_rounded_half_up():
    # 49.7330082 * 0.001 = 0.0497330082 -> 0.04973301
    assert commission(D("49.7330082"), D("0.001")) == D("0.04973301")
    # 0.000000005 exactly half a unit rounds up; 0.0000000049 rounds down
    assert commission(D("0.000005"), D("0.001")) == D("0.00000001")
    assert commission(D("0.0000049"), D("0.001")) == D("0")
    assert commission(D("123"), D("0")) == D("0")


def test_unlimited_account_when_reserving_and_filling_then_never_raises_and_keeps_a_ledger():
    mm = Account(0, None, None, unlimited=True)
    mm.reserve(KEY, "USDT", D("10") ** 9)
    assert mm.locked("USDT") == 0
    mm.apply_fill(KEY, is_buy=True, base="BTC", quote="USDT", qty=D("1"), quote_amt=D("100"),
                  lock_used=D("100"), rate=D("0"))
    assert (mm.free("USDT"), mm.free("BTC")) == (D("-100"), D("1"))


def test_repr_when_printed_then_secret_absent():
    a = account(USDT="1")
    assert "s3cret" not in repr(a) and "s3cret" not in str(a) and "key-1" in repr(a)
    assert not hasattr(a, "__dict__")


def test_verify_signature_when_binance_documented_example_then_accepted():
    a = Account(1, "k", "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j")
    payload = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
               "&timestamp=1499827319559")
    assert a.verify_signature(payload, "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")
    assert not a.verify_signature(payload + "1", "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")


def test_deposit_when_withdrawing_more_than_free_then_value_error():
    a = account(USDT="5")
    a.deposit("USDT", D("-5"))
    assert a.free("USDT") == 0
    with pytest.raises(ValueError):
        a.deposit("USDT", D("-0.00000001"))


def test_starting_balance_when_negative_then_value_error():
    with pytest.raises(ValueError):
        account(USDT="-1")


def test_order_history_when_closed_then_open_indexes_forget_it_but_lookup_still_finds_it():
    class O:
        symbol, order_id, client_order_id = "BTCUSDT", 7, "abc"
    a = account(USDT="100")
    o = O()
    a.add_order(o)
    a.reserve(("BTCUSDT", 7), "USDT", D("10"))
    assert a.open_orders_of("BTCUSDT") == [o] and ("BTCUSDT", "abc") in a.open_client_ids
    a.close_order(o)
    assert a.open_orders_of("BTCUSDT") == [] and ("BTCUSDT", "abc") not in a.open_client_ids
    assert a.free("USDT") == D("100")
    assert a.find_order("BTCUSDT", 7) is o and a.find_order("BTCUSDT", client_order_id="abc") is o
    assert a.find_order("BTCUSDT", 7, "other") is None and a.find_order("BTCUSDT", 8) is None
