"""Binance's error shape: HTTP status plus {"code": -NNNN, "msg": "..."}."""

from __future__ import annotations


class BinanceError(Exception):
    """An error the simulator answers exactly as Binance would."""

    def __init__(self, code: int, msg: str, http_status: int = 400, retry_after: int | None = None):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.retry_after = retry_after

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


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
