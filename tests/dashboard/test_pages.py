"""Every dashboard page through Streamlit's AppTest, against the served store: seeded from real
candles, and empty. The app runs as in production (app.py -> st.navigation -> the page) and finds
the store through ABIDANCE_STORE_URL / ABIDANCE_STORE_DATABASE (see conftest.py)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit", reason="streamlit is not installed (pip install -e '.[dashboard]')")
pytest.importorskip("plotly", reason="plotly is not installed (pip install -e '.[dashboard]')")
pytest.importorskip("clickhouse_connect", reason="the store extra is not installed (pip install -e '.[store]')")

from streamlit.testing.v1 import AppTest  # noqa: E402

from abidance.store.client import connect  # noqa: E402
from abidance.reports import metrics as M  # noqa: E402
from tests.dashboard.conftest import APP  # noqa: E402
from tests.dashboard.seed import CONFIG_TEXT  # noqa: E402

PAGES = ["overview", "market", "orders", "performance", "drift", "risk", "ml", "config", "alerts"]
TIMEOUT = 60


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py")
        at.run()
    assert not at.exception, "\n".join(f"{e.message}\n{''.join(e.stack_trace)}" for e in at.exception)
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def table(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first dataframe shown that has all these columns."""
    for df in at.dataframe:
        if all(c in df.value.columns for c in columns):
            return df.value
    raise AssertionError(f"no table with columns {columns}: {[list(d.value.columns) for d in at.dataframe]}")


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(v) -> list:
    """A plotly trace array: a plain list, or plotly 6's typed array {dtype, bdata}."""
    if isinstance(v, dict) and "bdata" in v:
        return list(np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])))
    return list(v)


def trace(spec: dict, name: str) -> dict:
    found = [t for t in spec["data"] if t.get("name") == name]
    assert found, f"no trace {name!r} in {[t.get('name') for t in spec['data']]}"
    return found[0]


# ---- every page, seeded and empty ------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_page_when_store_seeded_then_renders_without_error(seeded_env, page):
    at = open_page(page)
    assert errors(at) == []
    assert not [i.value for i in at.info if "No data yet" in i.value and page in ("overview", "market")], \
        "a seeded page says it has no data"


@pytest.mark.parametrize("page", PAGES)
def test_page_when_store_empty_then_says_no_data_yet(empty_env, page):
    at = open_page(page)
    assert errors(at) == []
    assert any("No data yet" in i.value for i in at.info), [i.value for i in at.info]
    assert not [w.value for w in at.warning]


def test_no_pages_folder_so_every_page_runs_behind_the_entry():
    # A `pages/` folder beside app.py turns on Streamlit's legacy multipage mode: the first request
    # to /risk on a fresh server would run the page without app.py and its password gate.
    assert not (APP.parent / "pages").exists()
    assert {p.stem for p in (APP.parent / "app_pages").glob("*.py")} == set(PAGES)


def test_page_when_store_unreachable_then_error_names_the_store(seeded_env, monkeypatch):
    monkeypatch.setenv("ABIDANCE_STORE_URL", "http://127.0.0.1:9")
    at = open_page("overview")
    assert any("cannot be reached" in e for e in errors(at))
    assert not at.metric


# ---- what each page shows ----------------------------------------------------------------------

def test_overview_shows_the_last_equity_row_and_its_curve(seeded_env):
    at = open_page("overview")
    assert metric(at, "Equity") == M.fmt_money(seeded_env.last_equity, 8)
    assert metric(at, "PnL total") == M.fmt_money(seeded_env.last_equity - seeded_env.first_equity, 8)
    spec = charts(at)[0]
    y = values(trace(spec, "equity")["y"])
    assert len(y) > 100 and y[-1] == pytest.approx(float(seeded_env.last_equity))
    assert min(y) < max(y)                                  # a real curve, not a constant
    orders = table(at, "client_order_id", "status")
    assert sorted(orders["client_order_id"]) == sorted(seeded_env.open_orders)
    assert set(table(at, "stream", "messages")["stream"]) == {"ethbtc@kline_5m", "ltcbtc@kline_5m"}
    assert any(":green-badge[ACTIVE]" in m.value for m in at.markdown)


