"""Live against backtest, explained: `abidance report drift` (docs/drift.md)."""
