"""Built-in strategies, by registry name."""

from abidance.strategy.builtin.book_imbalance import BookImbalance
from abidance.strategy.builtin.bollinger_breakout import BollingerBreakout
from abidance.strategy.builtin.ema_cross import EmaCross
from abidance.strategy.builtin.ema_cross_c import EmaCrossCompiled
from abidance.strategy.builtin.ml_signal import MLSignal
from abidance.strategy.builtin.regime_switch import RegimeSwitch
from abidance.strategy.builtin.rsi_reversion import RsiReversion

BUILTINS = {cls.name: cls for cls in (EmaCross, EmaCrossCompiled, RsiReversion, BollingerBreakout, BookImbalance,
                                      MLSignal, RegimeSwitch)}
