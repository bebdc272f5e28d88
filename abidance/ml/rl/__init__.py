"""Reinforcement learning: trading environments on the backtester's fill model, and a PPO agent.

Actions: 0 = flat, 1 = long (spot, long only). After bar t closes the agent picks one; "long"
while flat buys (sized like the risk engine: min(equity x fraction, cash) at the close), "flat"
while holding sells every whole lot step; the market order fills at bar t+1's open plus
slippage, taker fee in the asset received. Reward: reward_scale x ln(equity ratio) per bar.

vec_env.TradingVecEnv      N episodes at once in int64 numpy (Gymnasium VectorEnv): training
env.EngineTradingEnv       one episode on the real engine (Backtest, steppable): the reference
agent.train_agent / load_agent, evaluation.evaluate   PPO (stable-baselines3) and its judgement
See docs/rl.md. The package imports none of them: `abidance.ml.rl.settings` (what `abidance train rl`
parses its options into) loads without the ml extra; the environments and the agent need it.
"""
