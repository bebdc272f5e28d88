"""Built-in rule strategies, by registry name. The ML strategies (`ml_signal`, `regime_switch`)
are the ml package's (abidance/ml/): the loader finds them by name too (strategy/loader.py)."""

from abidance.strategy.builtin.bollinger_breakout import BollingerBreakout
from abidance.strategy.builtin.book_imbalance import BookImbalance
from abidance.strategy.builtin.ema_cross import EmaCross
from abidance.strategy.builtin.ema_cross_c import EmaCrossCompiled
from abidance.strategy.builtin.rsi_reversion import RsiReversion

BUILTINS = {cls.name: cls for cls in (EmaCross, EmaCrossCompiled, RsiReversion, BollingerBreakout, BookImbalance)}
