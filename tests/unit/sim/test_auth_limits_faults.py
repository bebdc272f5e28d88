"""Signing, rate limits and fault injection of the simulator, without a network."""

import pytest

from abidance.exchange.sim import auth
from abidance.exchange.sim.errors import BinanceError
from abidance.exchange.sim.faults import Faults, FaultSettings
from abidance.exchange.sim.limits import RateLimitConfig, RateLimiter
from abidance.exchange.sim.accounts import Account
from abidance.exchange.sim.streams import parse_stream

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
NOW = 1_700_000_000_000
ACCOUNT = Account(1, "key", SECRET)


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
    auth.check_signed({"symbol": "BTCUSDT", "timestamp": str(NOW)}, query, body_signed, ACCOUNT, NOW)


def test_check_signed_when_signature_wrong_then_1022():
    with pytest.raises(BinanceError) as e:
        auth.check_signed({"timestamp": str(NOW)}, f"timestamp={NOW}&signature=00", "", ACCOUNT, NOW)
    assert e.value.code == -1022


@pytest.mark.parametrize("ts", [NOW - 5001, NOW + 1000])
def test_check_signed_when_outside_recv_window_then_1021(ts):
    q = f"timestamp={ts}"
    with pytest.raises(BinanceError) as e:
        auth.check_signed({"timestamp": str(ts)}, signed(q), "", ACCOUNT, NOW)
    assert e.value.code == -1021


def test_check_signed_when_missing_timestamp_or_signature_then_1102():
    with pytest.raises(BinanceError) as e:
        auth.check_signed({}, "symbol=X", "", ACCOUNT, NOW)
    assert e.value.code == -1102 and "signature" in e.value.msg
    with pytest.raises(BinanceError) as e:
        auth.check_signed({}, signed("symbol=X"), "", ACCOUNT, NOW)
    assert e.value.code == -1102 and "timestamp" in e.value.msg


# Binance's WebSocket API signing example (web-socket-api.md, "SIGNED request example (HMAC)").
WS_DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
WS_DOC_PARAMS = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01000000",
                 "price": "52000.00", "recvWindow": "100", "timestamp": "1645423376532", "apiKey": WS_DOC_KEY}


def test_ws_payload_sorts_params_and_matches_binance_documented_signature():
    payload = auth.ws_payload({**WS_DOC_PARAMS, "signature": "ignored"})
    assert payload.startswith(f"apiKey={WS_DOC_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL")
    assert auth.sign(SECRET, payload) == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def test_ed25519_account_verifies_base64_signatures_and_refuses_hmac():
    ed = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    import base64

    key = ed.Ed25519PrivateKey.generate()
    account = Account(2, "edkey", None, ed25519_public_key=key.public_key())
    payload = f"apiKey=edkey&timestamp={NOW}"
    good = base64.b64encode(key.sign(payload.encode())).decode()
    auth.check_signature(account, payload, good)
    for bad in (auth.sign(SECRET, payload), good[:-4] + "AAA=", "%%%", "é"):
        with pytest.raises(BinanceError) as e:
            auth.check_signature(account, payload, bad)
        assert e.value.code == -1022


def test_hmac_signature_with_non_ascii_text_is_invalid_not_a_crash():
    with pytest.raises(BinanceError) as e:
        auth.check_signature(ACCOUNT, "timestamp=1", "é" * 64)
    assert e.value.code == -1022


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


@pytest.mark.parametrize("key,value", [
    ("rest_latency_ms", 1e300), ("rest_latency_ms", float("inf")), ("rest_latency_ms", 3_600_000),
    ("stream_stall_s", 1e300), ("clock_skew_ms", 10**20), ("max_connection_s", float("nan")), ("seed", -1),
    ("rest_5xx_rate", "0.5"),
])
def test_absurd_fault_settings_are_refused_naming_the_key(key, value):
    # issue 16: rest_latency_ms = 1e300 was accepted, and every REST call then hung
    with pytest.raises(ValueError, match=f"faults.{key} must be"):
        Faults().update({key: value}) if not isinstance(value, str) else FaultSettings(**{key: value}).validate()


@pytest.mark.parametrize("table,key", [
    ({"faults": {"rest_latency_ms": 1e300}}, "sim.faults.rest_latency_ms"),
    ({"limits": {"orders_per_10s": 99999999999999999999}}, "sim.limits.orders_per_10s"),
    ({"limits": {"weight_per_minute": 0}}, "sim.limits.weight_per_minute"),
    ({"seed": -5}, "sim.seed"),
])
def test_sim_config_refuses_absurd_values_naming_the_key(table, key):
    from abidance.exchange.sim.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({"sim": table})


@pytest.mark.parametrize("name,expected", [
    ("btcusdt@trade", "btcusdt@trade"), ("btcusdt@depth@100ms", "btcusdt@depth@100ms"),
    ("btcusdt@depth@1000ms", "btcusdt@depth"), ("btcusdt@depth5", "btcusdt@depth5"),
    ("btcusdt@depth20@100ms", "btcusdt@depth20@100ms"), ("btcusdt@kline_1m", "btcusdt@kline_1m"),
    ("btcusdt@kline_7m", None), ("ethusdt@trade", None), ("btcusdt@depth7", None), ("BTCUSDT@trade", None),
])
def test_parse_stream(name, expected):
    assert parse_stream(name, {"BTCUSDT"}) == expected
