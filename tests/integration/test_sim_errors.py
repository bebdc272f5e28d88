"""Malformed and unauthorised requests get Binance's errors, never a crash or a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from urllib.request import urlopen

import orjson
import pytest

from abidance.exchange.sim.config import SimConfig
from abidance.exchange.sim.limits import RateLimitConfig
from tests.integration.conftest import RunningSim
from tests.integration.sim_kit import call


@pytest.mark.parametrize("method,path,params,signed,code", [
    ("GET", "/api/v3/depth", {}, False, -1102),                                  # missing symbol
    ("GET", "/api/v3/depth", {"symbol": "NOPE"}, False, -1121),
    ("GET", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "abc"}, False, -1100),
    ("GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "7m"}, False, -1120),
    ("GET", "/api/v3/exchangeInfo", {"symbols": "[not json"}, False, -1100),
    ("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY"}, True, -1102),  # no type
    ("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "SIDEWAYS", "type": "LIMIT"}, True, -1117),
    ("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                               "quantity": "0.001", "price": "1.001"}, True, -1013),
    ("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                               "quantity": "5", "price": "60000"}, True, -2010),    # insufficient balance
    ("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": "999999"}, True, -2011),
    ("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": "999999"}, True, -2013),
])
def test_bad_request_gets_binance_error(sim, method, path, params, signed, code):
    status, body, headers = call(sim, method, path, params, signed=signed)
    assert 400 <= status < 500
    assert body["code"] == code, body
    assert set(body) == {"code", "msg"} and body["msg"]
    assert "X-MBX-USED-WEIGHT-1M" in headers


def test_signature_timestamp_and_key_errors(sim):
    assert call(sim, "GET", "/api/v3/account", signed=True, secret="wrong")[1]["code"] == -1022
    assert call(sim, "GET", "/api/v3/account", signed=True, ts_offset=-60_000)[1]["code"] == -1021
    assert call(sim, "GET", "/api/v3/account", signed=True, key=None)[1]["code"] == -2014
    status, body, _ = call(sim, "GET", "/api/v3/account", signed=True, key="someone-else")
    assert status == 401 and body["code"] == -2015
    status, body, headers = call(sim, "GET", "/api/v3/account", signed=True)
    assert status == 200 and body["canTrade"] is True


def test_order_endpoints_carry_order_count_headers(sim):
    bid = float(call(sim, "GET", "/api/v3/ticker/bookTicker", {"symbol": "BTCUSDT"})[1]["bidPrice"])
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
              "price": f"{bid * 0.95:.2f}"}
    status, body, headers = call(sim, "POST", "/api/v3/order", params, signed=True)
    assert status == 200 and body["status"] == "NEW", body
    assert int(headers["X-MBX-ORDER-COUNT-10S"]) >= 1 and int(headers["X-MBX-ORDER-COUNT-1D"]) >= 1
    call(sim, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": body["orderId"]}, signed=True)


def test_oversized_body_and_garbage_params(sim):
    status, body, _ = call(sim, "POST", "/api/v3/order", body=b"x=" + b"a" * 200_000)
    assert status == 413 and body["code"] == -1101
    status, body, _ = call(sim, "GET", "/api/v3/ping?%%%", key=None)
    assert status in (200, 400)


def test_non_utf8_body_gets_1100_not_a_500(sim):
    # issue 16: a body that is not UTF-8 was answered 500 with a traceback
    status, body, _ = call(sim, "POST", "/api/v3/order", body=b"symbol=BTC\xff\xfeUSDT&side=BUY")
    assert status == 400 and body["code"] == -1100, body


def test_non_ascii_signature_in_the_body_gets_a_binance_error(sim):
    query = f"symbol=BTCUSDT&timestamp={int(time.time() * 1000)}"
    status, body, _ = call(sim, "GET", "/api/v3/openOrders?" + query, body="signature=é€".encode())
    assert 400 <= status < 500 and body["code"] in (-1022, -1100), body


@pytest.mark.parametrize("path,params,name", [
    ("/api/v3/aggTrades", {"symbol": "BTCUSDT", "fromId": "-1"}, "fromId"),
    ("/api/v3/aggTrades", {"symbol": "BTCUSDT", "startTime": str(10**25)}, "startTime"),
    ("/api/v3/aggTrades", {"symbol": "BTCUSDT", "startTime": "-5"}, "startTime"),
    ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "startTime": "99999999999999999"}, "startTime"),
    ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "endTime": "1e30"}, "endTime"),
])
def test_negative_ids_and_absurd_times_get_1100_naming_the_parameter(sim, path, params, name):
    # issue 16: negative fromId and absurd startTime values were accepted
    status, body, _ = call(sim, "GET", path, params)
    assert status == 400 and body["code"] == -1100 and f"'{name}'" in body["msg"], body


def test_my_trades_negative_from_id_gets_1100(sim):
    status, body, _ = call(sim, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "fromId": "-3"}, signed=True)
    assert status == 400 and body["code"] == -1100 and "'fromId'" in body["msg"], body


def test_unknown_endpoint(sim):
    status, body, _ = call(sim, "GET", "/api/v9/whatever")
    assert status == 404 and body["code"] == -1000


def test_rate_limit_429_then_418():
    running = RunningSim(SimConfig(seed=3, limits=RateLimitConfig(weight_per_minute=30, violations_before_ban=2)))
    try:
        statuses = [call(running, "GET", "/api/v3/exchangeInfo", key=None) for _ in range(6)]
        codes = [s for s, _, _ in statuses]
        assert codes[0] == 200 and 429 in codes and codes[-1] == 418, codes
        first_429 = next(h for s, _, h in statuses if s == 429)
        assert int(first_429["Retry-After"]) >= 1
    finally:
        running.close()


def test_sim_command_starts_logs_urls_and_stops_on_sigint():
    proc = subprocess.Popen([sys.executable, "-m", "abidance.cli", "sim", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("abidance sim ready: REST http://127.0.0.1:"), line
        rest = line.split("REST ")[1].split()[0]
        with urlopen(rest + "/api/v3/time", timeout=5) as resp:
            assert "serverTime" in orjson.loads(resp.read())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert "abidance sim stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sim_command_bad_config_names_the_key(tmp_path):
    cfg = tmp_path / "sim.toml"
    cfg.write_text("[sim]\nspeed = -2\n")
    proc = subprocess.run([sys.executable, "-m", "abidance.cli", "sim", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "sim.speed" in proc.stderr


def test_sim_command_bad_fault_flag_names_the_key():
    proc = subprocess.run([sys.executable, "-m", "abidance.cli", "sim", "--fault", "depth_drop=0.1"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "depth_drop" in proc.stderr
