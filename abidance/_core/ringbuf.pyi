"""Type stubs for abidance._core.ringbuf (compiled from ext/abidance/_core/ringbuf.pyx)."""

import numpy as np
import numpy.typing as npt

class RingBuffer:
    """The last `capacity` doubles pushed, with O(1) push, evict and indexed read."""

    def __init__(self, capacity: int) -> None: ...
    def push(self, x: float) -> float:
        """Append x; return the evicted value, or NaN while the buffer is filling."""
    def get(self, i: int) -> float:
        """The i-th most recent value: 0 is the newest, count - 1 the oldest."""
    @property
    def newest(self) -> float: ...
    @property
    def oldest(self) -> float: ...
    @property
    def capacity(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def full(self) -> bool: ...
    def to_array(self) -> npt.NDArray[np.float64]:
        """The held values as a new float64 array, oldest first."""
    def clear(self) -> None: ...
    def __len__(self) -> int: ...
