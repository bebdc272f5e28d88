"""What can go wrong talking to a venue, in terms every engine may use.

The execution engine knows these types only; each venue's own errors (Binance's in
abidance/exchange/binance/errors.py, the backtest venue's) are subclasses, so an engine
never imports a venue to tell a refusal from an unknown outcome.

- `VenueError`: the venue answered with an error (or no usable answer); `code` and `msg` are
  the venue's own (Binance's -2010 "Account has insufficient balance for requested action.").
- `VenueRateLimited`: refused for the request rate; nothing was executed.
- `VenueTransportError`: no answer; `sent` says whether the request left (then it may have run).
- `OrderOutcomeUnknown`: an order request that may or may not have executed: query it by its
  client order id before anything else (never resend blindly).
- `OrderRejected`: a concrete refusal, raised by in-process venues with the exchange's code and text.
"""

from __future__ import annotations


class VenueError(Exception):
    """An error answer (or no answer) from a venue for one request."""

    code: int = 0
    msg: str = ""
    sent: bool = True               # the request reached the venue (False: refused before it left)

    @property
    def status_unknown(self) -> bool:
        """True when the request may have executed even though it failed."""
        return False

    @property
    def order_not_found(self) -> bool:
        """True when the venue says the order does not exist (it never arrived)."""
        return False


class VenueRateLimited(VenueError):
    """Refused for the request rate: back off; nothing was executed."""


class VenueTransportError(VenueError):
    """No usable answer: the connection dropped or timed out (`sent`: the request may have executed)."""


class OrderOutcomeUnknown(VenueError):
    """An order request whose outcome could not be established: query it before anything else."""


class OrderRejected(VenueError):
    """The venue refused an order request, with its own code and text."""

    def __init__(self, code: int, msg: str):
        super().__init__(f"order rejected {code}: {msg}")
        self.code = code
        self.msg = msg
