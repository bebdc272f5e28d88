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
    return BinanceError(-1116 if param == "type" else -1117 if param == "side" else -1115,
                        f"Invalid {param}." if param in ("type", "side") else "Invalid timeInForce.", 400)


def bad_precision():
    return BinanceError(-1111, "Parameter 'quantity' has too much precision.", 400)


def invalid_symbol():
    return BinanceError(-1121, "Invalid symbol.", 400)


def invalid_listen_key():
    return BinanceError(-1125, "This listenKey does not exist.", 400)


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
