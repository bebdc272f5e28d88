"""Binance's error shape: HTTP status plus {"code": -NNNN, "msg": "..."}."""

from __future__ import annotations


class BinanceError(Exception):
    """An error the simulator answers exactly as Binance would."""

    def __init__(self, code: int, msg: str, http_status: int = 400, retry_after: int | None = None,
                 data: dict | None = None):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.retry_after = retry_after
        self.data = data            # cancelReplace's failure detail: {cancelResult, newOrderResult, ...}

    def body(self) -> dict:
        if self.data is None:
            return {"code": self.code, "msg": self.msg}
        return {"code": self.code, "msg": self.msg, "data": self.data}


# Constructors for the errors the simulator raises, named as Binance documents them.
def unknown_error(msg="An unknown error occurred while processing the request."):
    return BinanceError(-1000, msg, 500)


def too_many_requests(msg, retry_after: int):
    return BinanceError(-1003, msg, 429, retry_after)


def ip_banned(msg, retry_after: int):
    return BinanceError(-1003, msg, 418, retry_after)


def too_many_orders(msg="Too many new orders."):
    return BinanceError(-1015, msg, 429, 10)


def bad_timestamp(msg="Timestamp for this request is outside of the recvWindow."):
    return BinanceError(-1021, msg, 400)


def bad_signature():
    return BinanceError(-1022, "Signature for this request is not valid.", 400)


def illegal_chars(param):
    return BinanceError(-1100, f"Illegal characters found in parameter '{param}'.", 400)


def too_many_params(msg="Too many parameters sent for this endpoint."):
    return BinanceError(-1101, msg, 400)


def mandatory_param(param):
    return BinanceError(-1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed.", 400)


def unknown_param(param):
    return BinanceError(-1104, f"Not all sent parameters were read; read 0 parameter(s) but was sent '{param}'.", 400)


def bad_param(msg):
    return BinanceError(-1100, msg, 400)


def invalid_enum(param, value):
    # Binance's messages: -1116 "Invalid orderType.", -1117 "Invalid side.", -1115 "Invalid timeInForce.".
    if param == "type":
        return BinanceError(-1116, "Invalid orderType.", 400)
    if param == "side":
        return BinanceError(-1117, "Invalid side.", 400)
    return BinanceError(-1115, "Invalid timeInForce.", 400)


def bad_precision(param="quantity"):
    return BinanceError(-1111, f"Parameter '{param}' has too much precision.", 400)


def unsupported_order_combination():
    return BinanceError(-1014, "Unsupported order combination.", 400)


def param_not_required(param):
    return BinanceError(-1106, f"Parameter '{param}' sent when not required.", 400)


def mandatory_one_of(first, second):
    return BinanceError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!", 400)


def invalid_symbol():
    return BinanceError(-1121, "Invalid symbol.", 400)


def bad_interval():
    return BinanceError(-1120, "Invalid interval.", 400)


def filter_failure(name):
    return BinanceError(-1013, f"Filter failure: {name}", 400)


def new_order_rejected(msg):
    return BinanceError(-2010, msg, 400)


def cancel_rejected(msg="Unknown order sent."):
    return BinanceError(-2011, msg, 400)


def no_such_order():
    return BinanceError(-2013, "Order does not exist.", 400)


def bad_api_key_format():
    return BinanceError(-2014, "API-key format invalid.", 401)


def rejected_api_key():
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


# The -2010 (new order rejected) messages Binance documents.
def insufficient_balance():
    return new_order_rejected("Account has insufficient balance for requested action.")


def duplicate_order():
    return new_order_rejected("Duplicate order sent.")


def would_take():
    return new_order_rejected("Order would immediately match and take.")


def stop_would_trigger():
    return new_order_rejected("Stop price would trigger immediately.")


def trading_disabled():
    return new_order_rejected("This action is disabled on this account.")


def order_type_not_supported(type_):
    # The matching engine's -2010 messages for an order type the symbol does not enable.
    what = {"MARKET": "Market", "STOP_LOSS": "Stop loss", "STOP_LOSS_LIMIT": "Stop loss limit",
            "TAKE_PROFIT": "Take profit", "TAKE_PROFIT_LIMIT": "Take profit limit"}.get(type_, "This")
    return new_order_rejected(f"{what} orders are not supported for this symbol.")


def trailing_not_supported():
    return new_order_rejected("Trailing stop orders are not supported for this symbol.")


def stp_mode_not_allowed():
    return BinanceError(-1013, "This symbol does not allow the specified self-trade prevention mode.", 400)


def bad_enum(param, legal):
    return BinanceError(-1100, f"Illegal characters found in parameter '{param}'; legal range is '{legal}'.", 400)


def client_id_mismatch():
    return BinanceError(-2039, "Client order ID is not correct for this order ID.", 400)


def cancel_restrictions_invalid():
    return BinanceError(-1145, "Invalid cancelRestrictions", 400)


def cancel_restricted():
    return cancel_rejected("Order was not canceled due to cancel restrictions.")


# Order lists. Leg placement rules (-1158, -1165..-1168, -1196..-1199) and the prices' relationship.
def oco_type_rejected():
    return BinanceError(-1158, "Order type not supported in OCO.", 400)


def oco_leg_position(code):
    return BinanceError(code, {
        -1165: "A limit order in a buy OCO must be below.",
        -1166: "A limit order in a sell OCO must be above.",
        -1168: "At least one OCO order must be contingent.",
        -1196: "A stop loss order in a buy OCO must be above.",
        -1197: "A stop loss order in a sell OCO must be below.",
        -1198: "A take profit order in a buy OCO must be below.",
        -1199: "A take profit order in a sell OCO must be above.",
    }[code], 400)


def oco_bad_prices():
    return new_order_rejected("The relationship of the prices for the orders is not correct.")


def no_such_order_list():
    return BinanceError(-2018, "Order list does not exist.", 400)


# Amend keep priority (-2038 ORDER_AMEND_REJECTED carries the matching engine's message).
def amend_rejected(msg):
    return BinanceError(-2038, msg, 400)


def amend_increase():
    return amend_rejected("Order amend (quantity increase) is not supported.")


def amend_no_change():
    return amend_rejected("The requested action would change no state; rejecting")


# Cancel-replace.
def cancel_replace_failed(data, http_status=400, retry_after=None):
    return BinanceError(-2022, "Order cancel-replace failed.", http_status, retry_after, data=data)


def cancel_replace_partial(data, http_status=409, retry_after=None):
    return BinanceError(-2021, "Order cancel-replace partially failed.", http_status, retry_after, data=data)
