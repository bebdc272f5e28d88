from enum import IntEnum

import numpy as np

class Action(IntEnum):
    NONE = 0
    BUY = 1
    SELL = 2

class BarKernel:
    action: int
    def on_bar(self, open_: int, high: int, low: int, close: int, volume: int) -> int: ...

class EmaCrossKernel(BarKernel):
    gap_bps: float
    def __init__(self, fast: int, slow: int, tick: float, min_gap_bps: float = 0.0) -> None: ...

def run_until_action(kernel: BarKernel, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                     volume: np.ndarray, start: int, stop: int) -> int: ...
