"""Learning, offline and in the node. A map of the package (docs/ml.md, registry.md, regime.md, rl.md):

Signal models (scikit-learn)
  features         the one feature definition: streaming for the node, batch for training
  labels           labels defined ahead (forward return, triple barrier) with where each ends
  splits           purged and embargoed k-fold and walk-forward splits
  dataset          (X, y, times, label_end) from recorded candles or the store's bars
  models           calibrated models, evaluated out of sample only, hashed on disk
  artifacts        model files: atomic writes, sha256 checked on the very bytes loaded
  signal_training  train, hold out, backtest and register one signal model
  oos_backtest     the model vs buy-and-hold vs a rule strategy on held-out bars
Lifecycle in the node
  registry         model versions and their status in the store
  deployment       runs a node's or backtest's ML strategies by their registry status
  drift            feature drift (PSI) and live hit rate, which demote a live model
  retrain          challenger vs champion on new data; promoted only if better
Regimes
  regime           regime features and the clustering model that labels each bar
  regime_eval      walk-forward: regime switching vs the static mix vs buy-and-hold
  regime_cli       its command line (python -m abidance.ml.regime_cli)
Reinforcement learning
  rl               trading environments on the backtester's fill model, a PPO agent
Command lines and reports
  train_cli        `abidance train` (signal [--retrain], regime, rl)
  models_cli       `abidance models` (the registry)
  train_report     the charts of a training run (HTML report and dashboard)
"""