def test_market_candles_are_the_real_bars_with_the_bots_fills(seeded_env):
    at = open_page("market")
    spec = charts(at)[0]
    price = trace(spec, "price")
    assert price["type"] == "candlestick"
    close = values(price["close"])
    assert len(close) == 300
    assert close[-1] == pytest.approx(float(seeded_env.last_close["ETHBTC"]))
    assert metric(at, "ETHBTC close") == f"{seeded_env.last_close['ETHBTC']:f}"
    slow = values(trace(spec, "eth-sma: EMA 26")["y"])              # the configured strategy's indicator
    assert len(slow) == 300 and min(close) < slow[-1] < max(close)
    fills = int(metric(at, "Bot fills in view"))
    marks = sum(len(values(t["y"])) for t in spec["data"] if t.get("name", "").endswith("fills"))
    assert fills > 0 and marks == fills
    book = charts(at)[1]
    bid, ask = values(trace(book, "bid")["y"]), values(trace(book, "ask")["y"])
    assert len(bid) == 2000 and all(a > b for a, b in zip(ask, bid))
    assert metric(at, "Spread") == "10.00 bps"


def test_orders_filter_by_status_and_export_csv(seeded_env):
    at = open_page("orders")
    orders = table(at, "client_order_id", "status", "events")
    assert len(orders) == seeded_env.fills + 2 * 3               # filled market orders + 3 limit orders per symbol
    fills = table(at, "trade_id", "commission")
    assert len(fills) == seeded_env.fills
    assert metric(at, "Fills") == str(seeded_env.fills)
    assert {b.label for b in at.download_button} >= {"Download orders CSV", "Download fills CSV"}
    at.selectbox(key="ot_status").select("NEW").run()
    orders = table(at, "client_order_id", "status", "events")
    assert sorted(orders["client_order_id"]) == sorted(seeded_env.open_orders)
    at.selectbox(key="ot_symbol").select("LTCBTC").run()
    assert list(table(at, "client_order_id", "status", "events")["symbol"]) == ["LTCBTC"]
    assert set(table(at, "trade_id", "commission")["symbol"]) == {"LTCBTC"}


def test_performance_metrics_match_the_metrics_module(seeded_env, seeded):
    server, _ = seeded
    at = open_page("performance")
    assert errors(at) == []
    expected = seeded_env.last_equity / seeded_env.first_equity - 1
    assert metric(at, "Total return") == M.fmt_pct(float(expected))
    assert metric(at, "End equity") == M.fmt_money(seeded_env.last_equity, 8)
    assert int(metric(at, "Fills")) == seeded_env.fills
    assert int(metric(at, "Round trips")) > 0
    groups = table(at, "strategy_id", "symbol", "round_trips")
    assert set(groups["strategy_id"]) == {"eth-sma", "ltc-sma"}
    # the page's table is the metrics module on the store's fills
    fills = connect(server.url, "abidance").query_df("SELECT * FROM fills ORDER BY ts")
    trips, _ = M.round_trips(fills)
    assert int(groups["round_trips"].sum()) == len(trips)
    assert metric(at, "Win rate") == M.fmt_pct(M.win_rate([t.pnl for t in trips]))
    specs = charts(at)
    assert len(values(trace(specs[0], "equity")["y"])) == seeded_env.equity_points
    assert at.download_button[0].label == "Download HTML report"


