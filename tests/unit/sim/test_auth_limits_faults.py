"""Signing, rate limits and fault injection of the simulator, without a network."""

import pytest

from abidance.exchange.sim import auth
from abidance.exchange.sim.errors import BinanceError
from abidance.exchange.sim.faults import Faults, FaultSettings
from abidance.exchange.sim.limits import RateLimitConfig, RateLimiter
from abidance.exchange.sim.listen_keys import EXPIRY_MS, ListenKeys
from abidance.exchange.sim.streams import parse_stream

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
NOW = 1_700_000_000_000


def signed(query: str) -> str:
    return f"{query}&signature={auth.sign(SECRET, query)}"


def test_sign_matches_binance_documented_example():
    # The HMAC example from Binance's API documentation.
    payload = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
               "&recvWindow=5000&timestamp=1499827319559")
    assert auth.sign(SECRET, payload) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_check_signed_when_query_and_body_then_signature_covers_both():
    query, body = "symbol=BTCUSDT", f"timestamp={NOW}"
    body_signed = f"{body}&signature={auth.sign(SECRET, query + body)}"
    auth.check_signed({"symbol": "BTCUSDT", "timestamp": str(NOW)}, query, body_signed, SECRET, NOW)


def test_check_signed_when_signature_wrong_then_1022():
    with pytest.raises(BinanceError) as e:
        auth.check_signed({"timestamp": str(NOW)}, f"timestamp={NOW}&signature=00", "", SECRET, NOW)
    assert e.value.code == -1022


@pytest.mark.parametrize("ts", [NOW - 5001, NOW + 1000])
def test_check_signed_when_outside_recv_window_then_1021(ts):
    q = f"timestamp={ts}"
    with pytest.raises(BinanceError) as e:
        auth.check_signed({"timestamp": str(ts)}, signed(q), "", SECRET, NOW)
    assert e.value.code == -1021


def test_check_signed_when_missing_timestamp_or_signature_then_1102():
    with pytest.raises(BinanceError) as e:
        auth.check_signed({}, "symbol=X", "", SECRET, NOW)
    assert e.value.code == -1102 and "signature" in e.value.msg
    with pytest.raises(BinanceError) as e:
        auth.check_signed({}, signed("symbol=X"), "", SECRET, NOW)
    assert e.value.code == -1102 and "timestamp" in e.value.msg


def test_api_key_checks():
    with pytest.raises(BinanceError) as e:
        auth.check_api_key(None, lambda k: None)
    assert e.value.code == -2014
    with pytest.raises(BinanceError) as e:
        auth.check_api_key("unknownkey", lambda k: None)
    assert e.value.code == -2015 and e.value.http_status == 401


def test_rate_limiter_when_weight_exceeded_then_429_then_418_for_clients_that_keep_going():
    lim = RateLimiter(RateLimitConfig(weight_per_minute=10, violations_before_ban=2, first_ban_s=120))
    t = 60_000 * 1000 + 5_000
    assert lim.charge("ip", 10, t) == 10
    with pytest.raises(BinanceError) as e:
        lim.charge("ip", 1, t)
    assert e.value.http_status == 429 and e.value.retry_after == 55
    with pytest.raises(BinanceError) as e:
        lim.charge("ip", 1, t + 1000)
    assert e.value.http_status == 429
    with pytest.raises(BinanceError) as e:
        lim.charge("ip", 1, t + 2000)
    assert e.value.http_status == 418 and e.value.retry_after == 120
    with pytest.raises(BinanceError) as e:
        lim.charge("ip", 1, t + 100_000)
    assert e.value.http_status == 418
    assert lim.charge("ip", 1, t + 125_000) == 1   # ban over, new minute
    assert lim.charge("other", 1, t) == 1


def test_order_counts_when_over_10s_limit_then_1015():
    lim = RateLimiter(RateLimitConfig(orders_per_10s=2))
    assert lim.count_order(1, 0) == (1, 1)
    assert lim.count_order(1, 1) == (2, 2)
    with pytest.raises(BinanceError) as e:
        lim.count_order(1, 2)
    assert e.value.code == -1015 and e.value.http_status == 429
    assert lim.count_order(1, 10_000) == (1, 3)


def test_faults_are_seeded_and_replayable():
    def run(seed):
        f = Faults(FaultSettings(seed=seed, depth_drop_rate=0.3, depth_duplicate_rate=0.2, depth_reorder_rate=0.2))
        out = []
        for i in range(200):
            out += [e["U"] for e in f.depth_events("x@depth", {"U": i, "u": i})]
        return out
    assert run(1) == run(1)
    assert run(1) != run(2)
    ids = run(1)
    assert len(set(ids)) < 200 and len(ids) != 200


def test_fault_update_names_the_bad_key():
    f = Faults()
    with pytest.raises(ValueError, match="unknown fault setting 'nope'"):
        f.update({"nope": 1})
    with pytest.raises(ValueError, match="depth_drop_rate"):
        f.update({"depth_drop_rate": 2})
    assert f.update({"rest_5xx_rate": 0.5}).rest_5xx_rate == 0.5


def test_listen_keys_lifecycle():
    keys = ListenKeys()
    k = keys.create(7, 0)
    assert keys.create(7, 10) == k          # the account's valid key is returned again
    assert keys.account_for(k, 10) == 7
    assert keys.keepalive(k, 7, EXPIRY_MS - 1)
    assert keys.account_for(k, EXPIRY_MS + 5) == 7
    assert not keys.keepalive(k, 8, 0)
    assert keys.expire(3 * EXPIRY_MS) == [k]
    assert keys.account_for(k, 0) is None


@pytest.mark.parametrize("name,expected", [
    ("btcusdt@trade", "btcusdt@trade"), ("btcusdt@depth@100ms", "btcusdt@depth@100ms"),
    ("btcusdt@depth@1000ms", "btcusdt@depth"), ("btcusdt@depth5", "btcusdt@depth5"),
    ("btcusdt@depth20@100ms", "btcusdt@depth20@100ms"), ("btcusdt@kline_1m", "btcusdt@kline_1m"),
    ("btcusdt@kline_7m", None), ("ethusdt@trade", None), ("btcusdt@depth7", None), ("BTCUSDT@trade", None),
])
def test_parse_stream(name, expected):
    assert parse_stream(name, {"BTCUSDT"}) == expected
