"""Exact decimal text <-> fixed-point int64 units.

Binance sends prices and quantities as decimal strings. Inside the core they are
int64 counts of the instrument's tick (price) or step (quantity). Conversion is
exact: a value that is not a whole number of increments is an error, never rounded.
"""

cimport cython
from libc.stdint cimport int64_t, INT64_MAX

from decimal import Decimal, InvalidOperation

cdef int64_t[19] POW10
cdef int _i
POW10[0] = 1
for _i in range(1, 19):
    POW10[_i] = POW10[_i - 1] * 10

_STATUS_TEXT = {
    PARSE_EMPTY: "empty value",
    PARSE_BAD_CHAR: "not a plain decimal number",
    PARSE_TOO_PRECISE: "more decimals than the increment allows",
    PARSE_OVERFLOW: "too large for int64 fixed point",
    PARSE_NEGATIVE: "negative",
}


cdef int parse_scaled_c(const char* s, Py_ssize_t n, int decimals, int64_t* out) noexcept nogil:
    """Parse plain decimal text ("123.4500") into value * 10**decimals.

    No sign, exponent, whitespace, inf or nan are accepted: Binance never sends them
    and anything else is malformed input.
    """
    cdef Py_ssize_t i = 0
    cdef int64_t acc = 0
    cdef int frac = -1          # -1: before the point; else digits seen after it
    cdef bint any_digit = False
    cdef char c
    cdef int d
    if n == 0:
        return PARSE_EMPTY
    if s[0] == 45:  # '-'
        return PARSE_NEGATIVE
    while i < n:
        c = s[i]
        i += 1
        if c == 46:  # '.'
            if frac >= 0:
                return PARSE_BAD_CHAR
            frac = 0
            continue
        if c < 48 or c > 57:
            return PARSE_BAD_CHAR
        d = c - 48
        any_digit = True
        if frac >= 0:
            if frac >= decimals:
                if d != 0:
                    return PARSE_TOO_PRECISE
                continue
            frac += 1
        if acc > (INT64_MAX - d) // 10:
            return PARSE_OVERFLOW
        acc = acc * 10 + d
    if not any_digit:
        return PARSE_EMPTY
    if frac < 0:
        frac = 0
    if decimals - frac > 18:
        return PARSE_OVERFLOW
    if acc > INT64_MAX // POW10[decimals - frac]:
        return PARSE_OVERFLOW
    out[0] = acc * POW10[decimals - frac]
    return PARSE_OK