def test_html_report_holds_the_metrics_and_the_charts(seeded_env):
    from streamlit_app import charts as C
    from streamlit_app import report

    eq = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC"),
                       "equity": [Decimal("10"), Decimal("11"), Decimal("10.5")]})
    html = report.html_report("Abidance performance report", "a window", [("Total return", "5.00%")],
                              pd.DataFrame({"strategy_id": ["s"], "symbol": ["BTCUSDT"]}), [C.equity_figure(eq)])
    text = html.decode()
    assert "<th>Total return</th><td>5.00%</td>" in text and "BTCUSDT" in text
    assert "Plotly.newPlot" in text and len(html) > 1_000_000          # plotly.js inlined: opens offline


def test_risk_shows_limits_beside_use_denials_and_breakers(seeded_env):
    at = open_page("risk")
    limits = table(at, "limit", "configured", "current use").set_index("limit")
    assert limits.loc["risk.max_open_orders", "configured"] == "4"
    assert limits.loc["risk.max_open_orders", "current use"] == str(len(seeded_env.open_orders))
    assert limits.loc["risk.max_gross_exposure", "configured"] == "2 BTC"
    assert limits.loc["risk.max_position.ETHBTC", "configured"] == "2"
    denials = table(at, "reason", "message")
    assert len(denials) == seeded_env.denials and set(denials["reason"]) <= {"MAX_OPEN_ORDERS", "PRICE_BAND"}
    states = table(at, "state", "previous", "source")
    assert "breaker:daily_loss" in set(states["source"])
    assert charts(at)                                                   # denials by reason


def _commands(server, command: str) -> pd.DataFrame:
    rows = connect(server.url, "abidance").query(
        "SELECT command_id, command, reason, author FROM commands WHERE command = {c:String}",
        parameters={"c": command}).result_rows
    return pd.DataFrame(rows, columns=["command_id", "command", "reason", "author"])


def test_kill_switch_when_confirmed_then_writes_exactly_one_kill_command(seeded_env, seeded):
    server, _ = seeded
    old_ids = set(_commands(server, "kill")["command_id"])
    before = len(old_ids)
    at = open_page("risk")
    at.text_input(key="cmd_reason").input("test: stop everything")
    at.button(key="kill_button").click().run()
    assert any("Confirm kill" in w.value for w in at.warning)
    assert len(_commands(server, "kill")) == before                       # nothing before the confirmation
    at.button(key="confirm_command").click().run()
    assert not at.exception and errors(at) == []
    rows = _commands(server, "kill")
    assert len(rows) == before + 1
    new = rows[~rows["command_id"].isin(old_ids)].iloc[0]
    assert (new["author"], new["reason"]) == ("dashboard", "test: stop everything")
    assert any("written" in s.value for s in at.success)
    at.run()                                                               # a rerun does not write again
    assert len(_commands(server, "kill")) == before + 1


def test_reduce_when_cancelled_then_writes_nothing(seeded_env, seeded):
    server, _ = seeded
    before = len(_commands(server, "reduce"))
    at = open_page("risk")
    at.button(key="reduce_button").click().run()
    at.button(key="cancel_command").click().run()
    assert not [w for w in at.warning if "Confirm" in w.value]
    assert len(_commands(server, "reduce")) == before


def test_config_validate_names_the_key_of_a_bad_value(seeded_env):
    at = open_page("config")
    assert "max_open_orders = 4" in at.text_area(key="config_text").value
    bad = at.text_area(key="config_text").value.replace("max_open_orders = 4", "max_open_orders = -1")
    at.text_area(key="config_text").input(bad)
    at.button(key="config_validate").click().run()
    assert any("risk.max_open_orders" in e for e in errors(at)), errors(at)


def test_config_save_creates_the_next_version_with_a_diff(seeded_env, seeded):
    server, _ = seeded
    client = connect(server.url, "abidance")
    last = client.query("SELECT max(version) FROM config_versions").result_rows[0][0]
    at = open_page("config")
    text = at.text_area(key="config_text").value.replace("max_open_orders = 4", "max_open_orders = 5")
    at.text_area(key="config_text").input(text)
    at.text_input(key="config_comment").input("one more open order")
    at.button(key="config_save").click().run()
    assert not at.exception and errors(at) == []
    rows = client.query("SELECT version, author, comment, text FROM config_versions WHERE version = {v:UInt32}",
                        parameters={"v": last + 1}).result_rows
    assert rows == [(last + 1, "dashboard", "one more open order", text)]
    assert any(f"Saved as version {last + 1}" in s.value for s in at.success)
    diff = "\n".join(c.value for c in at.code if c.language == "diff")
    assert "-max_open_orders = 4" in diff and "+max_open_orders = 5" in diff


