"""Whatever a client sends to the new endpoints, the venue answers with a Binance error or a
result, never a Python exception (which the REST layer would turn into -1000), and its books stay
consistent."""

from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abidance.exchange.sim.errors import BinanceError
from tests.unit.sim.kit import SYMBOL, Env, totals

VALUES = st.sampled_from(["", "0", "-1", "abc", "1e5", "0.001", "0.0100000001", "30000.00", "29000.00", "31000.00",
                          "BUY", "SELL", "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                          "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "GTC", "IOC", "FOK", "100", "10", "5000",
                          "99999999999999999999999", "NONE", "EXPIRE_TAKER", "DECREMENT", "RESULT", "FULL", "1", "2",
                          "STOP_ON_FAILURE", "ALLOW_FAILURE", "CANCEL_ONLY", "ONLY_NEW", "x" * 40])
NAMES = ["side", "quantity", "aboveType", "abovePrice", "aboveStopPrice", "aboveTrailingDelta", "aboveTimeInForce",
         "belowType", "belowPrice", "belowStopPrice", "belowTrailingDelta", "belowTimeInForce", "workingType",
         "workingSide", "workingPrice", "workingQuantity", "workingTimeInForce", "pendingType", "pendingSide",
         "pendingPrice", "pendingStopPrice", "pendingQuantity", "pendingTimeInForce", "pendingTrailingDelta",
         "pendingAboveType", "pendingAbovePrice", "pendingAboveStopPrice", "pendingBelowType", "pendingBelowPrice",
         "pendingBelowStopPrice", "listClientOrderId", "newOrderRespType", "selfTradePreventionMode",
         "cancelReplaceMode", "cancelOrderId", "cancelOrigClientOrderId", "type", "price", "stopPrice",
         "timeInForce", "trailingDelta", "orderRateLimitExceededMode", "cancelRestrictions", "newClientOrderId"]
REQUESTS = st.lists(st.tuples(st.sampled_from(["oco", "oto", "otoco", "replace", "amend", "cancel_list", "query_list",
                                               "all_lists", "order"]),
                              st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=14)), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REQUESTS)
def test_new_endpoints_when_fed_anything_then_binance_errors_only_and_money_conserved(requests):
    env = Env()
    env.last_at("30000.00")
    before = totals(env)
    ex, acct = env.ex, env.alice
    for kind, params in requests:
        params = {"symbol": SYMBOL, **params}
        env.tick()
        try:
            if kind == "oco":
                ex.new_oco(acct, params)
            elif kind == "oto":
                ex.new_oto(acct, params)
            elif kind == "otoco":
                ex.new_otoco(acct, params)
            elif kind == "replace":
                ex.cancel_replace(acct, params)
            elif kind == "amend":
                ex.amend_order(acct, SYMBOL, order_id=params.get("cancelOrderId"),
                               orig_client_order_id=params.get("cancelOrigClientOrderId"),
                               new_client_order_id=params.get("newClientOrderId"), new_qty=params.get("quantity"))
            elif kind == "cancel_list":
                ex.cancel_order_list(acct, SYMBOL, order_list_id=params.get("cancelOrderId"),
                                     list_client_order_id=params.get("listClientOrderId"))
            elif kind == "query_list":
                ex.query_order_list(acct, order_list_id=params.get("cancelOrderId"),
                                    orig_client_order_id=params.get("listClientOrderId"))
            elif kind == "all_lists":
                ex.all_order_lists(acct, from_id=params.get("cancelOrderId"), limit=params.get("quantity"))
            else:
                ex.new_order(acct, symbol=SYMBOL, side=params.get("side"), type=params.get("type"),
                             time_in_force=params.get("timeInForce"), quantity=params.get("quantity"),
                             price=params.get("price"), stop_price=params.get("stopPrice"),
                             trailing_delta=params.get("trailingDelta"),
                             self_trade_prevention_mode=params.get("selfTradePreventionMode"))
        except BinanceError as err:
            assert err.code < 0 and err.msg
        env.last_at(["29000.00", "30000.00", "31000.00"][len(params) % 3])
    assert totals(env) == before
    for asset, (free, locked) in acct.balances.items():
        assert free >= 0 and locked >= 0, asset
    assert sum(acct.locked(a) for a in ("USDT", "BTC")) >= D(0)