cdef class FixedPoint:
    """Converts decimal text to int64 counts of an increment ("0.01" tick, "0.00001" step).

    `to_units("65000.12")` -> 6500012 for increment "0.01". Raises ValueError naming
    the value when it is malformed or not a whole number of increments.
    """

    def __init__(self, increment):
        cdef object inc
        try:
            inc = Decimal(str(increment))
        except InvalidOperation:
            raise ValueError(f"increment {increment!r} is not a decimal number") from None
        if not inc.is_finite() or inc <= 0:
            raise ValueError(f"increment {increment!r} must be a positive finite decimal")
        try:
            inc = inc.normalize()
        except ArithmeticError:       # decimal.Overflow/Underflow: an exponent past the context's range
            raise ValueError(f"increment {increment!r} is out of range") from None
        if inc == 0:                  # a tiny exponent underflows to zero without a trap
            raise ValueError(f"increment {increment!r} is out of range")
        exp = inc.as_tuple().exponent
        self.decimals = max(0, -exp)
        if self.decimals > 18:
            raise ValueError(f"increment {increment!r} has more than 18 decimals")
        scaled = int(inc.scaleb(self.decimals))
        if scaled > INT64_MAX:
            raise ValueError(f"increment {increment!r} is too large for int64 fixed point")
        self.increment = inc
        self.increment_scaled = scaled

    cdef int units_c(self, const char* s, Py_ssize_t n, int64_t* out) noexcept nogil:
        cdef int64_t scaled
        cdef int status = parse_scaled_c(s, n, self.decimals, &scaled)
        if status != PARSE_OK:
            return status
        if self.increment_scaled == 1:
            out[0] = scaled
        elif scaled % self.increment_scaled != 0:
            return PARSE_TOO_PRECISE
        else:
            out[0] = scaled // self.increment_scaled
        return PARSE_OK

    def to_units(self, value) -> int:
        """Exact units for a decimal string, bytes or Decimal; ValueError otherwise."""
        cdef bytes raw
        cdef int64_t out = 0
        cdef int status
        if isinstance(value, bytes):
            raw = value
        elif isinstance(value, str):
            raw = value.encode("ascii", "replace")
        elif isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"value {value!r} is not finite")
            raw = format(value, "f").encode("ascii")
        elif isinstance(value, int) and not isinstance(value, bool):
            raw = str(value).encode("ascii")
        else:
            raise ValueError(
                f"value {value!r} must be a decimal string, bytes, Decimal or int, "
                f"not {type(value).__name__} (binary floats are not exact)"
            )
        status = self.units_c(raw, len(raw), &out)
        if status != PARSE_OK:
            raise ValueError(
                f"value {value!r}: {_STATUS_TEXT[status]} (increment {self.increment})"
            )
        return out

    def to_decimal(self, int64_t units):
        """The exact Decimal for a count of increments."""
        return self.increment * units

    def to_str(self, int64_t units) -> str:
        """Decimal text with exactly the increment's decimals (Binance's request format).

        Integer arithmetic (this runs for every order): units * increment, then the point
        placed `decimals` digits from the right."""
        cdef object scaled = <object>units * <object>self.increment_scaled    # Python int: no overflow
        cdef int d = self.decimals
        if d == 0:
            return str(scaled)
        # The digits, then the point: slicing is ~4x cheaper than divmod and a nested format spec.
        cdef str digits = str(abs(scaled))
        if len(digits) <= d:
            digits = "0" * (d + 1 - len(digits)) + digits
        return ("-" if scaled < 0 else "") + digits[:-d] + "." + digits[-d:]

    @cython.boundscheck(True)
    @cython.wraparound(False)
    def parse_levels(self, FixedPoint qty, levels, int64_t[::1] px_out, int64_t[::1] qty_out):
        """Fill px_out/qty_out from Binance levels [[price, qty], ...] (self converts price).

        Returns the number of levels written, or -(i + 1) for the first bad level i so
        the caller can report it without an exception on the hot path.

        The input is untrusted: `levels` must be exactly a list or tuple (a subclass could
        lie about its length), and every write is checked against the output arrays
        (bounds checks are on here, whatever the module's directives say).
        """
        cdef Py_ssize_t i = 0
        cdef Py_ssize_t cap = min(px_out.shape[0], qty_out.shape[0])
        cdef Py_ssize_t n
        cdef bytes p, q
        cdef object level
        if type(levels) is not list and type(levels) is not tuple:
            return -1
        n = len(levels)
        if n > cap:
            return -(cap + 1)
        for level in levels:
            if i >= cap:
                return -(cap + 1)
            # Checked explicitly, not by catching exceptions: this runs per message.
            if (type(level) is not list and type(level) is not tuple) or len(level) != 2:
                return -(i + 1)
            price_text, qty_text = level[0], level[1]
            if type(price_text) is not str or type(qty_text) is not str:
                return -(i + 1)
            if not (<str>price_text).isascii() or not (<str>qty_text).isascii():
                return -(i + 1)
            p = (<str>price_text).encode("ascii")
            q = (<str>qty_text).encode("ascii")
            if self.units_c(p, len(p), &px_out[i]) != PARSE_OK:
                return -(i + 1)
            if qty.units_c(q, len(q), &qty_out[i]) != PARSE_OK:
                return -(i + 1)
            i += 1
        return i

    def __repr__(self):
        return f"FixedPoint({str(self.increment)!r})"