def test_config_save_when_invalid_then_nothing_saved(seeded_env, seeded):
    server, _ = seeded
    client = connect(server.url, "abidance")
    count = client.query("SELECT count() FROM config_versions").result_rows[0][0]
    at = open_page("config")
    at.text_area(key="config_text").input(CONFIG_TEXT.replace('quote_asset = "BTC"', 'quote_asset = "btc"'))
    at.button(key="config_save").click().run()
    assert any("risk.quote_asset" in e for e in errors(at))
    assert client.query("SELECT count() FROM config_versions").result_rows[0][0] == count


def test_alerts_levels_rejects_reconnects_and_store_problems(seeded_env):
    at = open_page("alerts")
    assert [metric(at, k) for k in ("Critical", "Error", "Warning", "Info")] == ["1", "2", "2", "2"]
    assert len(table(at, "level", "code", "message")) == 7
    assert len(table(at, "client_order_id", "reason")) == seeded_env.rejected
    reconnects = [d.value for d in at.dataframe if "code" in d.value.columns
                  and set(d.value["code"]) == {"stream_disconnected"}]
    assert reconnects and len(reconnects[0]) == 2
    at.multiselect(key="alert_levels").set_value(["critical"]).run()
    assert list(table(at, "level", "code", "message")["code"]) == ["breaker_tripped"]


def test_password_when_set_then_nothing_shown_before_it(seeded_env, monkeypatch):
    monkeypatch.setenv("ABIDANCE_DASHBOARD_PASSWORD", "correct horse")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.metric and not at.get("plotly_chart") and not at.sidebar.markdown
    assert at.text_input(key="_abidance_password").proto.type == at.text_input(key="_abidance_password").proto.PASSWORD
    at.text_input(key="_abidance_password").input("wrong").run()
    assert "Wrong password." in errors(at) and not at.metric
    at.text_input(key="_abidance_password").input("correct horse").run()
    assert not at.exception
    assert metric(at, "Equity") == M.fmt_money(seeded_env.last_equity, 8)


def test_config_page_never_shows_a_secret_value(empty_env, tmp_path, monkeypatch):
    cfg = tmp_path / "node.toml"
    cfg.write_text("# export ABIDANCE_BINANCE_API_SECRET=s3cr3tvalue\n" + CONFIG_TEXT
                   + '\n[binance]\napi_key = "k3yvalue"\n', encoding="utf-8")
    monkeypatch.setenv("ABIDANCE_CONFIG", str(cfg))
    at = open_page("config")
    shown = at.text_area(key="config_text").value
    assert "s3cr3tvalue" not in shown and "k3yvalue" not in shown
    assert "ABIDANCE_BINANCE_API_SECRET=***" in shown and 'api_key = "***"' in shown
    at.button(key="config_validate").click().run()
    assert any("binance.api_key" in e for e in errors(at)), errors(at)       # and the loader refuses it
    assert not any("k3yvalue" in e or "s3cr3tvalue" in e for e in errors(at))


def test_live_panels_when_refresh_on_then_render_as_fragments(seeded_env, monkeypatch):
    monkeypatch.setenv("ABIDANCE_DASHBOARD_REFRESH_S", "5")
    for page in ("overview", "market", "alerts"):
        at = open_page(page)
        assert errors(at) == [] and at.get("plotly_chart") or at.metric
    assert metric(open_page("overview"), "Equity") == M.fmt_money(seeded_env.last_equity, 8)
